"""Audit the pinned environment for known vulnerabilities with pip-audit (``make audit``).

What is audited: exactly the pins, not whatever happens to be installed. ``constraints.txt`` (the venv, the
Airflow and Spark images) and ``docker/train-gpu/constraints-gpu.txt`` (the GPU image's TensorFlow, FAISS and
CUDA wheels) are read as requirements with ``--no-deps --disable-pip``: no resolution and no install, so a
package pinned there but absent from this venv is audited too.

Known findings are accepted only when listed in ``security/pip-audit-ignore.txt`` (an ID pip-audit reports or
one of its aliases) and explained in ``security/pip-audit.md``. Everything else fails.

Exit codes:
  0  every pinned package was audited; no finding beyond the known ones
  1  a new finding, a package the service could not audit, or pip-audit itself failed
  2  the vulnerability service could not be reached, or answered for none of the packages (PyPI's per-version
     JSON behind a proxy that refuses it looks like that: pip-audit then reports every package as "not found"
     and, on its own, "No known vulnerabilities found"). ``--if-unreachable warn`` makes this a loud warning and
     exit 0: CI uses it, see security/pip-audit.md for why.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINNED = (ROOT / "constraints.txt", ROOT / "docker" / "train-gpu" / "constraints-gpu.txt")
IGNORE_FILE = ROOT / "security" / "pip-audit-ignore.txt"
EXPLAINED_IN = "security/pip-audit.md"
UNREACHABLE, FAILED = 2, 1
# Exception names in pip-audit's traceback that mean "no answer from the service", not a bug or a bad file.
NETWORK_ERRORS = ("ConnectionError", "NameResolutionError", "ConnectTimeout", "ReadTimeout", "MaxRetryError", "SSLError")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One vulnerability of one pinned package."""

    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fix_versions: tuple[str, ...]

    def ids(self) -> set[str]:
        return {self.id, *self.aliases}

    def __str__(self) -> str:
        aliases = f" ({', '.join(self.aliases)})" if self.aliases else ""
        fixed = f"fixed in {', '.join(self.fix_versions)}" if self.fix_versions else "no fixed version yet"
        return f"{self.package}=={self.version}: {self.id}{aliases}, {fixed}"


@dataclasses.dataclass(frozen=True)
class Result:
    """pip-audit's report sorted against the known findings."""

    audited: int
    skipped: dict[str, str]  # package==version -> why the service could not audit it
    new: list[Finding]
    known: list[Finding]
    stale: list[str]  # ignore entries that matched nothing

    @property
    def unreachable(self) -> bool:
        return not self.audited and bool(self.skipped)


def load_ignores(path: Path = IGNORE_FILE) -> dict[str, str]:
    """``ID -> the rest of its line`` from the ignore file (``ID  # package==version: why``); ``#`` starts a comment."""
    ignores: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        entry, _, note = raw.partition("#")
        fields = entry.split()
        if not fields:
            continue
        if len(fields) > 1:
            raise ValueError(f"{path}:{number}: expected one vulnerability ID per line, received {entry.strip()!r}")
        ignores[fields[0]] = note.strip()
    return ignores


def classify(report: dict, ignores: Iterable[str]) -> Result:
    """Sort pip-audit's JSON report (``-f json``) into audited, skipped, new and known findings."""
    ignores = set(ignores)
    skipped, new, known, matched = {}, [], [], set()
    audited = 0
    for dep in report.get("dependencies", []):
        name, version = dep["name"], dep.get("version", "?")
        if dep.get("skip_reason"):
            skipped[f"{name}=={version}"] = dep["skip_reason"]
            continue
        audited += 1
        for vuln in dep.get("vulns", []):
            finding = Finding(name, version, vuln["id"], tuple(vuln.get("aliases", [])), tuple(vuln.get("fix_versions", [])))
            hits = finding.ids() & ignores
            matched |= hits
            (known if hits else new).append(finding)
    stale = sorted(ignores - matched) if not skipped else []
    return Result(audited=audited, skipped=skipped, new=new, known=known, stale=stale)


