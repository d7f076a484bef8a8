"""The reproduction targets run the way a user runs them: ``make <target>`` from the repository root.

``--help`` through ``REPRO_ARGS`` reaches each script's entry point (its imports, its argument parser) without
data; a missing data folder is a usage error naming the variable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TARGETS = {
    "repro-frappe": ("FRAPPE", "frappe.csv"),
    "repro-movielens": ("ML1M", "ratings.dat"),
    "bench-peers": ("FRAPPE", "frappe.csv"),
}


def _make(*args: str) -> subprocess.CompletedProcess:
    assert shutil.which("make"), "make is needed to run the documented targets"
    # A bare environment: nothing inherited from an outer `make test` decides what the Makefile does.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_make_target_reaches_the_script_entry_point(target):
    variable = TARGETS[target][0]
    proc = _make(target, f"{variable}=/nonexistent", "REPRO_ARGS=--help")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "usage:" in proc.stdout and "--src" in proc.stdout, proc.stdout[-2000:]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_make_target_without_its_data_says_what_to_pass(target):
    variable, expected_file = TARGETS[target]
    proc = _make(target)
    assert proc.returncode == 2
    assert f"usage: make {target} {variable}=" in proc.stderr and expected_file in proc.stderr
