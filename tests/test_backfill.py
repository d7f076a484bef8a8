"""Backfills as a data engineer runs them, against ``airflow standalone`` over PostgreSQL on loopback.

One deployment and one lake for the module; the tests run in file order, each starting from what the one before
left (each day's run is the whole DAG: Spark jobs, ten trainings, indexes, gates), four DAG runs in all:

1. the browser: headless Chromium driven by Playwright logs in, opens ``nightly_retrain`` and starts a backfill
   of three days from the Trigger dialog; one successful run per day, each day's partitions and MLflow runs.
   Screenshots of the pages go to ``test-artifacts/browser`` (``RECPIPE_TEST_ARTIFACTS`` to move it).
2. the CLI: with day 2's run marked failed, ``airflow backfill create --dry-run --reprocess-behavior``
   none / failed / completed lists exactly the days its name says (missing; missing and failed; all), and a real
   ``none`` backfill of the three days creates and reruns nothing.
3. the REST API: ``POST /api/v2/backfills`` with ``reprocess_behavior: failed`` reruns day 2 alone; its
   partitions come out the same, the other days' runs are untouched, and its models are not promoted over the
   newer champions of day 3 (the gate says why).
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse
from pathlib import Path

import pytest

from orchestration.tasks import MODELS_ENV
from recpipe import lake, tracking
from tests.airflow_server import Postgres, Standalone
from tests.conftest import write_config
from tests.e2e_helpers import OUTPUTS, airflow, fingerprint, make_lake

pytestmark = pytest.mark.slow
DAG_ID = "nightly_retrain"
# The models the backfilled runs train (RECPIPE_MODELS): one recall model with its index, one ranking model.
MODELS = ("item2vec", "deepfm")
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = Path(os.environ.get("RECPIPE_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
CHROMIUM = os.environ.get("RECPIPE_CHROMIUM", "/usr/bin/chromium")
# Headless Chromium on a machine with no outside network: no background connections, no GPU, no sandbox as root.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OLDER_DAY = "an older day never replaces a newer champion"


class Deployment:
    """The module's Airflow (over its PostgreSQL), config, lake and days."""

    def __init__(self, root: Path, spark) -> None:
        from recpipe.config import load_config

        self.config_path = write_config(root / "recpipe")
        self.cfg = load_config(self.config_path)
        self.pg = Postgres()
        self.airflow = Standalone(root / "airflow", "")
        self.spark = spark
        self.days: list[str] = []

    def start(self) -> None:
        self.pg.start()
        self.airflow.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = self.pg.url()
        self.airflow.env["RECPIPE_CONFIG"] = str(self.config_path)
        # One recall and one ranking model: the backfill behaviours are per run, not per model (the whole
        # catalogue runs in tests/test_e2e_dag.py), and each model costs every day of every backfill minutes.
        self.airflow.env[MODELS_ENV] = ",".join(MODELS)
        self.airflow.start()
        # Six days of logs, the first three staged (the lookback window); the backfill covers days 4 to 6.
        self.days = make_lake(self.cfg, days=6, history=3, spark=self.spark)[3:]

    def stop(self) -> None:
        self.airflow.stop()
        self.pg.stop()

    def runs(self) -> dict[str, dict]:
        """The DAG's backfill runs by day; one run per day (a rerun reuses its day's run)."""
        runs = self.airflow.dag_runs(DAG_ID)
        by_day = {r["logical_date"][:10]: r for r in runs}
        assert len(by_day) == len(runs), f"more than one run for a day: {[r['dag_run_id'] for r in runs]}"
        return by_day

    def require_days_done(self) -> None:
        states = {ds: r["state"] for ds, r in self.runs().items()}
        if states != {ds: "success" for ds in self.days}:
            pytest.fail(f"needs the browser backfill's three successful runs (test 1), found {states}")


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, spark):
    d = Deployment(tmp_path_factory.mktemp("backfill"), spark)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECPIPE_CONFIG", str(d.config_path))  # MLflow reads below go to the deployment's store
        try:
            d.start()
            yield d
        finally:
            d.stop()


