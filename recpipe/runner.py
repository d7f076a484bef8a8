"""Run a GPU-pool step (training, evaluation, indexing) as a subprocess and collect its result.

Locally a step is ``python -m MODULE ARGS`` in this interpreter's environment; its output streams into
the caller's log, and its last ``RECPIPE_RESULT {json}`` line is the result. In production the same
module runs in the GPU image as a Kubernetes pod.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Sequence

RESULT_PREFIX = "RECPIPE_RESULT "
log = logging.getLogger(__name__)


class StepFailed(RuntimeError):
    """A step exited non-zero or printed no result."""


def run_step(module: str, args: Sequence[str]) -> dict:
    """Run ``python -m module args``; return the JSON of its ``RECPIPE_RESULT`` line.

    Raises:
        StepFailed: the process failed (with its exit code and last output lines) or printed no result.
    """
    cmd = [sys.executable, "-m", module, *args]
    log.info("running %s", " ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    tail: list[str] = []
    result = None
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
        else:
            log.info("%s", line)
            tail = [*tail, line][-20:]
    code = proc.wait()
    if code != 0:
        raise StepFailed(f"{module} exited with code {code}; last output:\n" + "\n".join(tail))
    if result is None:
        raise StepFailed(f"{module} finished without printing a {RESULT_PREFIX.strip()} line")
    return result
