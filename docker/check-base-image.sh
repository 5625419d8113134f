#!/usr/bin/env bash
# Run by docker/Dockerfile at build time, in the base image: refuses a base image named by tag alone
# (a tag can be moved to other content; a digest cannot), unless the builder said so explicitly, and
# refuses a digest whose image holds another Airflow than AIRFLOW_VERSION (Docker pulls by the digest
# and ignores the tag when both are given, so a wrong digest would silently change the Airflow).
#   check-base-image.sh AIRFLOW_IMAGE_DIGEST ALLOW_UNPINNED_BASE_IMAGE AIRFLOW_VERSION
set -euo pipefail

digest="${1-}"
allow_unpinned="${2:-false}"
want_version="${3:?usage: check-base-image.sh AIRFLOW_IMAGE_DIGEST ALLOW_UNPINNED_BASE_IMAGE AIRFLOW_VERSION}"
python="${CHECK_BASE_IMAGE_PYTHON:-python}"

case "${allow_unpinned,,}" in
  true|1|yes) allow_unpinned=true ;;
  false|0|no|"") allow_unpinned=false ;;
  *) echo "check-base-image: ALLOW_UNPINNED_BASE_IMAGE=$allow_unpinned: use true or false" >&2; exit 2 ;;
esac

# The tag this image answers to, for the messages: apache/airflow:<Airflow>-python<major.minor>.
tag="apache/airflow:${want_version}-python$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

if [[ -z "$digest" ]]; then
  if [[ "$allow_unpinned" != true ]]; then
    echo "check-base-image: the base image is named by tag alone: build with" \
      "--build-arg AIRFLOW_IMAGE_DIGEST=sha256:... (the Digest line of" \
      "'docker buildx imagetools inspect $tag')," \
      "or with --build-arg ALLOW_UNPINNED_BASE_IMAGE=true for a throwaway image" >&2
    exit 1
  fi
  echo "check-base-image: warning: building on an unpinned base image (ALLOW_UNPINNED_BASE_IMAGE=true)" >&2
elif ! [[ "$digest" =~ ^sha256:[0-9a-f]{64}$ ]]; then
  echo "check-base-image: AIRFLOW_IMAGE_DIGEST=$digest is not a digest: sha256: and 64 lower-case hex digits" >&2
  exit 1
fi

have_version="$("$python" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))')"
if [[ "$have_version" != "$want_version" ]]; then
  echo "check-base-image: the base image holds Airflow $have_version, not AIRFLOW_VERSION=$want_version:" \
    "AIRFLOW_IMAGE_DIGEST must be the digest of $tag" >&2
  exit 1
fi
