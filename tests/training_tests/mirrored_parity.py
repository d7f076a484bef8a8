"""Run as a script by test_compute.py: TensorFlow's logical devices must be set before anything else starts it.

Splits the one CPU into two logical devices, fits each custom-loss recall model for one SGD step on B rows
on one device, and on the same B rows twice over a two-replica MirroredStrategy (each replica sees the
same B rows), and prints JSON: the reported losses and the largest weight difference per model. With
the loss divided by the replica count the two runs are the same step.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from recpipe.config import ComputeConfig  # noqa: E402
from tests.training_tests.test_retrieval_models import DIM, N_CATEGORIES, N_CITIES, N_ITEMS, _batch, _two_tower  # noqa: E402
from training import compute  # noqa: E402
from training.models.youtube_dnn import YouTubeDNN  # noqa: E402


def _step(make, x, batch_size, strategy):
    keras.utils.set_random_seed(0)
    with compute.scope(ComputeConfig(precision="float32"), strategy=strategy) as plan:
        model = make()
        model(x)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        loss = model.fit(x, batch_size=batch_size, epochs=1, shuffle=False, verbose=0).history["loss"][0]
        return plan.replicas, loss, [np.asarray(v) for v in model.trainable_variables]


def main() -> None:
    mirror = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x = _batch(16, hard=3)
    twice = {k: np.concatenate([v, v]) for k, v in x.items()}
    # The YouTube DNN draws its own negatives on each replica: with 4096 draws from 30 items the sampled
    # softmax is close to the full one, so its two runs agree closely but not exactly.
    makers = {"two_tower": _two_tower, "youtube_dnn": lambda: YouTubeDNN(N_ITEMS, N_CITIES, N_CATEGORIES, DIM, [16], 4096)}
    out = {}
    for name, make in makers.items():
        _, single_loss, single = _step(make, x, 16, None)
        replicas, mirrored_loss, mirrored = _step(make, twice, 32, mirror)
        diff = max(float(np.abs(a - b).max()) for a, b in zip(single, mirrored, strict=True))
        out[name] = {"replicas": replicas, "single_loss": single_loss, "mirrored_loss": mirrored_loss, "max_weight_diff": diff}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
