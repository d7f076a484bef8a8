"""Serving export: a TensorFlow SavedModel with named signatures, and a JSON manifest of what to feed them.

Recall models (``item2vec``, ``youtube_dnn``, ``two_tower``) export ``user_vectors`` (the FAISS query
vector of each user) and ``item_vectors`` (the index row of each item id); every ranking model (``fnn``,
``wide_deep``, ``xgb_wide_deep``, ``cnn_dnn``, ``pnn``, ``deepfm``, ``wide_resnet``) exports ``predict_ctr``.
The first signature is also ``serving_default``, which TF-Serving requires. The artifact loads with
``tf.saved_model.load`` alone: no Keras, no custom objects.

``serving_manifest.json`` sits in the SavedModel directory and lists, per signature, every input and
output with its dtype and shape (``null`` for any size), so a serving system knows what to feed.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import keras
import mlflow
import numpy as np
import tensorflow as tf
from keras import ops

from training import catalogue
from training.models.item2vec import Item2Vec, Item2VecCBOW
from training.models.youtube_dnn import USER_FIELDS, check_item_tables

MANIFEST = "serving_manifest.json"
ARTIFACT_PATH = "serving"
# The model classes each key accepts, from the catalogue (``item2vec.mode`` "skipgram" trains Item2Vec, "cbow"
# Item2VecCBOW).
MODELS: dict[str, tuple[type[keras.Model], ...]] = {entry.name: entry.classes() for entry in catalogue.ENTRIES}
USER_VECTOR_POOLINGS = ("mean", "recency")
PAD = -1  # history padding; any negative id is padding, as the towers' ``history >= 0`` masks say


def _spec(name: str, dtype: tf.DType, shape=(None,)) -> tf.TensorSpec:
    return tf.TensorSpec(shape, dtype, name=name)


def _rows_or_zeros(table, ids):
    """``table[ids]`` for ids in ``[0, n)``, zeros elsewhere: an unknown id has no row in the index."""
    n = table.shape[0]
    rows = ops.take(table, ops.clip(ids, 0, n - 1), axis=0)
    return ops.where(ops.expand_dims(ops.logical_and(ids >= 0, ids < n), -1), rows, ops.zeros_like(rows))


def _normalize_rows(x):
    """Rows divided by their L2 norm (floored at 1e-12), as ``Item2Vec.item_vectors`` does."""
    return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True)), 1e-12)


def _item2vec_table(model: Item2Vec | Item2VecCBOW):
    """The raw (unnormalised) table behind the model's ``item_vectors()``."""
    return (model.target_embedding if isinstance(model, Item2Vec) else model.input_embedding).embeddings


def _item2vec_user_vectors(model: Item2Vec | Item2VecCBOW, user_vector: str, half_life: float | None) -> Callable:
    """History [B, L] -> [B, d]: the query ``training.recall.user_vectors(item_vectors, histories, scheme, half_life)`` makes.

    ``mean``: the mean of the normalised vectors of the history's items that have one (ids outside the
    table skipped; none gives zeros). ``recency``: weights ``0.5 ** (age / half_life)``, where ``age`` counts
    the clicks (ids >= 0, with or without a vector) after this one in the row: the newest click has age 0.
    """

    def fn(history):
        ids = ops.cast(history, "int32")
        known = ops.cast(ops.logical_and(ids >= 0, ids < model.n_items), "float32")
        # Normalise only the gathered rows, not the whole table on every request.
        vectors = _normalize_rows(ops.cast(_rows_or_zeros(_item2vec_table(model), ids), "float32"))
        weights = known
        if user_vector == "recency":
            clicks = ops.cast(ids >= 0, "float32")
            age = ops.sum(clicks, axis=1, keepdims=True) - ops.cumsum(clicks, axis=1)
            weights = known * ops.power(0.5, age / half_life)
        total = ops.sum(vectors * ops.expand_dims(weights, -1), axis=1)
        return {"user_vector": total / ops.maximum(ops.sum(weights, axis=1, keepdims=True), 1e-30)}

    return fn


