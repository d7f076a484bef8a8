#!/usr/bin/env bash
# The nightly retrain end to end on embedded defaults: synthetic logs, two nightly runs, a summary.
# Called by `make demo`, which sets up .venv, AIRFLOW_HOME and the environment first.
set -euo pipefail
START=2026-11-01
HISTORY_END=2026-11-04
DAYS=(2026-11-05 2026-11-06)
VAR="$RECPIPE_HOME/var"
LOGS="$VAR/logs"
MARKER="$VAR/.demo"
t0=$(date +%s)

# The demo owns var/lake and var/mlflow once it has created them (marker file); it starts from empty ones
# each time, so "first run, no champion" holds. It never deletes a lake or store it did not create.
if [ -e "$VAR/lake" ] || [ -e "$VAR/mlflow" ]; then
  if [ ! -e "$MARKER" ]; then
    echo "demo: $VAR/lake or $VAR/mlflow exists and was not made by the demo; move it away (or make clean) first" >&2
    exit 1
  fi
  echo "== resetting the previous demo's var/lake and var/mlflow"
  rm -rf "$VAR/lake" "$VAR/mlflow"
fi
mkdir -p "$LOGS" && touch "$MARKER"

echo "== 1/4 synthetic click logs: 6 days, 2000 users, 1000 items (seed 42)"
recpipe generate --days 6 --users 2000 --items 1000 --seed 42 --start "$START"

echo "== 2/4 ETL history: stage events, sessions and daily aggregates for $START..$HISTORY_END (the lookback and feature windows)"
recpipe etl --start "$START" --end "$HISTORY_END" > "$LOGS/etl-history.log" 2>&1 || { tail -30 "$LOGS/etl-history.log"; exit 1; }

n=3
for ds in "${DAYS[@]}"; do
  echo "== $n/4 nightly_retrain for ds=$ds (airflow dags test; log: var/logs/nightly_retrain-$ds.log)"
  s=$(date +%s)
  if ! airflow dags test nightly_retrain "$ds" > "$LOGS/nightly_retrain-$ds.log" 2>&1; then
    grep -E "ERROR|Error|Traceback" "$LOGS/nightly_retrain-$ds.log" | tail -20
    echo "nightly_retrain failed for ds=$ds: see $LOGS/nightly_retrain-$ds.log" >&2
    exit 1
  fi
  if ! grep -q "state=success" "$LOGS/nightly_retrain-$ds.log"; then
    echo "nightly_retrain for ds=$ds did not end in success: see $LOGS/nightly_retrain-$ds.log" >&2
    exit 1
  fi
  echo "   finished in $(( $(date +%s) - s )) s; task wall times:"
  python "$RECPIPE_HOME/scripts/task_times.py" nightly_retrain "$ds" | sed 's/^/   /'
  echo
  recpipe summary --ds "$ds"
  echo "   run card: $VAR/lake/reports/nightly/ds=$ds/run_card.html (also in MLflow: run 'run card ds=$ds')"
  echo
  n=$((n + 1))
done

echo "== done in $(( $(date +%s) - t0 )) s"
echo "Lake:    $RECPIPE_HOME/var/lake   (raw/, staged/, sessions/, training/, reports/)"
echo "MLflow:  make mlflow-ui   -> http://localhost:${MLFLOW_PORT:-5000}  (experiment recpipe-nightly; models recpipe-<model> and recpipe-<recall model>-index)"
echo "Releases: recpipe releases <model>; undo one with recpipe rollback <model>"
PASSWORDS="${AIRFLOW_HOME:-$VAR/airflow}/simple_auth_manager_passwords.json.generated"
WHEN=""
if [ ! -e "$PASSWORDS" ]; then WHEN=", written by its first start"; fi
echo "Airflow: make airflow-ui  -> http://localhost:${AIRFLOW_PORT:-8793}  (login required: user admin, password in $PASSWORDS$WHEN)"
