#!/usr/bin/env bash
# A Spark standalone master and one worker on loopback, so the ETL runs on a real cluster:
#   scripts/spark_standalone.sh start    start both in the background, wait for the worker, print the master URL
#   scripts/spark_standalone.sh status   print the master URL and the alive workers (exit 3 when not running)
#   scripts/spark_standalone.sh stop     stop both (by their pid files)
# Logs, pid files and the worker's work dir (executor logs) live in $RECPIPE_HOME/var/spark-standalone
# (SPARK_STANDALONE_DIR overrides it, so a test's cluster does not touch the one you started).
# Ports (defaults chosen away from Airflow's 8793): SPARK_MASTER_PORT (7177), SPARK_MASTER_WEBUI_PORT (8180),
# SPARK_WORKER_WEBUI_PORT (8181); SPARK_STANDALONE_TIMEOUT (60 s) bounds the wait for the worker.
set -euo pipefail

RECPIPE_HOME="${RECPIPE_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
STATE="${SPARK_STANDALONE_DIR:-$RECPIPE_HOME/var/spark-standalone}"
HOST=127.0.0.1
PORT="${SPARK_MASTER_PORT:-7177}"
UI_PORT="${SPARK_MASTER_WEBUI_PORT:-8180}"
WORKER_UI_PORT="${SPARK_WORKER_WEBUI_PORT:-8181}"
TIMEOUT="${SPARK_STANDALONE_TIMEOUT:-60}"
MASTER_CLASS=org.apache.spark.deploy.master.Master
WORKER_CLASS=org.apache.spark.deploy.worker.Worker

# Executors start Python workers with the driver's PYSPARK_PYTHON; the venv's python imports recpipe and spark_jobs.
if [ -z "${PYSPARK_PYTHON:-}" ]; then
  if [ -x "$RECPIPE_HOME/.venv/bin/python" ]; then
    PYSPARK_PYTHON="$RECPIPE_HOME/.venv/bin/python"
  else
    PYSPARK_PYTHON="$(command -v python3)"
  fi
fi
export PYSPARK_PYTHON
export SPARK_LOCAL_IP="$HOST"
if [ -z "${SPARK_HOME:-}" ]; then
  # find_spec locates the pip-installed pyspark package without importing it.
  SPARK_HOME="$("$PYSPARK_PYTHON" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("pyspark").origin))')"
fi
export SPARK_HOME

die() {
  echo "spark_standalone: $*" >&2
  exit 1
}

# The pid in a pid file, if that process is alive and still runs the expected class (pids get reused).
running_pid() {
  local file="$STATE/$1.pid" class="$2" pid args
  [ -f "$file" ] || return 1
  pid="$(cat "$file")"
  args="$(ps -p "$pid" -o args= 2> /dev/null)" || return 1
  [[ "$args" == *"$class"* ]] || return 1
  echo "$pid"
}

master_url() {
  if [ -f "$STATE/master-url" ]; then cat "$STATE/master-url"; else echo "spark://$HOST:$PORT"; fi
}

# The master UI port of the running cluster (recorded at start), else the configured one.
master_ui_port() {
  if [ -f "$STATE/master-webui-port" ]; then cat "$STATE/master-webui-port"; else echo "$UI_PORT"; fi
}

port_in_use() {
  (echo > "/dev/tcp/$HOST/$1") 2> /dev/null
}

# The master's /json/ view as "<alive workers> <status>", empty when it does not answer.
master_json() {
  local ui="$1"
  "$PYSPARK_PYTHON" - "$ui" << 'EOF' 2> /dev/null || true
import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/json/", timeout=2) as r:
    state = json.load(r)
alive = sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")
print(max(alive, int(state.get("aliveworkers", 0))), state.get("status", "?"))
EOF
}

tail_logs() {
  local f
  for f in "$STATE"/master.log "$STATE"/worker.log; do
    [ -f "$f" ] && { echo "--- last lines of $f:"; tail -n 20 "$f"; }
  done
  return 0
}

