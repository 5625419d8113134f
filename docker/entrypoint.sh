#!/usr/bin/env bash
# Entry point of the ECS task image: checks the wiring a task needs, then hands over to the official
# Airflow image's entry point. Exits 64 (EX_USAGE) with a message naming the fix when the task
# could not work, so the reason shows in the ECS task's stoppedReason/logs rather than as a hang.
set -euo pipefail

NEXT_ENTRYPOINT="${ECS_EXECUTOR_NEXT_ENTRYPOINT:-/entrypoint}"
DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-/opt/airflow/dags}"

fail() {
  echo "ecs-entrypoint: $*" >&2
  exit 64
}

# 1. Where the task reports: [core] execution_api_server_url, or derived from [api] base_url.
if [[ -z "${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-}" ]]; then
  if [[ -n "${AIRFLOW__API__BASE_URL:-}" ]]; then
    export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__API__BASE_URL%/}/execution/"
  else
    fail "AIRFLOW__CORE__EXECUTION_API_SERVER_URL is not set: set it in the task definition's environment to the API server's URL as seen from the task's subnets (e.g. https://airflow.internal/execution/)"
  fi
fi
url="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL}"
case "$url" in
  http://*|https://*) ;;
  *) fail "AIRFLOW__CORE__EXECUTION_API_SERVER_URL=$url is not an http(s) URL" ;;
esac
# The host of the URL: no path, query or fragment, no user info, no port; brackets kept for IPv6.
authority="${url#*://}"; authority="${authority%%[/?#]*}"; authority="${authority##*@}"
if [[ "$authority" == \[* ]]; then
  host="${authority%%]*}]"
else
  host="${authority%%:*}"
fi
host="${host,,}"; host="${host%.}"
is_loopback() {
  case "$1" in
    localhost|*.localhost|127.*|0.0.0.0|0|"[::1]"|"[::]"|"[0:0:0:0:0:0:0:1]"|"[0:0:0:0:0:0:0:0]"|"[::ffff:127."*) return 0 ;;
    *) return 1 ;;
  esac
}
if is_loopback "$host" && [[ "${ECS_EXECUTOR_ALLOW_LOOPBACK:-}" != "1" ]]; then
  fail "AIRFLOW__CORE__EXECUTION_API_SERVER_URL=$url points at the task itself; use the API server's address inside the VPC (ECS_EXECUTOR_ALLOW_LOOPBACK=1 for local runs)"
fi

# 2. DAGs: baked into the image, or a DAG bundle configured through the environment.
if [[ -z "${AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST:-}" ]]; then
  if ! find "$DAGS_FOLDER" -name '*.py' -print -quit 2>/dev/null | grep -q .; then
    fail "no DAG files in $DAGS_FOLDER and no AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST: bake DAGs into the image (--build-arg DAGS_DIR=...) or set AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST in the task definition (the template's DagBundleConfigList) for a git/S3 DAG bundle"
  fi
fi

# 3. Credentials come from the task role; static keys in the environment are a leak waiting to happen.
if [[ -n "${AWS_ACCESS_KEY_ID:-}" && -n "${AWS_CONTAINER_CREDENTIALS_RELATIVE_URI:-}" ]]; then
  echo "ecs-entrypoint: warning: AWS_ACCESS_KEY_ID is set and overrides the task role's credentials; remove it from the task definition" >&2
fi

exec "$NEXT_ENTRYPOINT" "$@"
