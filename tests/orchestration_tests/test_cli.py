from orchestration.cli import main


def test_generate_writes_the_lake_and_reports_it(tmp_path, capsys):
    assert main(["generate", "--days", "2", "--users", "30", "--items", "60", "--seed", "1", "--lake", str(tmp_path)]) == 0
    assert "wrote 2 days 2026-11-01..2026-11-02" in capsys.readouterr().out
    assert (tmp_path / "raw/events/ds=2026-11-02/_SUCCESS").exists()


def test_bad_input_exits_2_with_the_problem_named(tmp_path, capsys):
    assert main(["generate", "--days", "1", "--start", "2026-13-01", "--lake", str(tmp_path)]) == 2
    assert (
        "recpipe generate: error: --start is not a real calendar day: '2026-13-01' (expected YYYY-MM-DD)"
        in capsys.readouterr().err
    )
    assert main(["summary", "--ds", "yesterday"]) == 2
    assert "recpipe summary: error: --ds must look like YYYY-MM-DD, received 'yesterday'" in capsys.readouterr().err
    assert main(["summary", "--ds", ""]) == 2  # an empty day is checked too, not skipped
    assert "--ds must look like YYYY-MM-DD, received ''" in capsys.readouterr().err


def test_the_summary_gate_line_names_failed_checks_and_counts_the_rest():
    from orchestration.cli import _gate_line
    from validation.gates import Threshold, evaluate_gate

    thresholds = [Threshold("auc", 0.55, 0.01), Threshold("auc__city_1", 0.5)]
    result = evaluate_gate({"auc": 0.7, "auc__city_1": 0.71}, {"auc": 0.75}, thresholds)
    result = result.with_notes("slices under 200 rows, not gated: auc__city_9 (12 rows)")
    row = {"gate_passed": "false", "gate": result.to_dict()}
    assert _gate_line(row) == (
        "FAILED (2 of 3 checks passed): slices under 200 rows, not gated: auc__city_9 (12 rows); "
        "auc=0.7000 vs champion 0.7500: drop +0.0500 exceeds max 0.0100"
    )
    first = evaluate_gate({"auc": 0.7}, None, thresholds[:1])
    assert _gate_line({"gate_passed": "true", "gate": first.to_dict()}) == (
        "PASSED (1 of 1 checks passed): first run: no champion to compare with, only absolute floors apply"
    )
    # Without the verdict artifact, the tags name the failed checks; nothing is parsed out of the prose.
    assert _gate_line({"gate_passed": "false", "gate": None, "gate_failed": "auc=0.5 < floor 0.55"}) == (
        "FAILED: auc=0.5 < floor 0.55"
    )
    assert _gate_line({"gate_passed": None, "gate_reasons": None}) == "not run"


def test_importing_the_cli_and_the_task_functions_loads_no_heavy_library():
    import subprocess
    import sys

    heavy = ("pyspark", "tensorflow", "keras", "mlflow", "great_expectations", "faiss", "xgboost")
    code = f"import sys, orchestration.cli, orchestration.tasks; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
