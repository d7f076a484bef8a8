#!/usr/bin/env bash
# One-off set-up of the local cluster's Airflow (the airflow-init service of docker/compose.yaml): migrate the
# metadata database, create the `gpu` pool, and give SimpleAuthManager the admin's password from
# AIRFLOW_ADMIN_PASSWORD. Safe to rerun: each `docker compose up` runs it again (a changed password takes effect).
set -euo pipefail
: "${AIRFLOW_ADMIN_PASSWORD:?set AIRFLOW_ADMIN_PASSWORD in docker/.env}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:?compose.yaml sets it}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:?compose.yaml sets it}"

airflow db migrate
airflow pools set gpu "${RECPIPE_GPU_SLOTS:-1}" "GPU slots for training, evaluation and indexing"

# SimpleAuthManager reads {"user": "password"} from this file, and generates (and logs) a password only for a
# configured user missing from it. The admin user is the first of simple_auth_manager_users; the file is written
# whole (temporary name, then rename) and readable by the airflow user alone.
umask 077
python - << 'PY'
import json
import os

path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
admin = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"].split(",")[0].split(":")[0]
with open(f"{path}.tmp", "w", encoding="utf-8") as out:
    json.dump({admin: os.environ["AIRFLOW_ADMIN_PASSWORD"]}, out)
os.replace(f"{path}.tmp", path)
print(f"airflow-init: user {admin!r} logs in with AIRFLOW_ADMIN_PASSWORD")
PY
