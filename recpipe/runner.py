"""GPU-pool steps (training, evaluation, indexing): run as a subprocess, report one JSON result.

By default a step is ``python -m MODULE ARGS`` in this interpreter's environment; its output streams
into the caller's log and its last ``RECPIPE_RESULT {json}`` line is the result. In production the same
module runs in the GPU image as a Kubernetes pod. ``step_main`` is the shared ``main()`` of step modules.

``RECPIPE_STEPS=inprocess`` (the local deployment: ``make demo`` and ``make test`` set it) calls the
module's ``main(args)`` in the calling process instead. Under ``airflow dags test``, which runs a whole
DAG run in one process, TensorFlow and MLflow are then imported once per run rather than once per step:
most of a small step's time on a 2-core machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence

RESULT_PREFIX = "RECPIPE_RESULT "
# When set, ``step_main`` also writes the result JSON to this path: a Kubernetes pod's XCom file
# (``/airflow/xcom/return.json``, which KubernetesPodOperator's sidecar pushes as the task's return value).
RESULT_FILE_ENV = "RECPIPE_RESULT_FILE"
STEPS_ENV = "RECPIPE_STEPS"
STEP_MODES = ("subprocess", "inprocess")
log = logging.getLogger(__name__)


class StepFailed(RuntimeError):
    """A step exited non-zero or printed no valid result."""


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the step's whole process group (it may have started its own children)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_step(module: str, args: Sequence[str]) -> dict:
    """Run ``python -m module args``; return the JSON of its ``RECPIPE_RESULT`` line.

    If the caller is interrupted (an Airflow timeout or a killed task), the step is terminated too,
    so it never keeps holding a GPU slot.

    Raises:
        StepFailed: the process failed (with its exit code and last output lines) or printed no valid result.
    """
    mode = os.environ.get(STEPS_ENV) or "subprocess"
    if mode not in STEP_MODES:
        raise StepFailed(f"{STEPS_ENV} must be one of {', '.join(STEP_MODES)}; received {mode!r}")
    if mode == "inprocess":
        return _run_in_process(module, args)
    cmd = [sys.executable, "-m", module, *args]
    log.info("running %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True)
    tail: list[str] = []
    result_line = None
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            if line.startswith(RESULT_PREFIX):
                result_line = line[len(RESULT_PREFIX) :]
            else:
                log.info("%s", line)
                tail = [*tail, line][-20:]
        code = proc.wait()
    finally:
        _stop(proc)
    if code != 0:
        raise StepFailed(f"{module} exited with code {code}; last output:\n" + "\n".join(tail))
    if result_line is None:
        raise StepFailed(f"{module} finished without printing a {RESULT_PREFIX.strip()} line")
    try:
        return json.loads(result_line)
    except json.JSONDecodeError as exc:
        raise StepFailed(f"{module} printed a result that is not JSON ({exc}): {result_line[:200]!r}") from None


def _run_in_process(module: str, args: Sequence[str]) -> dict:
    """Call ``module.main(args)`` here; its exceptions propagate as the task's failure."""
    log.info("running %s %s in this process (%s=inprocess)", module, " ".join(args), STEPS_ENV)
    result = importlib.import_module(module).main(list(args))
    if not isinstance(result, dict):
        raise StepFailed(f"{module}.main returned {type(result).__name__}, expected the step's result dict")
    return result


def step_main(description: str, step: Callable[[argparse.Namespace], dict], models: Sequence[str], argv=None) -> dict:
    """Shared ``main()`` of a step module: ``--model --ds --config [--run-id]``; prints and returns the result.

    With ``$RECPIPE_RESULT_FILE`` set, the result is also written there (to a temporary name, then moved).
    """
    from recpipe import lake

    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, choices=sorted(models))
    parser.add_argument("--ds", required=True, help="the day, YYYY-MM-DD")
    parser.add_argument("--config", default=None, help="config YAML (default: $RECPIPE_CONFIG or the embedded one)")
    parser.add_argument("--run-id", default=None, help="the challenger's MLflow run (steps after training)")
    parser.add_argument("--airflow-run-id", default=None)
    args = parser.parse_args(argv)
    lake.parse_ds(args.ds)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result = step(args)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    if path := os.environ.get(RESULT_FILE_ENV):
        _write_result(path, result)
    return result


def _write_result(path: str, result: dict) -> None:
    """Write the result JSON whole: a reader never sees half a file."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(result, out)
    os.replace(tmp, path)
