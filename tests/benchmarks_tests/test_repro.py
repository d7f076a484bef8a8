"""What the dataset reproduction commands share (``benchmarks.repro``): their lake and ``--models`` errors.

Each command reads a lake written by its own ``recpipe import``: an empty folder has no partition, and the
synthetic generator's lake lacks the fields its adapter writes. Each error names what was received and
what was expected.
"""

from __future__ import annotations

import pytest

from benchmarks import frappe_repro, movielens_repro
from recpipe import synthetic


@pytest.mark.parametrize(
    ("repro", "lacking", "importer", "bad_models", "expected_models"),
    [
        pytest.param(
            frappe_repro,
            "ds=2026-11-01: the click events lack one of the fields",
            "`recpipe import frappe`",
            "deepfm,xdeepfm",
            "deepfm,wide_deep,ipnn,dnn,lr",
            id="frappe",
        ),
        pytest.param(
            movielens_repro,
            "ds=2026-11-01: the events lack one of the fields",
            "`recpipe import movielens`",
            "youtube_dnn,sasrec",
            "youtube_dnn,two_tower",
            id="movielens",
        ),
    ],
)
def test_lake_and_model_errors_name_what_was_received_and_expected(
    repro, lacking, importer, bad_models, expected_models, tmp_path, capsys
):
    assert repro.main(["--lake", str(tmp_path / "empty")]) == 2
    assert "no complete partition" in capsys.readouterr().err

    synthetic.generate(str(tmp_path / "synthetic"), days=1, users=30, items=60, seed=1, start="2026-11-01")
    assert repro.main(["--lake", str(tmp_path / "synthetic")]) == 2
    err = capsys.readouterr().err
    assert lacking in err and importer in err

    with pytest.raises(SystemExit):
        repro.main(["--lake", str(tmp_path), "--models", bad_models])
    assert f"expected a comma-separated subset of {expected_models}, received '{bad_models}'" in capsys.readouterr().err
