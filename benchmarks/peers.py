"""The project's DeepFM beside a peer's on exactly the same data: FuxiCTR's DeepFM on the Frappe split of the
reproduction (``benchmarks/frappe_repro.py``), test AUC, logloss and training examples per second of both.

    make bench-peers FRAPPE=path/to/frappe
    .venv/bin/python -m benchmarks.peers --src frappe/ --out var/bench/peers.md

The peer runs in its own virtualenv, ``.venv-peers`` (``--peer-venv``), made on first use from
``benchmarks/peers-constraints.txt`` (FuxiCTR, a CPU PyTorch and their dependencies, pinned): a few minutes
and a few GB once, never part of the project's environment or of ``make test``.

The split (usages, sampled negatives, 7:2:1) is made once, in this process, by the reproduction's own code;
the peer reads it as CSV files in its own virtualenv (``benchmarks/peer_fuxictr.py``), and the project's
DeepFM trains on the same arrays with the published run's settings. Both sides train with the same protocol
(batch 4096, Adam 1e-3, validation AUC after each epoch, learning rate / 10 on a plateau, patience 2, best
weights restored) on the same cores, one after the other; examples per second count every training
example of every epoch over the whole fit (validation passes included, on both sides).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from benchmarks import frappe_repro
from benchmarks.repro import run_and_report
from recpipe.adapters.frappe import import_frappe

PEER_SCRIPT = Path(__file__).with_name("peer_fuxictr.py")
PEER_CONSTRAINTS = Path(__file__).with_name("peers-constraints.txt")
PEER_PACKAGES = ("fuxictr", "torch", "polars")
DEFAULT_PEER_VENV = Path(__file__).resolve().parent.parent / ".venv-peers"


def ensure_peer_venv(venv: Path, python: str = sys.executable) -> Path:
    """The peers' virtualenv's python, making the virtualenv first when it lacks the pinned peer packages."""
    peer_python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if peer_python.is_file() and stamp.is_file() and stamp.read_text() == PEER_CONSTRAINTS.read_text():
        return peer_python
    print(f"making the peers' virtualenv {venv} from {PEER_CONSTRAINTS.name} (once; a few minutes)", flush=True)
    steps = [
        [python, "-m", "venv", str(venv)],
        [str(peer_python), "-m", "pip", "install", "-q", "-c", str(PEER_CONSTRAINTS), *PEER_PACKAGES],
    ]
    for cmd in steps:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True)
        except OSError as exc:
            raise ValueError(f"making {venv} failed (exit 127): {' '.join(cmd)}\n{exc}") from None
        if done.returncode != 0:
            raise ValueError(f"making {venv} failed (exit {done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    stamp.write_text(PEER_CONSTRAINTS.read_text())
    return peer_python


def write_split(prep: frappe_repro.Prepared, folder: Path) -> None:
    """``train.csv``, ``valid.csv`` and ``test.csv``: each field's integer id and the 0/1 ``label``."""
    for name, part in (("train", prep.train), ("valid", prep.valid), ("test", prep.test)):
        columns = {f: part.x[f] for f in frappe_repro.FIELDS} | {"label": part.y.astype("int8")}
        pacsv.write_csv(pa.table(columns), folder / f"{name}.csv")


def run_peer(python: Path, data: Path, epochs: int) -> dict:
    """Run the peer script with ``python`` on the split in ``data``; its result dict."""
    out = data / "peer.json"
    cmd = [str(python), str(PEER_SCRIPT), "--data", str(data), "--out", str(out), "--epochs", str(epochs)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ValueError(f"the peer failed (exit {done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return json.loads(out.read_text())


def report(ours: dict, peer: dict, header: str) -> str:
    """Markdown: both sides' test AUC, logloss, epochs, fit seconds and examples/s, and the ratios."""
    rows = [
        header,
        "",
        "| model | test AUC | test logloss | epochs | fit seconds | examples/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, m in (("recpipe DeepFM (Keras, TensorFlow)", ours), (f"{peer['peer']} {peer['fuxictr']}", peer)):
        rows.append(
            f"| {label} | {m['auc']:.4f} | {m['logloss']:.4f} | {m['epochs']} | {m['fit_seconds']:.0f} | "
            f"{m['examples_per_s']:,.0f} |"
        )
    rows += [
        "",
        f"recpipe / peer: examples/s x{ours['examples_per_s'] / peer['examples_per_s']:.2f}, "
        f"test AUC {ours['auc'] - peer['auc']:+.4f}, logloss {ours['logloss'] - peer['logloss']:+.4f}.",
    ]
    return "\n".join(rows) + "\n"


def run(root: str, args: argparse.Namespace, source: str) -> tuple[dict, dict, str]:
    """Make the split, train the peer then the project's DeepFM on it; (results, data summary, table)."""
    prep = frappe_repro.prepare(root, args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        write_split(prep, Path(tmp))
        peer = run_peer(ensure_peer_venv(args.peer_venv), Path(tmp), args.epochs)
    print(f"peer: {json.dumps(peer)}", flush=True)
    repro_args = frappe_repro.build_parser().parse_args(["--lake", root, "--epochs", str(args.epochs), "--seed", str(args.seed)])
    t0 = time.perf_counter()
    ours = frappe_repro.train_deep("deepfm", prep, repro_args)
    print(f"recpipe: {json.dumps(ours)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    s = prep.summary
    header = (
        f"DeepFM beside its peer on the Frappe split of the reproduction, {source} "
        f"({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, torch {peer['torch']} with {peer['threads']} "
        f"threads): {s['train']:,} train, {s['valid']:,} validation, {s['test']:,} test rows; the published "
        "DeepFM_frappe_x1 settings on both sides, seed 2021."
    )
    return {"recpipe": ours, "peer": peer}, s, report(ours, peer, header)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="peers.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--lake", help="a lake already written by `recpipe import frappe`")
    where.add_argument("--src", type=Path, help="the Frappe directory (frappe.csv, meta.csv), imported into a temporary lake")
    parser.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV, help="the peers' virtualenv (made when missing)")
    parser.add_argument("--epochs", type=int, default=100, help="the most epochs of each side")
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument("--out", type=Path, help="write the results here: the table (Markdown), or results and table (.json)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"expected --epochs >= 1, received {args.epochs}")
    importer = lambda src, root: import_frappe(src, root, start=frappe_repro.START)  # noqa: E731
    return run_and_report("peers", args, importer, run, {"protocol": "BARS frappe_x1, DeepFM"})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
