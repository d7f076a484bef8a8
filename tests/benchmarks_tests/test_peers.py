"""``make bench-peers``'s plumbing: the split both sides train on, the peer's own virtualenv, the report.

The peer itself (FuxiCTR on PyTorch) lives only in ``.venv-peers``, which ``make test`` never installs: here a
stand-in interpreter checks what the peer would be handed and answers in the peer script's result format.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pytest

from benchmarks import frappe_repro, peers
from tests.benchmarks_tests.test_frappe_repro import planted

PEER_RESULT = {
    "peer": "FuxiCTR DeepFM",
    "fuxictr": "2.3.10",
    "torch": "stand-in",
    "threads": 2,
    "auc": 0.5,
    "logloss": 0.7,
    "epochs": 1,
    "train_examples": 0,
    "fit_seconds": 10.0,
    "examples_per_s": 100.0,
}


def _stand_in_venv(venv: Path, seen: Path) -> Path:
    """A virtualenv whose python records the peer's arguments and the split's row counts, then writes a result."""
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text(
        f"#!{sys.executable}\n"
        "import json, sys, pathlib\n"
        "args = sys.argv[1:]\n"
        "data = pathlib.Path(args[args.index('--data') + 1])\n"
        "rows = {s: len((data / f'{s}.csv').read_text().splitlines()) - 1 for s in ('train', 'valid', 'test')}\n"
        f"pathlib.Path({str(seen)!r}).write_text(json.dumps({{'args': args, 'rows': rows}}))\n"
        f"pathlib.Path(args[args.index('--out') + 1]).write_text(json.dumps({PEER_RESULT!r}))\n"
    )
    python.chmod(0o755)
    (venv / ".installed").write_text(peers.PEER_CONSTRAINTS.read_text())
    return venv


def test_the_split_is_written_as_the_ids_and_labels_the_model_trains_on(tmp_path):
    split = frappe_repro.Samples({f: np.arange(3, dtype=np.int32) + i for i, f in enumerate(frappe_repro.FIELDS)}, np.r_[1, 0, 0])
    prep = frappe_repro.Prepared(split, split, split, {}, {})
    peers.write_split(prep, tmp_path)
    table = pacsv.read_csv(tmp_path / "train.csv")
    assert table.column_names == [*frappe_repro.FIELDS, "label"]
    assert table.column("item").to_pylist() == [1, 2, 3] and table.column("label").to_pylist() == [1, 0, 0]
    assert {p.name for p in tmp_path.iterdir()} == {"train.csv", "valid.csv", "test.csv"}


def test_both_sides_train_on_the_same_split_and_the_report_compares_them(tmp_path, capsys):
    seen = tmp_path / "seen.json"
    venv = _stand_in_venv(tmp_path / "venv", seen)
    out = tmp_path / "peers.json"
    src = planted(tmp_path / "frappe")
    assert peers.main(["--src", str(src), "--peer-venv", str(venv), "--epochs", "1", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    handed = json.loads(seen.read_text())
    data = result["data"]
    assert handed["rows"] == {"train": data["train"], "valid": data["valid"], "test": data["test"]}
    assert handed["args"][0] == str(peers.PEER_SCRIPT) and handed["args"][-2:] == ["--epochs", "1"]
    ours = result["results"]["recpipe"]
    assert ours["epochs"] == 1 and 0.0 <= ours["auc"] <= 1.0 and ours["examples_per_s"] > 0
    ratio = ours["examples_per_s"] / PEER_RESULT["examples_per_s"]
    assert f"examples/s x{ratio:.2f}" in result["table"] and "| FuxiCTR DeepFM 2.3.10 | 0.5000 | 0.7000 | 1 |" in result["table"]
    assert result["table"] in capsys.readouterr().out


def test_a_current_peer_venv_is_reused_and_a_failed_install_says_which_step(tmp_path, monkeypatch):
    venv = _stand_in_venv(tmp_path / "venv", tmp_path / "seen.json")

    def no_subprocess(*args, **kwargs):
        raise AssertionError(f"ran {args}")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    assert peers.ensure_peer_venv(venv) == venv / "bin" / "python"
    monkeypatch.undo()
    (venv / ".installed").write_text("older pins")
    with pytest.raises(ValueError, match=r"making .* failed \(exit \d+\): .*-m venv"):
        peers.ensure_peer_venv(venv, python=str(tmp_path / "no-such-python"))


def test_the_peer_script_runs_its_parser_without_the_peer_libraries(tmp_path):
    script = str(peers.PEER_SCRIPT)
    shown = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "FuxiCTR" in shown.stdout and "--data" in shown.stdout
    missing = subprocess.run([sys.executable, script, "--data", str(tmp_path), "--out", "x.json"], capture_output=True, text=True)
    assert missing.returncode == 2 and "lacks train.csv, valid.csv, test.csv" in missing.stderr
