"""Accelerator switches: what "auto" resolves to, mixed precision through every model, MirroredStrategy parity."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from recpipe.config import ComputeConfig
from tests.training_tests import ranking_models
from tests.training_tests.test_retrieval_models import _batch, _two_tower, _user_inputs, _youtube
from training import compute
from training.models.item2vec import Item2Vec

HERE = Path(__file__).parent


def test_auto_turns_each_switch_on_only_where_it_helps():
    auto = ComputeConfig()
    assert compute.plan(auto, gpus=0) == compute.Plan("float32", 0, 1)
    assert compute.plan(auto, gpus=1) == compute.Plan("mixed_float16", 1, 1)
    assert compute.plan(auto, gpus=4) == compute.Plan("mixed_float16", 4, 4)
    assert compute.plan(ComputeConfig(precision="float32", distribute="off"), gpus=4) == compute.Plan("float32", 4, 1)
    assert compute.plan(ComputeConfig(precision="mixed_bfloat16"), gpus=0).precision == "mixed_bfloat16"
    # This machine has no GPU: the default plan changes nothing.
    assert compute.plan(auto) == compute.Plan("float32", 0, 1)


def test_bad_switches_say_what_was_received():
    allowed = "auto, float32, mixed_float16, mixed_bfloat16"
    with pytest.raises(ValueError, match=rf"precision must be one of {allowed}; received 'fp8'"):
        ComputeConfig(precision="fp8")
    with pytest.raises(ValueError, match=r"distribute must be auto or off; received 'mirrored'"):
        ComputeConfig(distribute="mirrored")


@pytest.mark.parametrize("precision", ["mixed_float16"])
def test_every_model_trains_under_mixed_precision_with_float32_outputs(precision):
    keras.utils.set_random_seed(0)
    before = keras.config.dtype_policy().name
    with compute.scope(ComputeConfig(precision=precision)) as plan:
        assert plan.precision == precision
        x = _batch(32)
        for model in (_youtube(), _two_tower("dcn")):
            model.compile(optimizer=keras.optimizers.Adam(0.01))
            loss = model.fit(x, batch_size=16, epochs=1, verbose=0).history["loss"]
            assert np.isfinite(loss).all()
            vectors = model.user_vectors(_user_inputs(x))
            assert vectors.dtype == np.float32 and np.isfinite(vectors).all()
            assert np.isfinite(model.item_vectors()).all()
        # An all-padding history attends to nothing: zeros, not NaN from -inf - -inf in float16.
        empty = {**_user_inputs(x), "history": np.full((32, 5), -1, np.int32)}
        assert np.isfinite(_two_tower().user_vectors(empty)).all()
        rx, ry = ranking_models.batch(32)
        for variant in ranking_models.VARIANTS:
            ranking = ranking_models.make(variant)
            ranking.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy())
            assert np.isfinite(ranking.fit(rx, ry, epochs=1, verbose=0).history["loss"]).all(), variant
            probs = ranking.predict(rx, verbose=0)
            assert probs.dtype == np.float32 and ((probs > 0) & (probs < 1)).all(), variant
        item2vec = Item2Vec(n_items=20, embedding_dim=4)
        item2vec.compile(optimizer="adam", loss=keras.losses.BinaryCrossentropy(from_logits=True))
        pairs = {"target": np.array([1, 2, 3, 4]), "context": np.array([2, 1, 9, 7])}
        assert np.isfinite(item2vec.fit(pairs, np.array([1, 1, 0, 0], np.float32), verbose=0).history["loss"]).all()
        assert ranking.layers[-1].compute_dtype == plan.precision.removeprefix("mixed_")
    assert keras.config.dtype_policy().name == before  # the policy is restored after the block


def test_epoch_timer_adds_throughput_to_the_history():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(np.ones((64, 3)), np.ones(64), batch_size=16, epochs=2, verbose=0, callbacks=[compute.EpochTimer(64)])
    seconds, rate = history.history["epoch_seconds"], history.history["examples_per_second"]
    assert len(seconds) == len(rate) == 2
    np.testing.assert_allclose(np.array(rate) * np.array(seconds), 64.0)


def test_mirrored_strategy_takes_the_same_step_as_one_device():
    """Two replicas each fed the batch equal one device fed it once: custom losses divide by the replica count."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(HERE / "mirrored_parity.py")], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for name, r in result.items():
        assert r["replicas"] == 2, name
        assert r["mirrored_loss"] == pytest.approx(r["single_loss"], rel=1e-5), name
        assert r["max_weight_diff"] < 1e-4, name
