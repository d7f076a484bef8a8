#!/usr/bin/env bash
# System packages the end-to-end tests need, installed from Debian's archive when missing:
#   chromium    the browser backfill test drives it headless through Playwright (tests/test_backfill.py)
#   postgresql  Airflow's metadata database in the backfill tests, one throw-away cluster per test module
#               (tests/airflow_server.py); SQLite's locking fails Airflow's API under a busy scheduler.
set -euo pipefail

missing=()
command -v chromium > /dev/null || missing+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || missing+=(postgresql)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo > /dev/null || {
        echo "test_deps: the tests need Debian packages ${missing[*]}; install them as root (no sudo here)" >&2
        exit 1
    }
    sudo=(sudo)
fi
echo "test_deps: installing Debian packages: ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" > /dev/null