def _mlflow_runs(cfg, ds: str, model: str | None = None) -> list:
    import mlflow

    tracking.setup(cfg)
    what = f"tags.model = '{model}'" if model else "tags.stage = 'data'"
    return mlflow.search_runs(filter_string=f"tags.ds = '{ds}' and {what}", output_format="list")


def test_ui_backfill_three_days(deployment):
    from playwright.sync_api import expect, sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: make test installs Debian's chromium (scripts/test_deps.sh)"
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    server, days = deployment.airflow, deployment.days
    # Login is required: the REST API answers no one without a token, and starts no backfill for them.
    for method, path in (("GET", f"/api/v2/dags/{DAG_ID}"), ("POST", "/api/v2/backfills")):
        with pytest.raises(AssertionError, match="answered 401"):
            server.request(method, path, {"dag_id": DAG_ID} if method == "POST" else None, auth=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        try:
            # Login is required: the DAG page sends an anonymous browser to the login form.
            page.goto(f"{server.url}/dags/{DAG_ID}")
            page.wait_for_url("**/auth/login**")
            page.locator("input[name=username]").fill("admin")
            page.locator("input[name=password]").fill(server.password)
            page.screenshot(path=ARTIFACTS / "01-login.png")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"**/dags/{DAG_ID}")
            page.get_by_test_id("trigger-dag-button").click()
            dialog = page.get_by_role("dialog").first
            dialog.get_by_text("Run this Dag for a range of dates").click()
            for i, ds in enumerate((days[0], days[-1])):
                page.get_by_test_id("datetime-input").nth(i).click()
                picker = page.locator("[data-scope=popover][data-part=content][data-state=open]")
                picker.get_by_placeholder("YYYY/MM/DD").fill(ds.replace("-", "/"))
                picker.get_by_placeholder("HH:mm").fill("00:00")
                page.keyboard.press("Escape")
            # The dialog's own dry run of the range, before anything is created.
            expect(dialog.get_by_text("3 runs will be triggered.")).to_be_visible()
            dialog.get_by_text("Missing Runs", exact=True).click()
            page.screenshot(path=ARTIFACTS / "02-backfill-dialog.png")
            dialog.get_by_role("button", name="Run Backfill").click()
            expect(page.get_by_text("Backfill in progress")).to_be_visible()
            page.screenshot(path=ARTIFACTS / "03-backfill-started.png")
            (backfill,) = server.backfills(DAG_ID)
            assert (backfill["from_date"][:10], backfill["to_date"][:10]) == (days[0], days[-1])
            done = server.wait_backfill(backfill["id"])
            assert done["reprocess_behavior"] == "none"
            # The runs tab as the engineer checks it: each run's row says Success (the run id is its run_after).
            page.goto(f"{server.url}/dags/{DAG_ID}/runs")
            for run in server.dag_runs(DAG_ID):
                expect(page.get_by_role("row").filter(has_text=run["dag_run_id"])).to_contain_text("Success")
            page.screenshot(path=ARTIFACTS / "04-runs.png", full_page=True)
        except Exception:
            page.screenshot(path=ARTIFACTS / "failure.png", full_page=True)
            raise
        finally:
            browser.close()

    runs = deployment.runs()
    assert {ds: r["state"] for ds, r in runs.items()} == {ds: "success" for ds in days}
    assert all(r["run_type"] == "backfill" for r in runs.values())
    cfg = deployment.cfg
    for ds in days:
        for contract in OUTPUTS:
            assert lake.partition_ready(cfg.lake_root, contract, ds), (contract.name, ds)
        assert len(_mlflow_runs(cfg, ds)) == 1, f"data-check run of {ds}"
        for model in MODELS:
            (run,) = _mlflow_runs(cfg, ds, model)
            assert run.data.tags["airflow_run_id"] == runs[ds]["dag_run_id"], (ds, model)
    assert sorted(p.name for p in ARTIFACTS.glob("*.png")) == [
        "01-login.png",
        "02-backfill-dialog.png",
        "03-backfill-started.png",
        "04-runs.png",
    ]