start() {
  local url pid_master
  if pid_master="$(running_pid master "$MASTER_CLASS")"; then
    echo "spark_standalone: already running (master pid $pid_master); stop it first to change ports" >&2
    master_url
    return 0
  fi
  command -v java > /dev/null 2>&1 || [ -n "${JAVA_HOME:-}" ] || die "Spark needs Java 17: no 'java' on PATH and JAVA_HOME is unset"
  [ -x "$SPARK_HOME/bin/spark-class" ] || die "no executable bin/spark-class in SPARK_HOME=$SPARK_HOME (is pyspark installed?)"
  local port
  for port in "$PORT" "$UI_PORT" "$WORKER_UI_PORT"; do
    port_in_use "$port" && die "port $port on $HOST is already in use; choose others with SPARK_MASTER_PORT," \
      "SPARK_MASTER_WEBUI_PORT and SPARK_WORKER_WEBUI_PORT"
  done
  mkdir -p "$STATE/work"
  rm -f "$STATE"/*.pid "$STATE/master-url" "$STATE/master-webui-port"
  url="spark://$HOST:$PORT"
  # Fail on a taken port instead of silently moving to the next one (the URL printed must be the real one).
  export SPARK_MASTER_OPTS="${SPARK_MASTER_OPTS:-} -Dspark.port.maxRetries=0"
  export SPARK_WORKER_OPTS="${SPARK_WORKER_OPTS:-} -Dspark.port.maxRetries=0"
  nohup "$SPARK_HOME/bin/spark-class" "$MASTER_CLASS" --host "$HOST" --port "$PORT" --webui-port "$UI_PORT" \
    > "$STATE/master.log" 2>&1 < /dev/null &
  echo $! > "$STATE/master.pid"
  nohup "$SPARK_HOME/bin/spark-class" "$WORKER_CLASS" "$url" --host "$HOST" --cores 1 --memory 1g \
    --webui-port "$WORKER_UI_PORT" --work-dir "$STATE/work" > "$STATE/worker.log" 2>&1 < /dev/null &
  echo $! > "$STATE/worker.pid"

  local deadline=$((SECONDS + TIMEOUT)) seen=""
  while [ $SECONDS -lt $deadline ]; do
    if ! running_pid master "$MASTER_CLASS" > /dev/null || ! running_pid worker "$WORKER_CLASS" > /dev/null; then
      tail_logs >&2
      stop > /dev/null
      die "the master or the worker exited during start-up; logs in $STATE"
    fi
    seen="$(master_json "$UI_PORT")"
    if [ -n "$seen" ] && [ "${seen%% *}" -ge 1 ]; then
      echo "$url" > "$STATE/master-url"
      echo "$UI_PORT" > "$STATE/master-webui-port"
      echo "$url"
      return 0
    fi
    sleep 1
  done
  tail_logs >&2
  stop > /dev/null
  die "no worker registered with $url within ${TIMEOUT}s (master UI answered: '${seen:-nothing}'); logs in $STATE"
}

stop_one() {
  local name="$1" class="$2" pid i
  if pid="$(running_pid "$name" "$class")"; then
    kill "$pid" 2> /dev/null || true
    for i in $(seq 1 20); do
      kill -0 "$pid" 2> /dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2> /dev/null; then
      echo "spark_standalone: $name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
      kill -9 "$pid" 2> /dev/null || true
    fi
    echo "stopped $name (pid $pid)"
  else
    echo "$name not running"
  fi
  rm -f "$STATE/$name.pid"
}

stop() {
  stop_one worker "$WORKER_CLASS"
  stop_one master "$MASTER_CLASS"
  rm -f "$STATE/master-url" "$STATE/master-webui-port"
}

status() {
  local pid_master pid_worker rc=0 seen
  if pid_master="$(running_pid master "$MASTER_CLASS")"; then echo "master: running (pid $pid_master) at $(master_url)"; else
    echo "master: not running"
    rc=3
  fi
  if pid_worker="$(running_pid worker "$WORKER_CLASS")"; then echo "worker: running (pid $pid_worker)"; else
    echo "worker: not running"
    rc=3
  fi
  if [ $rc -eq 0 ]; then
    seen="$(master_json "$(master_ui_port)")"
    echo "alive workers: ${seen%% *} (master UI http://$HOST:$(master_ui_port))"
  fi
  return $rc
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
