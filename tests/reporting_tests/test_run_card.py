"""The nightly run card against a real MLflow (SQLite, temporary) holding one night's hand-made runs."""

import json
import re

import mlflow
import numpy as np
import pytest

from recpipe import tracking
from recpipe.config import load_config
from reporting import run_card
from tests.conftest import write_config
from training import catalogue
from training.metrics import roc_points
from validation.gates import Threshold, evaluate_gate

DS = "2026-11-05"
AIRFLOW = "scheduled__2026-11-05T00:00:00+00:00"
FAILED_REASON = "auc=0.7000 vs champion 0.7200: drop +0.0200 exceeds max 0.0100"
SCRIPT_REASON = "<script>alert('x')</script> & more"


def _train_run(cfg, model: str, airflow: str, params: dict, metrics: dict, tags: dict) -> str:
    with mlflow.start_run(
        run_name=f"{model} ds={DS}", tags={"model": model, "ds": DS, "stage": "train", "airflow_run_id": airflow, **tags}
    ) as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
    return run.info.run_id


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """One night: a data run, a ranking run failing its gate against a champion, a first recall run, a decoy."""
    root = tmp_path_factory.mktemp("run-card")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECPIPE_CONFIG", str(write_config(root)))
        cfg = load_config()
        tracking.setup(cfg)
        client = mlflow.MlflowClient()
        ids = {}

        with mlflow.start_run(run_name=f"data ds={DS}", tags={"stage": "data", "ds": DS, "airflow_run_id": AIRFLOW}) as run:
            mlflow.log_metrics({"raw_rows": 1000, "quarantine_crawler": 3})
            mlflow.log_dict({"ds": DS, "raw_rows": 1000, "counts": {"crawler": 3, "bad_type": 0}}, "data/quarantine_counts.json")
            mlflow.log_dict(
                {"suite": "staged_events", "success": True, "rows": 997, "evaluated": 30, "failed": [], "report": "/lake/se"},
                "data/staged_events_check.json",
            )
            failed = {"expectation": "expect_column_values_to_not_be_null", "kwargs": {"column": "label"}}
            mlflow.log_dict(
                {
                    "suite": "ranking_samples",
                    "success": False,
                    "rows": 50,
                    "evaluated": 12,
                    "failed": [failed],
                    "report": "/lake/rs",
                },
                "data/ranking_samples_check.json",
            )
            # As pipeline.validate_features logs a check that raised: its message instead of the summary.
            error = {"suite": "retrieval_samples", "success": False, "error": "retrieval failed <x>\nfull report: /r"}
            mlflow.log_dict(error, "data/retrieval_samples_check.json")
            ids["data"] = run.info.run_id

        # The champion: version 1 of wide_deep, trained with other params.
        name = tracking.model_name(cfg, "wide_deep")
        tracking.ensure_registered_model(name, "test")
        champion_params = {"ranking.learning_rate": "0.003", "etl.seed": "7", "only.champion": "yes"}
        with mlflow.start_run(tags={"model": "wide_deep", "ds": "2026-11-04", "stage": "train"}) as run:
            mlflow.log_params(champion_params)
            source = mlflow.get_artifact_uri("model")
        client.create_model_version(name, source=source, run_id=run.info.run_id)
        ids["champion"] = run.info.run_id

        challenger_params = {"ranking.learning_rate": "0.01", "etl.seed": "7", "only.challenger": "yes"}
        metrics = {
            "auc": 0.70,
            "champion_auc": 0.72,
            "logloss": 0.50,
            "champion_logloss": 0.49,
            "auc__city_3": 0.68,
            "champion_auc__city_3": 0.60,
            "rows__city_3": 400,
            "auc__user_type_B": 0.71,
            "champion_auc__user_type_B": 0.75,
            "train_seconds": 12.0,
        }
        tags = {"model_version": "2", "champion_version": "1", "gate_passed": "false", "promoted": "false"}
        ids["wide_deep"] = _train_run(cfg, "wide_deep", AIRFLOW, challenger_params, metrics, tags)
        with mlflow.start_run(run_id=ids["wide_deep"]):
            for step, loss in enumerate([0.6, 0.5, 0.45]):
                mlflow.log_metric("train_loss", loss, step=step)
            rng = np.random.default_rng(0)
            labels = rng.integers(0, 2, 300)
            mlflow.log_dict(roc_points(labels, np.clip(labels * 0.3 + rng.random(300) * 0.7, 0, 1)), "eval/roc.json")
            # As indexing.promote.decide writes it: structured checks, a note that is not a check.
            result = evaluate_gate({"auc": 0.70}, {"auc": 0.72}, [Threshold("auc", None, 0.01)]).with_notes(SCRIPT_REASON)
            verdict = result.to_dict()
            assert verdict["reasons"] == [FAILED_REASON, SCRIPT_REASON] and not verdict["passed"]
            mlflow.log_dict(verdict, "gate/verdict.json")
        # A newer wide_deep run of another Airflow run of the same day: not this card's.
        ids["decoy"] = _train_run(cfg, "wide_deep", "manual", challenger_params, {"auc": 0.99}, {"model_version": "3"})

        recall = {"recall_at_10": 0.2, "recall_at_50": 0.4, "recall_at_100": 0.5, "popularity_recall_at_50": 0.1}
        recall |= {"hr_at_50": 0.6, "recall_at_50__city_1": 0.35, "rows__city_1": 20, "index_recall_at_50": 0.93}
        recall |= {"single_recall_at_50__city_1": 0.3, "single_rows__city_1": 20}  # item2vec's multi-line copies
        recall |= {"index_latency_ms_p50_batch1": 0.4, "index_size": 500}
        tags = {"model_version": "1", "index_version": "1", "champion_version": "none", "promoted": "true"}
        tags["index_params"], tags["index_factory"] = json.dumps({"nprobe": 4}), "IVF16,Flat"
        ids["item2vec"] = _train_run(cfg, "item2vec", AIRFLOW, {}, recall, tags)
        refused = {"model_version": "1", "champion_version": "none", "index_error": "held-out index recall@50 is 0.8000"}
        ids["youtube_dnn"] = _train_run(cfg, "youtube_dnn", AIRFLOW, {}, {"recall_at_50": 0.3}, refused)
        with mlflow.start_run(run_id=ids["item2vec"]):
            for step, loss in enumerate([1.2, 0.9]):
                mlflow.log_metric("train_loss", loss, step=step)
            verdict = {"passed": True, "first_run": True, "reasons": ["first run: no champion to compare with, only floors"]}
            mlflow.log_dict(verdict, "gate/verdict.json")

        card = run_card.collect(cfg, DS, AIRFLOW)
        yield {"cfg": cfg, "ids": ids, "card": card, "html": run_card.render(card)}  # RECPIPE_CONFIG stays set