def _dry_run(deployment, behavior: str, from_ds: str, to_ds: str) -> list[str]:
    out = airflow(
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        from_ds,
        "--to-date",
        to_ds,
        "--reprocess-behavior",
        behavior,
        "--dry-run",
        env=deployment.airflow.env,
    )
    attempted = out.split("Runs to be attempted:", 1)[1]
    return sorted(set(re.findall(r"\d{4}-\d{2}-\d{2}", attempted)))


def test_cli_reprocess_behaviors(deployment):
    deployment.require_days_done()
    server, days = deployment.airflow, deployment.days
    d1, d2, d3 = days
    run_id = urllib.parse.quote(deployment.runs()[d2]["dag_run_id"], safe="")
    server.request("PATCH", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}", {"state": "failed"})
    assert deployment.runs()[d2]["state"] == "failed"
    d4 = "2026-11-07"  # the day after the range: no run yet
    assert _dry_run(deployment, "none", d1, d4) == [d4]
    assert _dry_run(deployment, "failed", d1, d4) == [d2, d4]
    assert _dry_run(deployment, "completed", d1, d4) == [d1, d2, d3, d4]
    # For real: every day of the range has a run, so "none" creates no run and reruns none; day 2 stays failed.
    before = {ds: (r["state"], r["start_date"], r["end_date"]) for ds, r in deployment.runs().items()}
    airflow(
        "backfill",
        "create",
        "--dag-id",
        DAG_ID,
        "--from-date",
        d1,
        "--to-date",
        d3,
        "--reprocess-behavior",
        "none",
        env=server.env,
    )
    server.wait_backfill(max(b["id"] for b in server.backfills(DAG_ID)))
    assert {ds: (r["state"], r["start_date"], r["end_date"]) for ds, r in deployment.runs().items()} == before


def test_rest_backfill_reruns_the_failed_day(deployment):
    server, days, cfg = deployment.airflow, deployment.days, deployment.cfg
    d1, d2, d3 = days
    runs = deployment.runs()
    assert runs[d2]["state"] == "failed", "needs day 2 marked failed by the CLI test (test 2)"
    before = {c.name: fingerprint(cfg, c.name, d2) for c in OUTPUTS}
    import mlflow

    tracking.setup(cfg)
    client = mlflow.MlflowClient()
    champions = {m: client.get_model_version_by_alias(tracking.model_name(cfg, m), "champion") for m in MODELS}
    newer = {m for m, v in champions.items() if v.tags["ds"] > d2}
    assert newer, f"no champion trained after {d2}: nothing here could test the older-day rule"

    backfill = server.request(
        "POST",
        "/api/v2/backfills",
        {
            "dag_id": DAG_ID,
            "from_date": f"{d1}T00:00:00Z",
            "to_date": f"{d3}T00:00:00Z",
            "reprocess_behavior": "failed",
            "max_active_runs": 1,
        },
    )
    server.wait_backfill(backfill["id"])
    after = deployment.runs()
    assert after[d2]["state"] == "success"
    for ds in (d1, d3):  # not rerun: the same run, ended when the browser's backfill ended it
        assert after[ds]["end_date"] == runs[ds]["end_date"], ds
    assert {c.name: fingerprint(cfg, c.name, d2) for c in OUTPUTS} == before

    for model in MODELS:
        first, rerun = sorted(_mlflow_runs(cfg, d2, model), key=lambda r: r.info.start_time)  # browser's, REST's
        assert first.data.tags["airflow_run_id"] == rerun.data.tags["airflow_run_id"] == runs[d2]["dag_run_id"]
        champion = client.get_model_version_by_alias(tracking.model_name(cfg, model), "champion")
        if model in newer:
            assert rerun.data.tags["promoted"] == "false", model
            assert OLDER_DAY in rerun.data.tags["gate_reasons"], (model, rerun.data.tags["gate_reasons"])
            assert champion.version == champions[model].version, model