def run_pip_audit(files: Sequence[Path], service: str, timeout: int) -> tuple[dict | None, str]:
    """pip-audit's JSON report over the pinned files (None when it produced none) and its stderr."""
    with tempfile.TemporaryDirectory(prefix="pip-audit-") as tmp:
        out = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip_audit", "--no-deps", "--disable-pip", "--progress-spinner", "off"]
        cmd += ["--format", "json", "--output", str(out), "--aliases", "on", "--desc", "off"]
        cmd += ["--vulnerability-service", service, "--timeout", str(timeout)]
        for path in files:
            cmd += ["--requirement", str(path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        text = out.read_text(encoding="utf-8") if out.exists() else ""
    return (json.loads(text) if text.strip() else None), proc.stderr


def _tail(text: str, lines: int = 5) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--service", choices=("pypi", "osv"), default="pypi", help="vulnerability service (pypi)")
    parser.add_argument("--if-unreachable", choices=("fail", "warn"), default="fail", help="exit 2 (fail) or 0 (warn)")
    parser.add_argument("--timeout", type=int, default=15, help="seconds per request")
    parser.add_argument("--ignore-file", type=Path, default=IGNORE_FILE)
    parser.add_argument("files", nargs="*", type=Path, default=list(PINNED), help="pinned requirement files")
    args = parser.parse_args(argv)

    ignores = load_ignores(args.ignore_file)
    report, stderr = run_pip_audit(args.files, args.service, args.timeout)
    where = f"pip-audit --vulnerability-service {args.service}"
    if report is None:
        if not any(name in stderr for name in NETWORK_ERRORS):
            print(f"audit: FAILED: {where} produced no report; its last lines:\n{_tail(stderr)}", file=sys.stderr)
            return FAILED
        return _unreachable(args, f"{where} could not reach the service:\n{_tail(stderr, 2)}")
    result = classify(report, ignores)
    if result.unreachable:
        reason = next(iter(result.skipped.values()))
        return _unreachable(args, f"{where} audited none of {len(result.skipped)} pinned packages, e.g.: {reason}")

    for finding in result.known:
        print(f"audit: known, accepted in {args.ignore_file.name} ({EXPLAINED_IN}): {finding}")
    for entry in result.stale:
        print(f"audit: note: {entry} in {args.ignore_file.name} matched no finding; remove it and its {EXPLAINED_IN} entry")
    failed = False
    if result.skipped:
        failed = True
        print(f"audit: FAILED: {len(result.skipped)} pinned packages could not be audited:", file=sys.stderr)
        for package, reason in sorted(result.skipped.items()):
            print(f"    {package}: {reason}", file=sys.stderr)
    if result.new:
        failed = True
        print(f"audit: FAILED: {len(result.new)} new known vulnerabilities in the pinned environment:", file=sys.stderr)
        for finding in result.new:
            print(f"    {finding}", file=sys.stderr)
        print(
            f"  Upgrade the pin (make constraints) or, if it cannot be fixed yet, add the ID to {args.ignore_file.name}"
            f" and explain it in {EXPLAINED_IN}.",
            file=sys.stderr,
        )
    print(
        f"audit: {where}: {result.audited} pinned packages audited, {len(result.new)} new findings, "
        f"{len(result.known)} known, {len(result.skipped)} not audited"
    )
    return FAILED if failed else 0


def _unreachable(args: argparse.Namespace, why: str) -> int:
    if args.if_unreachable == "warn":
        print(f"audit: WARNING: NOT AUDITED: {why}", file=sys.stderr)
        print(f"audit: WARNING: no vulnerability check ran (--if-unreachable warn; see {EXPLAINED_IN})", file=sys.stderr)
        return 0
    other = "osv" if args.service == "pypi" else "pypi"
    print(f"audit: FAILED: NOT AUDITED: {why}", file=sys.stderr)
    print(f"  Check the network, or try the other service (--service {other}); see {EXPLAINED_IN}.", file=sys.stderr)
    return UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