def _float32(fn: Callable) -> Callable:
    """``fn`` with every output cast to float32: the contract a serving client sees, whatever the dtype policy."""
    return lambda x: {k: ops.cast(v, "float32") for k, v in fn(x).items()}


def _endpoints(model_key: str, model, user_vector: str, half_life: float | None) -> list[tuple[str, Callable, dict]]:
    """(signature name, fn of one dict of tensors -> dict of tensors, input specs) of each endpoint, in order."""
    item_ids = {"item_id": _spec("item_id", tf.int32)}
    entry = catalogue.entry(model_key)
    if entry.kind == "ranking":
        features = {f["name"]: _spec(f["name"], tf.int32 if f["kind"] == "categorical" else tf.float32) for f in model.features}
        # ``ClickModel.call`` ends in a sigmoid: its output is the click probability, not a logit. The
        # pre-trained parts (the GBDT's trees, the image table) are weights of the model, so they export too.
        return [("predict_ctr", lambda x: {"click_probability": model(x, training=False)}, features)]
    if entry.scoring == "item_vectors":
        history = {"history": _spec("history", tf.int32, (None, None))}

        def items(x):
            rows = _rows_or_zeros(_item2vec_table(model), ops.cast(x["item_id"], "int32"))
            return {"item_vector": _normalize_rows(rows)}

        pool = _item2vec_user_vectors(model, user_vector, half_life)
        return [("user_vectors", lambda x: pool(x["history"]), history), ("item_vectors", items, item_ids)]
    towers = {**{f: _spec(f, tf.int32) for f in USER_FIELDS}, "history": _spec("history", tf.int32, (None, None))}
    if model.item_features:  # the two-tower model, or a YouTube DNN built with item tables
        check_item_tables(model)

    def items(x):
        ids = ops.cast(x["item_id"], "int32")
        # The model's own item path (as ``item_vectors()`` takes it), so the index rows and this agree.
        vectors = model.item_rows(ops.clip(ids, 0, model.n_items - 1))
        return {"item_vector": ops.where(ops.expand_dims((ids >= 0) & (ids < model.n_items), -1), vectors, 0.0)}

    return [("user_vectors", lambda x: {"user_vector": model(x, training=False)}, towers), ("item_vectors", items, item_ids)]


def _describe(tensors: dict) -> dict:
    """Name -> dtype and shape (``None`` for any size) of tensor specs or traced tensors."""
    return {name: {"dtype": t.dtype.name, "shape": t.shape.as_list()} for name, t in tensors.items()}


