import pytest

from recpipe.runner import STEPS_ENV, StepFailed, run_step


@pytest.fixture(autouse=True)
def _subprocess_steps(monkeypatch):
    """The default mode; ``make test`` exports the local deployment's ``inprocess`` for the DAG tests."""
    monkeypatch.setenv(STEPS_ENV, "subprocess")


def test_result_line_is_returned():
    assert run_step("tests.step_fixture", ["ok", "--ds", "2026-11-04"]) == {"run_id": "abc", "args": ["ok", "--ds", "2026-11-04"]}


def test_failure_carries_exit_code_and_last_output():
    with pytest.raises(StepFailed, match=r"tests.step_fixture exited with code 3; last output:\ntraining...\nout of memory"):
        run_step("tests.step_fixture", ["boom"])


def test_missing_result_is_a_failure():
    with pytest.raises(StepFailed, match="finished without printing a RECPIPE_RESULT line"):
        run_step("tests.step_fixture", ["silent"])


def test_in_process_steps_call_main_and_raise_its_errors(monkeypatch):
    monkeypatch.setenv(STEPS_ENV, "inprocess")
    assert run_step("tests.step_fixture", ["ok", "--ds", "2026-11-04"]) == {"run_id": "abc", "args": ["ok", "--ds", "2026-11-04"]}
    with pytest.raises(MemoryError, match="out of memory"):
        run_step("tests.step_fixture", ["boom"])
    with pytest.raises(StepFailed, match=r"tests\.step_fixture\.main returned NoneType, expected the step.s result dict"):
        run_step("tests.step_fixture", ["none"])


def test_unknown_step_mode_is_refused(monkeypatch):
    monkeypatch.setenv(STEPS_ENV, "pod")
    with pytest.raises(StepFailed, match="RECPIPE_STEPS must be one of subprocess, inprocess; received 'pod'"):
        run_step("tests.step_fixture", ["ok"])
