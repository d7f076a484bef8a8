"""benchmarks/index.py: one run on tiny sizes gives one row per index type, each reaching the target."""

import json

import numpy as np
import pytest

from benchmarks import index as bench

FACTORIES = ["Flat", "IVF16,Flat", "HNSW16"]


def test_generated_vectors_are_unit_length_and_clustered():
    x = bench.clustered(2000, 16, clusters=10, seed=1)
    assert x.shape == (2000, 16) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # points of a 10-Gaussian mixture have close neighbours: far above the ~0 cosine of random 16-d directions
    sims = x[:200] @ x.T
    np.fill_diagonal(sims[:, :200], -1)
    assert np.median(sims.max(axis=1)) > 0.8 and abs(np.median(sims)) < 0.5


def test_tiny_run_has_a_row_per_index_reaching_the_target(tmp_path, capsys):
    out = tmp_path / "index.json"
    argv = ["--n", "3000", "--dim", "16", "--queries", "50", "--k", "10", "--factories", *FACTORIES, "--out", str(out)]
    assert bench.main(argv) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["factory"] for r in rows] == FACTORIES
    for r in rows:
        assert r["recall_tuning"] >= 0.95 and not r["target_missed"]
        assert r["recall_held_out"] > 0.8
        for key in ("build_s", "serialized_bytes", "qps_batch256", "p50_ms_batch1", "p99_ms_batch1"):
            assert r[key] > 0, key
    assert rows[0]["search_params"] == {} and rows[0]["recall_tuning"] == 1.0
    assert list(rows[1]["search_params"]) == ["nprobe"] and list(rows[2]["search_params"]) == ["efSearch"]
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert [line.split(" | ")[0] for line in table[1:]] == [f"| {f}" for f in FACTORIES]


def test_bad_sizes_are_refused():
    with pytest.raises(SystemExit):
        bench.main(["--n", "10", "--k", "50"])
