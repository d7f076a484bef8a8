"""Median wall time per task of ``make demo`` over several runs, as a Markdown table.

    for i in 1 2 3; do make demo > /tmp/demo_$i.log 2>&1; done
    .venv/bin/python benchmarks/demo_times.py /tmp/demo_*.log

Reads the per-task lines the demo prints (from Airflow's metadata DB) and its total time.
"""

from __future__ import annotations

import re
import statistics
import sys
from collections import defaultdict

DAY = re.compile(r"^== \d/4 nightly_retrain for ds=(\S+)")
TASK = re.compile(r"^\s+(\w+)\s+success\s+([\d.]+) s$")
RUN = re.compile(r"^\s+finished in (\d+) s")
TOTAL = re.compile(r"^== done in (\d+) s")


def parse(path: str) -> tuple[dict[tuple[int, str], float], dict[int, float], float]:
    tasks: dict[tuple[int, str], float] = {}
    runs: dict[int, float] = {}
    total = float("nan")
    day = -1
    with open(path) as fh:
        for line in fh:
            if DAY.match(line):
                day += 1
            elif m := TASK.match(line):
                tasks[day, m.group(1)] = float(m.group(2))
            elif m := RUN.match(line):
                runs[day] = float(m.group(1))
            elif m := TOTAL.match(line):
                total = float(m.group(1))
    return tasks, runs, total


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    per_task: dict[tuple[int, str], list[float]] = defaultdict(list)
    per_run: dict[int, list[float]] = defaultdict(list)
    totals = []
    for path in paths:
        tasks, runs, total = parse(path)
        for key, value in tasks.items():
            per_task[key].append(value)
        for key, value in runs.items():
            per_run[key].append(value)
        totals.append(total)
    order = list(dict.fromkeys(name for _, name in per_task))
    print(f"| task | day 1 (no champion), median s | day 2 (vs champion), median s |  ({len(paths)} runs)")
    print("|---|---:|---:|")
    for name in order:
        cells = [f"{statistics.median(per_task[d, name]):.1f}" if per_task.get((d, name)) else "-" for d in (0, 1)]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    print(f"| **whole DAG run** | {statistics.median(per_run[0]):.0f} | {statistics.median(per_run[1]):.0f} |")
    print(
        f"\n`make demo` end to end (generate, ETL history, two runs, summaries): median {statistics.median(totals):.0f} s, "
        f"runs {', '.join(f'{t:.0f}' for t in totals)} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
