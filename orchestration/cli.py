"""The ``recpipe`` command line.

recpipe generate --days N --users U --items I --seed S --lake PATH [--start YYYY-MM-DD]
recpipe etl --start D1 --end D2          stage events, sessions and daily aggregates for a range of days (history)
recpipe summary --ds D [--json]          what the nightly run of day D trained, gated and promoted
recpipe promote MODEL [--version V] [--force --reason TEXT]
                                         make a version (default: the newest) the champion release
recpipe rollback MODEL [--to VERSION]    restore the previous release (or an earlier released version)
recpipe releases MODEL [--json]          every promotion and rollback of a model: when, who, why, from, to
recpipe import {movielens,frappe,criteo} --src PATH [--lake PATH] [--start D] [--days N] [--overwrite]
                                         a public dataset into the raw log contract

Days are YYYY-MM-DD calendar days. --lake names the lake root to write (see recpipe.lake.check_root for
what it may not be). A malformed day, path or config exits with code 2 and says what it received.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from recpipe import lake
from recpipe.config import ConfigError, load_config
from training import catalogue


def _generate(args: argparse.Namespace) -> int:
    from recpipe import synthetic

    root = lake.check_root(args.lake or load_config(args.config).lake_root)
    days = synthetic.generate(root, days=args.days, users=args.users, items=args.items, seed=args.seed, start=args.start)
    print(f"wrote {len(days)} days {days[0]}..{days[-1]} of raw events, snapshots and oracle files under {root}")
    return 0


def _etl(args: argparse.Namespace) -> int:
    from orchestration.tasks import run_history_jobs
    from spark_jobs.common import spark_session

    cfg = load_config(args.config)
    days = lake.day_range(args.start, args.end)
    spark = spark_session("recpipe-etl-history")
    try:
        for ds in days:
            for uri in run_history_jobs(spark, cfg, ds):
                print(uri)
    finally:
        spark.stop()
    return 0


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _gate_line(row: dict) -> str:
    """The verdict in one line: the failed checks in full, the passed ones counted (all are in the run)."""
    if row["gate_passed"] is None:
        return "not run"
    head = "PASSED" if row["gate_passed"] == "true" else "FAILED"
    verdict = row.get("gate")
    if not verdict or "checks" not in verdict:  # the verdict artifact is gone: the tags name the failed checks
        failed = [r for r in (row.get("gate_failed") or "").split("; ") if r]
        return head + (": " + "; ".join(failed) if failed else "")
    checks = verdict["checks"]
    failed = [c["message"] for c in checks if not c["passed"]]
    notes = [n for n in (verdict.get("champion_note"), *verdict.get("notes", ())) if n]
    said = [*notes[:1], *failed]
    return f"{head} ({len(checks) - len(failed)} of {len(checks)} checks passed)" + (": " + "; ".join(said) if said else "")


def _summary(args: argparse.Namespace) -> int:
    from reporting.summarize import summarize

    rows = summarize(args.ds)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"no training runs found for ds={args.ds}")
        return 1
    print(f"nightly_retrain ds={args.ds}")
    for row in rows:
        m = row["metrics"]
        keys = ["recall_at_50", "hr_at_50"] if "recall_at_50" in m else ["auc", "logloss", "gauc"]
        recall_refs = ["popularity_recall_at_50", "itemknn_recall_at_50", "oracle_recall_at_50", "index_recall_at_50"]
        refs = recall_refs if "recall_at_50" in m else ["lr_auc", "oracle_auc"]
        print(f"\n  {row['model']}  v{row['version']}" + (f" (index v{row['index_version']})" if row["index_version"] else ""))
        for k in keys:
            champ = m.get(f"champion_{k}")
            print(f"    {k:<24} challenger {_fmt(m.get(k))}   champion {_fmt(champ)}")
        for k in refs:
            print(f"    {k:<24} {_fmt(m.get(k))}")
        champion = row["champion_version"]
        print(f"    champion before run      {'none (first run)' if champion == 'none' else 'v' + str(champion)}")
        print(f"    gate                     {_gate_line(row)}")
        promoted = f"yes: alias champion -> v{row['version']}" if row["promoted"] == "true" else "no"
        print(f"    promoted                 {promoted}")
    return 0


def _promote(args: argparse.Namespace) -> int:
    from indexing.promote import promote_version

    result = promote_version(
        load_config(args.config), args.model, args.version, force=args.force, reason=args.reason or "", who=args.by
    )
    _print_switch(args.model, result)
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from indexing.release import rollback

    result = rollback(load_config(args.config), args.model, args.to, who=args.by, reason=args.reason or "")
    _print_switch(args.model, result)
    return 0


def _release_name(release: dict | None) -> str:
    if release is None:
        return "nothing"
    index = f" + index v{release['index_version']}" if release.get("index_version") is not None else ""
    return f"v{release['model_version']}{index} (ds={release['ds'] or '?'})"


def _print_switch(model: str, result: dict) -> None:
    if not result["changed"]:
        print(f"{model}: {_release_name(result['to'])} is already the champion; nothing changed")
        return
    print(f"{model}: champion {_release_name(result['from'])} -> {_release_name(result['to'])}")


def _releases(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from indexing.release import history

    events = history(load_config(args.config), args.model)
    if args.json:
        print(json.dumps(events, indent=2))
        return 0
    if not events:
        print(f"{args.model}: no releases yet")
        return 0
    print(f"{'time (UTC)':<20} {'action':<14} {'from':<8} {'to':<8} {'index':<6} {'ds':<11} {'status':<10} {'by':<24} reason")
    for e in events:
        when = datetime.fromtimestamp(e["time_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        index = "-" if e.get("to_index_version", "none") == "none" else f"v{e['to_index_version']}"
        before = "-" if e["from_model_version"] == "none" else f"v{e['from_model_version']}"
        print(
            f"{when:<20} {e['action']:<14} {before:<8} {'v' + e['to_model_version']:<8} {index:<6} {e.get('to_ds', ''):<11} "
            f"{e['status']:<10} {e['actor']:<24} {e.get('reason', '')}"
        )
    return 0


def _import(args: argparse.Namespace) -> int:
    from recpipe.adapters import import_dataset

    root = lake.check_root(args.lake or load_config(args.config).lake_root)
    summary = import_dataset(args.format, args.src, root, start=args.start, days=args.days, overwrite=args.overwrite)
    print(summary.describe())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recpipe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="config YAML (default: $RECPIPE_CONFIG or the embedded one)")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="write synthetic classifieds click logs into the lake")
    gen.add_argument("--days", type=int, required=True)
    gen.add_argument("--users", type=int, default=2000)
    gen.add_argument("--items", type=int, default=1000)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--start", default="2026-11-01", help="first day, YYYY-MM-DD")
    gen.add_argument("--lake", default=None, help="lake root (default: the config's lake_root)")
    gen.set_defaults(func=_generate)
    etl = sub.add_parser("etl", help="stage events, sessions and daily aggregates for a range of days (the history windows)")
    etl.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    etl.add_argument("--end", required=True, help="last day, YYYY-MM-DD (inclusive)")
    etl.set_defaults(func=_etl)
    summ = sub.add_parser("summary", help="print what the nightly run of a day did")
    summ.add_argument("--ds", required=True, help="the day, YYYY-MM-DD")
    summ.add_argument("--json", action="store_true")
    summ.set_defaults(func=_summary)
    models = list(catalogue.MODELS)
    prom = sub.add_parser("promote", help="make a model version (and its index) the champion release")
    prom.add_argument("model", choices=models)
    prom.add_argument("--version", type=int, default=None, help="model version (default: the newest)")
    prom.add_argument("--force", action="store_true", help="override a failed gate (needs --reason)")
    prom.add_argument("--reason", default=None, help="why; required with --force, recorded in the release history")
    prom.add_argument("--by", default=None, help="who (default: $RECPIPE_ACTOR or the login name)")
    prom.set_defaults(func=_promote)
    roll = sub.add_parser("rollback", help="restore the previous release of a model in one command")
    roll.add_argument("model", choices=models)
    roll.add_argument("--to", type=int, default=None, help="a version released before (default: the previous release)")
    roll.add_argument("--reason", default=None, help="why, recorded in the release history")
    roll.add_argument("--by", default=None, help="who (default: $RECPIPE_ACTOR or the login name)")
    roll.set_defaults(func=_rollback)
    rel = sub.add_parser("releases", help="print a model's release history")
    rel.add_argument("model", choices=models)
    rel.add_argument("--json", action="store_true")
    rel.set_defaults(func=_releases)
    imp = sub.add_parser("import", help="import a public dataset (movielens, frappe, criteo) into the lake's raw logs")
    imp.add_argument("format", choices=["movielens", "frappe", "criteo"])
    imp.add_argument(
        "--src",
        required=True,
        help="movielens: the ml-1m directory (ratings.dat, users.dat, movies.dat); frappe: the directory holding "
        "frappe.csv and meta.csv; criteo: train.txt or a day file (.gz read as is), or its directory",
    )
    imp.add_argument("--lake", default=None, help="lake root (default: the config's lake_root)")
    imp.add_argument(
        "--start",
        default="2026-11-01",
        help="first day, YYYY-MM-DD, for frappe and criteo, which have no dates; ignored for movielens, "
        "which keeps its real (UTC) dates",
    )
    imp.add_argument("--days", type=int, default=None, help="criteo only: days the rows are spread over (default 7)")
    imp.add_argument("--overwrite", action="store_true", help="replace partitions that already exist (default: refuse)")
    imp.set_defaults(func=_import)
    return parser


# Options that name a day: each is checked by lake.parse_ds before the command does anything.
DAY_OPTIONS = ("ds", "start", "end")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; a malformed day, path or config is an error naming it, with exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        for option in DAY_OPTIONS:
            value = getattr(args, option, None)
            if value is not None:
                lake.parse_ds(value, f"--{option}")
        return args.func(args)
    except (ConfigError, ValueError, lake.LakeError) as exc:  # ReleaseError is a ValueError
        print(f"recpipe {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
