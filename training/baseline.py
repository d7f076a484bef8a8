"""Logistic-regression baseline reported beside every ranking model: one-hot categoricals, scaled log numerics."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from recpipe import contracts, lake
from training import metrics

_KINDS = ("categorical", "numeric")


def _log1p_positive(x: np.ndarray) -> np.ndarray:
    """log1p of the values clipped at 0 (counts and prices are heavy-tailed and never meaningfully negative)."""
    return np.log1p(np.maximum(x, 0.0))


def _check_features(features: Sequence[dict], columns: dict[str, np.ndarray], what: str) -> int:
    """Raise naming the spec names missing from ``columns`` or arrays of the wrong length; return the row count."""
    missing = [f["name"] for f in features if f["name"] not in columns]
    if missing:
        raise ValueError(f"{what} lacks features named in the specs: {missing}; it has {sorted(columns)}")
    lengths = {f["name"]: len(columns[f["name"]]) for f in features}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"every {what} feature needs the same number of rows, received {lengths}")
    return next(iter(lengths.values()))


def _matrix(features: Sequence[dict], columns: dict[str, np.ndarray]) -> np.ndarray:
    """The features as one float64 matrix, one column per spec in spec order."""
    return np.column_stack([np.asarray(columns[f["name"]], dtype=np.float64).reshape(-1) for f in features])


def _pipeline(features: Sequence[dict], c: float, max_iter: int, seed: int) -> Pipeline:
    """One-hot + scaled log1p features into an L2 logistic regression."""
    categorical = [i for i, f in enumerate(features) if f["kind"] == "categorical"]
    numeric = [i for i, f in enumerate(features) if f["kind"] == "numeric"]
    encode = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore", sparse_output=True), categorical),
            ("numeric", make_pipeline(FunctionTransformer(_log1p_positive), StandardScaler()), numeric),
        ],
        sparse_threshold=1.0,  # always sparse: one-hot columns dominate
    )
    # lbfgs handles sparse input and L2 directly; on ~1,300 columns it converges in a few seconds.
    model = LogisticRegression(C=c, solver="lbfgs", max_iter=max_iter, random_state=seed)
    return Pipeline([("encode", encode), ("model", model)])


def logistic_regression(
    features: Sequence[dict],
    train: dict[str, np.ndarray],
    train_labels: np.ndarray,
    eval: dict[str, np.ndarray],
    *,
    c: float = 1.0,
    max_iter: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """Click probabilities of the eval rows from a logistic regression fitted on the train rows.

    Categorical features are one-hot encoded (values unseen in training encode as all zeros); numeric
    features become ``log1p(max(x, 0))``, standardised on the train rows.

    Args:
        features: feature specs, dicts with ``name``, ``kind`` ("categorical" or "numeric") and ``vocab_size``.
        train: feature name -> train column, shape ``(n_train,)``.
        train_labels: 0/1 labels of the train rows, shape ``(n_train,)``.
        eval: feature name -> eval column, shape ``(n_eval,)``.
        c: inverse L2 regularisation strength (scikit-learn's ``C``).
        max_iter: the most lbfgs iterations.
        seed: random state of the solver.

    Returns:
        Predicted click probability of each eval row, shape ``(n_eval,)``.

    Raises:
        ValueError: when there are no specs, a spec has an unknown kind, a spec name is missing from
            ``train`` or ``eval``, or the row counts disagree.
    """
    if not features:
        raise ValueError("logistic_regression needs at least one feature spec, received none")
    bad_kinds = {f["name"]: f["kind"] for f in features if f["kind"] not in _KINDS}
    if bad_kinds:
        raise ValueError(f"feature kinds must be one of {_KINDS}, received {bad_kinds}")
    n_train = _check_features(features, train, "train")
    _check_features(features, eval, "eval")
    train_labels = np.asarray(train_labels).reshape(-1)
    if train_labels.size != n_train:
        raise ValueError(f"need one train label per train row, received {train_labels.size} labels for {n_train} rows")
    pipeline = _pipeline(features, c, max_iter, seed)
    pipeline.fit(_matrix(features, train), train_labels)
    return pipeline.predict_proba(_matrix(features, eval))[:, 1]


def baseline_metrics(
    features: Sequence[dict],
    train: dict[str, np.ndarray],
    train_labels: np.ndarray,
    eval: dict[str, np.ndarray],
    eval_labels: np.ndarray,
    **kwargs,
) -> dict[str, float]:
    """AUC and logloss of the logistic-regression baseline on the eval rows.

    Args:
        features: feature specs, as for ``logistic_regression``.
        train: feature name -> train column.
        train_labels: 0/1 labels of the train rows.
        eval: feature name -> eval column.
        eval_labels: 0/1 labels of the eval rows.
        **kwargs: ``c``, ``max_iter`` and ``seed`` of ``logistic_regression``.

    Returns:
        ``{"lr_auc": ..., "lr_logloss": ...}``.
    """
    probs = logistic_regression(features, train, train_labels, eval, **kwargs)
    m = metrics.ranking_metrics(eval_labels, probs)
    return {"lr_auc": m["auc"], "lr_logloss": m["logloss"]}


# One LR baseline per night, shared by every ranking model's run: the first run fits it and writes it
# here; the others read it back while the ranking samples are the same files (a rerun of the Spark job
# writes new part files, so a stale baseline is never reused).
BASELINE_DATASET = "reports/ranking_baseline"
BASELINE_FILE = "baseline.json"


def _samples_fingerprint(lake_root: str, ds: str) -> list[list]:
    """The ranking samples partition's files as (name, size) pairs: new part names on every write."""
    from pyarrow import fs

    filesys, path = lake.filesystem(lake.partition_uri(lake_root, contracts.RANKING_SAMPLES, ds))
    infos = filesys.get_file_info(fs.FileSelector(path, recursive=True))
    return sorted([info.path.rsplit("/", 1)[-1], info.size] for info in infos if info.type == fs.FileType.File)


def shared_baseline_metrics(
    lake_root: str,
    ds: str,
    features: Sequence[dict],
    train: dict[str, np.ndarray],
    train_labels: np.ndarray,
    eval: dict[str, np.ndarray],
    eval_labels: np.ndarray,
) -> tuple[dict[str, float], bool]:
    """``baseline_metrics`` of day ``ds``'s ranking samples, fitted once per version of those samples.

    Returns the metrics and whether they were read back (True) rather than fitted by this call.
    """
    fingerprint = {"samples": _samples_fingerprint(lake_root, ds), "features": [f["name"] for f in features]}
    uri = lake.partition_uri(lake_root, BASELINE_DATASET, ds)
    filesys, path = lake.filesystem(uri)
    try:
        with filesys.open_input_stream(f"{path}/{BASELINE_FILE}") as stream:
            stored = json.loads(stream.read().decode("utf-8"))
        if stored.get("fingerprint") == fingerprint:
            return {k: float(v) for k, v in stored["metrics"].items()}, True
    except (OSError, ValueError, KeyError):  # none yet (pyarrow raises OSError), or unreadable: fit it again
        pass
    metrics = baseline_metrics(features, train, train_labels, eval, eval_labels)
    lake.write_text(uri, BASELINE_FILE, json.dumps({"fingerprint": fingerprint, "metrics": metrics}, sort_keys=True))
    return metrics, False
