#!/usr/bin/env bash
# Runs once, when the postgres volume is first initialised (/docker-entrypoint-initdb.d): MLflow's backend store
# gets its own role and database next to Airflow's (POSTGRES_DB). Its password comes from MLFLOW_DB_PASSWORD.
set -euo pipefail
: "${MLFLOW_DB_PASSWORD:?set MLFLOW_DB_PASSWORD in docker/.env}"
# A psql variable (:'pw'), so that psql quotes the password and it is never pasted into the SQL text.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  --set=pw="$MLFLOW_DB_PASSWORD" << 'SQL'
CREATE ROLE mlflow LOGIN PASSWORD :'pw';
CREATE DATABASE mlflow OWNER mlflow;
SQL