def _model(card: dict, model: str) -> dict:
    return next(m for m in card["models"] if m["model"] == model)


def _section(page: str, model: str) -> str:
    start = page.index(f'id="model-{model}"')
    return page[start : page.index("</section>", start)]


def test_collect_finds_the_data_checks_and_each_models_run(night):
    card, ids = night["card"], night["ids"]
    assert card["data"]["run_id"] == ids["data"]
    checks = {c["suite"]: c["result"] for c in card["data"]["checks"]}
    assert checks["staged_events"]["success"] and not checks["ranking_samples"]["success"]
    assert checks["item2vec_pairs"] is None and checks["retrieval_samples"]["error"].startswith("retrieval failed")
    assert card["data"]["quarantine"]["counts"]["crawler"] == 3
    assert [m["model"] for m in card["models"]] == list(catalogue.MODELS)  # recall models first
    assert _model(card, "wide_deep")["run_id"] == ids["wide_deep"]  # not the decoy of another Airflow run
    assert _model(card, "fnn")["run_id"] is None
    json.dumps(card, allow_nan=False)


def test_collect_reads_metrics_slices_gate_diff_and_plots_of_a_ranking_run(night):
    wide = _model(night["card"], "wide_deep")
    assert {r["name"]: (r["challenger"], r["champion"]) for r in wide["metrics"]["headline"]} == {
        "auc": (0.70, 0.72),
        "logloss": (0.50, 0.49),
    }
    city = next(s for s in wide["slices"] if s["slice"] == "city_3")
    assert city == {"metric": "auc", "slice": "city_3", "rows": 400, "champion_rows": None, "challenger": 0.68, "champion": 0.60}
    assert wide["gate"]["passed"] is False and wide["gate"]["reasons"] == [FAILED_REASON, SCRIPT_REASON]
    diff = wide["config_diff"]
    assert diff["champion_run_id"] == night["ids"]["champion"]
    assert {r["key"] for r in diff["rows"]} == {"ranking.learning_rate", "only.champion", "only.challenger"}
    assert wide["plots"]["training"] == {"train_loss": {"steps": [0, 1, 2], "values": [0.6, 0.5, 0.45]}}
    roc = wide["plots"]["roc"]
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0, 0, 1, 1)


def test_collect_reads_index_and_recall_curve_of_a_first_recall_run(night):
    i2v = _model(night["card"], "item2vec")
    assert [r["name"] for r in i2v["metrics"]["headline"]] == ["recall_at_50", "hr_at_50", "popularity_recall_at_50"]
    assert [r["name"] for r in i2v["index"]["metrics"]] == ["index_recall_at_50", "index_latency_ms_p50_batch1", "index_size"]
    assert i2v["index"]["params"] == {"nprobe": 4} and i2v["index"]["factory"] == "IVF16,Flat"
    assert i2v["gate"]["first_run"] and i2v["config_diff"]["note"].startswith("first run")
    curves = i2v["plots"]["recall_at_k"]
    assert curves["challenger"] == {"ks": [10, 50, 100], "values": [0.2, 0.4, 0.5]}
    assert curves["popularity"] == {"ks": [50], "values": [0.1]}
    assert i2v["plots"]["roc"] is None
    assert [(r["metric"], r["slice"], r["rows"]) for r in i2v["slices"]] == [
        ("recall_at_50", "city_1", 20),
        ("single_recall_at_50", "city_1", 20),  # sizes are a column, never a slice row of their own
    ]


