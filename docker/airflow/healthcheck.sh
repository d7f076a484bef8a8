#!/usr/bin/env bash
# Health probe of the recpipe Airflow image: recpipe-healthcheck [ROLE]
#   ROLE is api-server, scheduler, dag-processor, triggerer or mlflow. Without it (the image's HEALTHCHECK) the
#   role is read from the container's command line (PID 1); a container with no long-running role (airflow-init,
#   a one-off CLI command) is healthy.
# The same probes as Airflow's own docker-compose.yaml, plus MLflow's /health.
set -euo pipefail

role="${1:-}"
if [ -z "$role" ]; then
  mapfile -d '' args < /proc/1/cmdline
  for arg in "${args[@]}"; do
    case "${arg##*/}" in
      api-server | scheduler | dag-processor | triggerer | mlflow)
        role="${arg##*/}"
        break
        ;;
    esac
  done
fi

probe() {
  curl --fail --silent --show-error --max-time 10 --output /dev/null "$1"
}

case "$role" in
  api-server) probe "http://localhost:${AIRFLOW__API__PORT:-8080}/api/v2/monitor/health" ;;
  # Needs [scheduler] enable_health_check = True (compose sets it).
  scheduler) probe "http://localhost:${AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT:-8974}/health" ;;
  dag-processor) airflow jobs check --job-type DagProcessorJob --local ;;
  triggerer) airflow jobs check --job-type TriggererJob --local ;;
  mlflow) probe "http://localhost:${MLFLOW_PORT:-5000}/health" ;;
  "") exit 0 ;;
  *)
    echo "recpipe-healthcheck: unknown role '$role'; expected api-server, scheduler, dag-processor, triggerer or mlflow" >&2
    exit 2
    ;;
esac