def export_serving(
    model_key: str,
    model: keras.Model,
    path: str | Path,
    *,
    user_vector: str = "mean",
    recency_half_life: float | None = None,
) -> dict:
    """Write ``model`` as a SavedModel with named serving signatures, plus ``serving_manifest.json``.

    Args:
        model_key: one of ``MODELS``; picks the signatures (see the module docstring).
        model: the trained (built) Keras model of that kind.
        path: the SavedModel directory to write (created if missing; use a fresh one).
        user_vector: item2vec only: how history item vectors pool into the query, ``"mean"`` or
            ``"recency"`` (the ``item2vec.user_vector`` setting).
        recency_half_life: item2vec ``"recency"`` only: the number of history items after which an
            item's weight has halved (positive).

    Returns:
        The manifest: model key, signature names (the first is also ``serving_default``), each signature's
        inputs and outputs (dtype, shape with ``None`` for any size) and the pooling options.
    """
    if model_key not in MODELS:
        raise ValueError(f"Unknown `model_key`: expected one of {sorted(MODELS)}. Received: model_key={model_key!r}")
    expected = MODELS[model_key]
    if not isinstance(model, expected):
        names = " or ".join(cls.__name__ for cls in expected)
        raise ValueError(
            f"`model` should be an instance of {names} for model_key={model_key!r}. Received: {type(model).__name__}"
        )
    if not model.built:
        raise ValueError(f"`model` ({type(model).__name__}) is not built: fit or call it before exporting.")
    if user_vector not in USER_VECTOR_POOLINGS:
        raise ValueError(f"`user_vector` should be one of {USER_VECTOR_POOLINGS}. Received: user_vector={user_vector!r}")
    if user_vector != "mean" and model_key != "item2vec":
        raise ValueError(f"`user_vector` applies to item2vec only. Received: user_vector={user_vector!r} for {model_key!r}")
    if user_vector == "recency" and not (recency_half_life is not None and recency_half_life > 0):
        raise ValueError(
            f"`recency_half_life` should be positive with user_vector='recency'. Received: recency_half_life={recency_half_life}"
        )
    archive = keras.export.ExportArchive()
    # No ``archive.track(model)``: ``add_endpoint`` already saves every variable the signatures read, and in
    # Keras 3.15 tracking the model saves each of its variables a second time plus the unused ones (the
    # training-only tables, e.g. Item2Vec's context table): 38 MB instead of 13 MB for a 100k-item YouTube DNN.
    signatures = {}
    for name, fn, specs in _endpoints(model_key, model, user_vector, recency_half_life):
        endpoint = archive.add_endpoint(name, _float32(fn), input_signature=[specs])
        outputs = endpoint.get_concrete_function(specs).structured_outputs
        signatures[name] = {"inputs": _describe(specs), "outputs": _describe(outputs)}
        if "history" in specs:
            signatures[name]["inputs"]["history"]["pad_value"] = PAD
    path = Path(path)
    archive.write_out(str(path), verbose=False)
    manifest = {
        "model": model_key,
        "format": "tf_saved_model",
        "signatures": signatures,
        "default_signature": next(iter(signatures)),
        "options": {"user_vector": user_vector, "recency_half_life": recency_half_life} if model_key == "item2vec" else {},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(path: str | Path) -> dict:
    """The ``serving_manifest.json`` of an exported SavedModel directory."""
    return json.loads((Path(path) / MANIFEST).read_text())


def load_serving(path: str | Path) -> dict[str, Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]]:
    """Load an exported SavedModel with TensorFlow alone; returns signature name -> function.

    Each function takes a dict of arrays named like the signature's inputs (integers of any width are cast
    to the signature's dtype) and returns a dict of NumPy arrays named like its outputs.
    """
    loaded = tf.saved_model.load(str(path))

    def bind(name: str) -> Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]:
        specs = loaded.signatures[name].structured_input_signature[1]

        def call(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            if set(inputs) != set(specs):
                raise ValueError(
                    f"Signature {name!r} takes inputs {sorted(specs)}. Received: {sorted(inputs)} "
                    f"(missing {sorted(set(specs) - set(inputs))}, unexpected {sorted(set(inputs) - set(specs))})"
                )
            feed = {
                k: tf.constant(np.asarray(v).astype(specs[k].dtype.as_numpy_dtype, casting="same_kind"))
                for k, v in inputs.items()
            }
            # Looked up on ``loaded`` at each call: the signatures' variables live only as long as it does.
            return {k: v.numpy() for k, v in loaded.signatures[name](**feed).items()}

        return call

    return {name: bind(name) for name in loaded.signatures}


def log_serving(model_key: str, model: keras.Model, **kwargs) -> dict:
    """Export ``model`` (see ``export_serving``; ``kwargs`` go to it) into the active MLflow run under ``serving/``.

    Returns the manifest.
    """
    if mlflow.active_run() is None:
        raise RuntimeError("log_serving needs an active MLflow run (mlflow.start_run()). Received: no active run")
    with tempfile.TemporaryDirectory() as tmp:
        manifest = export_serving(model_key, model, Path(tmp) / ARTIFACT_PATH, **kwargs)
        mlflow.log_artifacts(str(Path(tmp) / ARTIFACT_PATH), artifact_path=ARTIFACT_PATH)
    return manifest
