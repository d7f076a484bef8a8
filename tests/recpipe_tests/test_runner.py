import pytest

from recpipe.runner import StepFailed, run_step


def test_result_line_is_returned():
    assert run_step("tests.step_fixture", ["ok", "--ds", "2026-11-04"]) == {"run_id": "abc", "args": ["ok", "--ds", "2026-11-04"]}


def test_failure_carries_exit_code_and_last_output():
    with pytest.raises(StepFailed, match=r"tests.step_fixture exited with code 3; last output:\ntraining...\nout of memory"):
        run_step("tests.step_fixture", ["boom"])


def test_missing_result_is_a_failure():
    with pytest.raises(StepFailed, match="finished without printing a RECPIPE_RESULT line"):
        run_step("tests.step_fixture", ["silent"])
