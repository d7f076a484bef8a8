"""benchmarks/train.py: every model it names builds and fits, and the table's ratios are against the MLP run."""

import pytest

from benchmarks import train as bench


def test_table_gives_medians_and_ratios_to_the_reference():
    text = bench.table({"mlp": [100.0, 300.0, 200.0], "two_tower_mlp": [50.0, 40.0, 60.0]}, 1000)
    rows = [line.split(" | ") for line in text.splitlines()[2:]]
    assert rows[0][:4] == ["| mlp", "200", "100, 300, 200", "1.00"]
    assert rows[1][:4] == ["| two_tower_mlp", "50", "50, 40, 60", "0.25"]
    assert rows[1][4] == "20.0 |"  # 1000 examples at 50/s


def test_each_model_fits_at_the_benchmark_shapes(capsys):
    assert bench.main(["--repeats", "1", "--steps", "1", "--batch-size", "32", "--n-items", "200"]) == 0
    out = capsys.readouterr().out
    for name in bench.MODELS:
        assert f"repeat 1/1 {name}:" in out


def test_bad_sizes_are_refused():
    with pytest.raises(SystemExit):
        bench.main(["--steps", "0"])
