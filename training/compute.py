"""Accelerator switches for every training task: mixed precision and multi-GPU data parallelism.

Both are "auto" by default and then turn on only where they pay off: float16 compute when a GPU is
visible, and ``tf.distribute.MirroredStrategy`` when two or more are. On a CPU-only machine neither
changes anything. Everything that creates, compiles, fits or predicts with a model runs inside
``scope(cfg)``, so variables are created on the strategy's devices with the chosen dtype policy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator

import keras
import tensorflow as tf

from recpipe.config import ComputeConfig

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a training task will run with: the Keras dtype policy and the number of data-parallel replicas."""

    precision: str
    gpus: int
    replicas: int

    def as_params(self) -> dict[str, str | int]:
        """The plan as MLflow params, so runs on different hardware are told apart in the compare view."""
        return {"compute.resolved_precision": self.precision, "compute.gpus": self.gpus, "compute.replicas": self.replicas}


def plan(cfg: ComputeConfig, gpus: int | None = None) -> Plan:
    """Resolve the "auto" switches against the visible GPUs (``gpus`` overrides the count, for tests)."""
    n = len(tf.config.list_physical_devices("GPU")) if gpus is None else gpus
    precision = cfg.precision if cfg.precision != "auto" else ("mixed_float16" if n > 0 else "float32")
    replicas = n if cfg.distribute == "auto" and n > 1 else 1
    return Plan(precision, n, replicas)


def strategy_for(p: Plan) -> tf.distribute.Strategy:
    """MirroredStrategy over the GPUs when the plan has several replicas, else the default (no-op) strategy."""
    return tf.distribute.MirroredStrategy() if p.replicas > 1 else tf.distribute.get_strategy()


@contextlib.contextmanager
def scope(cfg: ComputeConfig, strategy: tf.distribute.Strategy | None = None) -> Iterator[Plan]:
    """Run the block under the resolved dtype policy and distribution strategy; restores the policy after.

    ``strategy`` overrides the one the plan picks (tests pass a MirroredStrategy over logical CPUs).
    """
    p = plan(cfg)
    if strategy is not None:
        p = dataclasses.replace(p, replicas=strategy.num_replicas_in_sync)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(p.precision)
    log.info("training with dtype policy %s on %d GPU(s), %d replica(s)", p.precision, p.gpus, p.replicas)
    try:
        with (strategy or strategy_for(p)).scope():
            yield p
    finally:
        keras.config.set_dtype_policy(previous)


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_seconds`` and ``examples_per_second`` to each epoch's logs (and so to the fit history).

    The training entry point logs the history to MLflow, so every run records its own throughput.
    """

    def __init__(self, examples: int) -> None:
        super().__init__()
        self.examples = examples
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        seconds = time.perf_counter() - self._start
        if logs is not None:
            logs["epoch_seconds"] = seconds
            logs["examples_per_second"] = self.examples / seconds if seconds > 0 else float("nan")
