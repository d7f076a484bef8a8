"""The index's artifact folder: ``save`` and ``load`` an index with its id map, category sub-indexes and manifest.

Pure FAISS + json, no MLflow: ``indexing.build`` logs the folder ``save`` writes to the registry and
``load_registered_index`` reads it back with ``load``. The manifest is the ready marker, written last,
and the record of the search settings that were measured: ``load`` applies them over whatever the index
files hold, after refusing an index built from another model version than the serving one
(``IndexVersionMismatch``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import faiss
import numpy as np

from indexing.ann import IndexValidationError, _check_index_matches, _id_map, apply_params

INDEX_FILE = "index.faiss"
ID_MAP_FILE = "id_map.json"
MANIFEST_FILE = "manifest.json"
CATEGORY_DIR = "categories"


class IndexVersionMismatch(ValueError):
    """The index on disk was built from another model version than the one serving queries."""


def _replace(path: Path, write) -> None:
    """Write ``path`` through ``write(tmp)`` to a temporary name, then rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def save(
    directory: Path,
    index: faiss.Index,
    ids: np.ndarray,
    manifest: dict,
    category_indexes: dict[int, faiss.Index] | None = None,
) -> None:
    """Write ``index.faiss``, ``id_map.json``, ``categories/<cat>.faiss`` and, last, ``manifest.json``.

    The manifest is the ready marker: it is removed first and written last, each file goes to a
    temporary name and is renamed into place, so a reader never sees a half-written release.
    ``manifest["search_params"]`` (and ``manifest["category_search_params"]``, by category) are what
    ``load`` applies.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if not np.array_equal(_id_map(index), ids):
        raise IndexValidationError(
            f"ids must be the index's item ids in FAISS order: the index holds {index.ntotal}, received {len(ids)} that differ"
        )
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST_FILE).unlink(missing_ok=True)
    _replace(directory / INDEX_FILE, lambda p: faiss.write_index(index, str(p)))
    id_map = json.dumps({"faiss_id_to_item_id": ids.tolist()})
    _replace(directory / ID_MAP_FILE, lambda p: p.write_text(id_map))
    cat_dir = directory / CATEGORY_DIR
    for stale in cat_dir.glob("*.faiss"):
        stale.unlink()
    for cat, cat_index in (category_indexes or {}).items():
        cat_dir.mkdir(exist_ok=True)
        _replace(cat_dir / f"{int(cat)}.faiss", lambda p, i=cat_index: faiss.write_index(i, str(p)))
    text = json.dumps(manifest, indent=2)
    _replace(directory / MANIFEST_FILE, lambda p: p.write_text(text))


def load(directory: Path, expected_model_version: int | None) -> tuple[faiss.Index, np.ndarray, dict, dict[int, faiss.Index]]:
    """Read a release written by ``save`` and set its search parameters.

    Args:
        expected_model_version: the serving tower's model version; None skips the check.

    Returns:
        ``(index, item ids by FAISS position, manifest, {category: index})``.

    Raises:
        IndexValidationError: no manifest (an incomplete write) or an id map that does not fit the index.
        IndexVersionMismatch: the manifest's ``model_version`` is not ``expected_model_version``
            (checked before any index is read).
    """
    directory = Path(directory)
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.exists():
        raise IndexValidationError(f"no {MANIFEST_FILE} in {directory}: the index was not completely written")
    manifest = json.loads(manifest_path.read_text())
    version = manifest.get("model_version")
    if expected_model_version is not None and version != expected_model_version:
        raise IndexVersionMismatch(
            f"index built from {manifest.get('model', 'unknown model')} v{version} vectors; the serving tower is "
            f"v{expected_model_version}: refusing to serve mismatched vectors"
        )
    index = faiss.read_index(str(directory / INDEX_FILE))
    ids = np.asarray(json.loads((directory / ID_MAP_FILE).read_text())["faiss_id_to_item_id"], dtype=np.int64)
    _check_index_matches(index, index.d, ids)
    apply_params(index, manifest.get("search_params") or {})
    cat_params = manifest.get("category_search_params") or {}
    cats = {}
    for path in sorted((directory / CATEGORY_DIR).glob("*.faiss")):
        cats[int(path.stem)] = faiss.read_index(str(path))
        apply_params(cats[int(path.stem)], cat_params.get(path.stem) or {})
    return index, ids, manifest, cats