def test_render_shows_models_slices_gate_and_diff_escaped(night):
    page = night["html"]
    wide, i2v = _section(page, "wide_deep"), _section(page, "item2vec")
    assert re.search(r"<td>city_3</td><td class=\"num\">400</td>.*?\+0\.0800</td>", wide)
    assert re.search(r"<td>user_type_B</td>.*?-0\.0400</td>", wide)
    assert FAILED_REASON in wide and 'class="fail">' + FAILED_REASON in wide
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more" in wide and "<script" not in page
    diff = wide[wide.index('class="config-diff"') :]
    diff = diff[: diff.index("</table>")]
    assert "ranking.learning_rate" in diff and "only.champion" in diff and "only.challenger" in diff
    assert "etl.seed" not in page  # equal on both sides
    assert wide.count("<svg") == 2 and i2v.count("<svg") == 2  # ROC + training; recall@K + training
    assert "first run" in i2v and "nprobe" in i2v and "IVF16,Flat" in i2v
    refused = _section(night["html"], "youtube_dnn")
    assert '<p class="fail">index refused, not registered: held-out index recall@50 is 0.8000</p>' in refused
    summary = page[page.index('id="summary"') : page.index("</section>", page.index('id="summary"'))]
    assert re.search(r'<tr class="fail"><td><a href="#model-wide_deep">', summary)
    assert 'href="#model-item2vec"' in summary and "PASSED (first run)" in summary
    assert "no training run" in summary
    assert run_card.render(json.loads(json.dumps(night["card"]))) == page  # pure: the card's JSON gives the same page


def test_render_marks_failed_and_missing_data_checks(night):
    page = night["html"]
    data = page[page.index('id="data"') : page.index('id="summary"')]
    assert re.search(r'<tr class="fail"><td>ranking_samples</td><td class="fail">FAILED</td>', data)
    assert "expect_column_values_to_not_be_null" in data
    assert re.search(r'<tr class="pass"><td>staged_events</td>', data)
    assert re.search(r"<td>item2vec_pairs</td><td class=\"missing\">not recorded</td>", data)
    assert re.search(r'<tr class="fail"><td>retrieval_samples</td>.*?<pre class="fail">retrieval failed &lt;x&gt;\nfull', data)


def test_a_day_without_runs_is_all_not_recorded(night):
    card = run_card.collect(night["cfg"], "2026-11-07", None)
    assert card["data"]["run_id"] is None and all(m["run_id"] is None for m in card["models"])
    page = run_card.render(card)
    assert "no data run" in page and page.count("no training run") == 2 * len(catalogue.MODELS)


def test_collect_reads_the_store_of_the_config_it_is_given(night, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RECPIPE_CONFIG", str(write_config(tmp_path / "elsewhere")))  # an empty store
        card = run_card.collect(night["cfg"], DS, AIRFLOW)
    assert card["data"]["run_id"] is not None and any(m["run_id"] for m in card["models"])


def test_write_run_card_logs_a_report_run_and_the_lake_file(night):
    cfg = night["cfg"]
    out = run_card.write_run_card(cfg, DS, AIRFLOW)
    run = mlflow.MlflowClient().get_run(out["mlflow_run_id"])
    assert run.data.tags["stage"] == "report" and run.data.tags["ds"] == DS and run.data.tags["airflow_run_id"] == AIRFLOW
    assert run.info.run_name == f"run card ds={DS}"
    assert {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id)} == {"run_card.html", "run_card.json"}
    page = mlflow.artifacts.load_text(out["artifact_uri"])
    assert 'id="model-wide_deep"' in page
    assert out["lake_uri"] == f"{cfg.lake_root}/reports/nightly/ds={DS}/run_card.html"
    with open(out["lake_uri"], encoding="utf-8") as fh:
        assert fh.read() == page
    assert out["ui_url"] is None  # a SQLite store has no UI server


def test_ui_url_of_a_tracking_server_drops_credentials():
    url = run_card.ui_url("https://user:secret@mlflow.example:5000/", "3", "abc")
    assert url == "https://mlflow.example:5000/#/experiments/3/runs/abc/artifacts"
    assert run_card.ui_url("sqlite:///x.db", "3", "abc") is None


def test_roc_points_are_thinned_keeping_the_endpoints():
    labels = np.array([0, 0, 1, 1])
    assert roc_points(labels, np.array([0.1, 0.4, 0.35, 0.8])) == {
        "fpr": [0.0, 0.0, 0.5, 0.5, 1.0],
        "tpr": [0.0, 0.5, 0.5, 1.0, 1.0],
    }
    rng = np.random.default_rng(1)
    many = roc_points(rng.integers(0, 2, 2000), rng.random(2000), max_points=11)
    assert len(many["fpr"]) == len(many["tpr"]) <= 11
    assert (many["fpr"][0], many["tpr"][0], many["fpr"][-1], many["tpr"][-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(many["fpr"]) >= 0) and np.all(np.diff(many["tpr"]) >= 0)
    with pytest.raises(ValueError, match="both positive and negative"):
        roc_points(np.ones(3), np.array([0.1, 0.2, 0.3]))
