#!/usr/bin/env bash
# Run by docker/Dockerfile at build time: an image with no DAG file and no DAG bundle planned would make
# every ECS task exit 64 in entrypoint.sh (and spend its Airflow try), so such a build fails here instead.
#   check-dags.sh DAGS_FOLDER DAGS_FROM_BUNDLE
set -euo pipefail

dags_folder="${1:?usage: check-dags.sh DAGS_FOLDER DAGS_FROM_BUNDLE}"
from_bundle="${2:-false}"

case "${from_bundle,,}" in
  true|1|yes) exit 0 ;;
  false|0|no|"") ;;
  *) echo "check-dags: DAGS_FROM_BUNDLE=$from_bundle: use true or false" >&2; exit 2 ;;
esac
if find "$dags_folder" -name '*.py' -print -quit 2>/dev/null | grep -q .; then
  exit 0
fi
echo "check-dags: no DAG file (*.py) in DAGS_DIR: build with --build-arg DAGS_DIR=path/to/dags (a folder inside the build context)," \
  "or with --build-arg DAGS_FROM_BUNDLE=true when the DAGs come from a DAG bundle (then set the template's DagBundleConfigList)" >&2
exit 1
