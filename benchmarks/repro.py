"""What the dataset reproduction commands share: the model-list option, and importing, running and reporting."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recpipe import lake
from recpipe.adapters.common import InputError

# (lake root, parsed arguments, where the data came from) -> (per-model results, data summary, Markdown table)
Runner = Callable[[str, argparse.Namespace, str], tuple[dict, dict, str]]


def model_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """An argparse ``type`` for ``--models a,b``: a non-empty, de-duplicated subset of ``choices``, in order."""

    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in choices]
        if not names or unknown:
            raise argparse.ArgumentTypeError(f"expected a comma-separated subset of {','.join(choices)}, received {text!r}")
        return list(dict.fromkeys(names))

    return parse


def run_and_report(
    prog: str,
    args: argparse.Namespace,
    importer: Callable[[Path, str], Any],
    run: Runner,
    extra: dict[str, Any],
) -> int:
    """Import ``args.src`` into a temporary lake (or use ``args.lake``), run, print the table, write ``args.out``.

    ``args.out`` ending in ``.json`` gets the arguments, ``extra`` (protocol, published figures), the data
    summary, the results and the table; any other name the Markdown table. Bad input returns 2.
    """
    try:
        if args.src is not None:
            with tempfile.TemporaryDirectory(prefix=f"{prog}-lake-") as root:
                print(importer(args.src, root).describe(), flush=True)
                results, summary, table = run(root, args, f"imported from {args.src}")
        else:
            results, summary, table = run(args.lake, args, f"lake {args.lake}")
    except (InputError, ValueError, lake.LakeError) as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if args.out.suffix == ".json":
            payload = {"args": {**vars(args), "src": args.src and str(args.src), "out": str(args.out)}, **extra}
            payload |= {"data": summary, "results": results, "table": table}
            args.out.write_text(json.dumps(payload, indent=1, default=str))  # paths among the arguments
        else:
            args.out.write_text(table)
        print(f"wrote {args.out}")
    return 0
