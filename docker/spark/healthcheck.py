#!/usr/bin/env python3
"""Health probe of the recpipe Spark image: ``recpipe-spark-healthcheck [master|worker]``.

Without an argument (the image's HEALTHCHECK) the role is read from the container's command line (PID 1): a
master is healthy when its web UI's ``/json/`` says ALIVE, a worker when it is registered with a master; any
other container (a spark-submit driver) is healthy. Ports: ``SPARK_MASTER_WEBUI_PORT`` (8080) and
``SPARK_WORKER_WEBUI_PORT`` (8081), as Spark's own scripts name them.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request

ROLES = {"org.apache.spark.deploy.master.Master": "master", "org.apache.spark.deploy.worker.Worker": "worker"}


def detect_role(cmdline_path: str = "/proc/1/cmdline") -> str | None:
    """The Spark daemon named on the command line of PID 1, or None."""
    with open(cmdline_path, "rb") as handle:
        args = handle.read().decode(errors="replace").split("\0")
    return next((ROLES[arg] for arg in args if arg in ROLES), None)


def check(role: str) -> str:
    """Raise if the daemon of ``role`` is not up; a one-line status otherwise."""
    if role == "master":
        url = f"http://localhost:{os.environ.get('SPARK_MASTER_WEBUI_PORT', '8080')}/json/"
    elif role == "worker":
        url = f"http://localhost:{os.environ.get('SPARK_WORKER_WEBUI_PORT', '8081')}/json/"
    else:
        raise ValueError(f"role must be master or worker, received {role!r}")
    with urllib.request.urlopen(url, timeout=5) as response:
        state = json.load(response)
    if role == "master" and state.get("status") != "ALIVE":
        raise RuntimeError(f"master status is {state.get('status')!r}, expected 'ALIVE'")
    if role == "worker" and not str(state.get("masterurl", "")).startswith("spark://"):
        raise RuntimeError(f"worker is not registered with a master (masterurl {state.get('masterurl')!r})")
    return f"{role} ok ({url})"


def main(argv: list[str]) -> int:
    role = argv[1] if len(argv) > 1 else detect_role()
    if role is None:
        return 0
    try:
        print(check(role))
    except Exception as exc:  # any failure (refused, timeout, bad state) is "unhealthy", with the reason
        print(f"recpipe-spark-healthcheck: {role} unhealthy: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
