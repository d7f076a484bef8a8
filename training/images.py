"""Per-item image embeddings: the frozen image half of the CNN+DNN click model.

Every item of the lake's ``raw/items`` snapshot may carry an ``image``: base64 of raw RGB uint8 bytes
(``IMAGE_SIZE`` x ``IMAGE_SIZE`` x 3, the synthetic demo data), base64 of a PNG or JPEG (production),
or an empty string (imported datasets, which have no images). ``item_image_embeddings`` turns one
snapshot into a float32 table ``[n_items, d]`` whose row ``i`` belongs to item id ``i``; items without
an image, and ids absent from the snapshot, get a row of zeros. The click model holds that table frozen
and looks rows up by item id.

Two kinds of encoder make the table:

* ``"small"`` (the default, not in ``BACKBONES``): the project's own small CNN, pretrained here on
  predicting each item's category from its image, then frozen. It needs no download and no file.
* a name in ``BACKBONES``: a Keras Applications network without its top, average pooled, with weights
  from a LOCAL file (nothing is ever downloaded), the small images resized up to its minimum input size.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
from collections.abc import Callable, Sequence

import keras
import numpy as np
from PIL import Image

from recpipe import contracts, tables
from recpipe.synthetic import IMAGE_SIZE

log = logging.getLogger(__name__)

SMALL = "small"
# Keras Applications constructors by name; the project's own small CNN, SMALL, is handled separately.
# recpipe.config.CNN_BACKBONES lists the same names (recpipe cannot import Keras); a test keeps them aligned.
# Embedding width of each backbone (its pooled output), without building it.
BACKBONE_WIDTHS = {"mobilenet_v3_small": 576, "efficientnet_b0": 1280}
BACKBONES: dict[str, Callable[..., keras.Model]] = {
    "mobilenet_v3_small": keras.applications.MobileNetV3Small,
    "efficientnet_b0": keras.applications.EfficientNetB0,
}
# Smallest input side each constructor accepts (keras/src/applications: MobileNetV3 checks 32 itself,
# EfficientNet passes min_size=32 to obtain_input_shape). All of them take 0-255 pixels: MobileNetV3
# rescales to [-1, 1] itself (include_preprocessing=True), EfficientNet rescales and normalizes itself.
_MIN_SIZE = {"mobilenet_v3_small": 32, "efficientnet_b0": 32}
# What Keras's ImageNet EfficientNet checkpoint stores as the Normalization variance (by mistake: these are
# standard deviations; tensorflow/tensorflow#49930). Keras fixes it with an extra Rescaling only when
# weights="imagenet", so a local copy of that file needs the same fix here.
_IMAGENET_STDDEV_RGB = np.array([0.229, 0.224, 0.225])
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")  # PNG, JPEG
_HOLDOUT = 0.1
_SETTING = "config cnn_dnn.backbone_weights"  # where weights_path comes from, for error messages


def decode_images(encoded: Sequence[str | None], size: int = IMAGE_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Decode the ``image`` column into pixels.

    Args:
        encoded: One string per item: empty (or None) for no image, base64 of exactly
            ``size * size * 3`` raw RGB bytes, or base64 of an image file Pillow reads (PNG, JPEG, ...).
        size: Side of the square images returned; image files of another size are resized to it.

    Returns:
        ``(images, has_image)``: uint8 ``[N, size, size, 3]`` (zeros where there is no image) and
        bool ``[N]``.

    Raises:
        ValueError: If ``size`` is not positive, or a row is not a string, not valid base64, or neither
            raw bytes of the right length nor an image file; the message names the row.
    """
    if size < 1:
        raise ValueError(f"size must be at least 1, received {size}")
    n_raw = size * size * 3
    images = np.zeros((len(encoded), size, size, 3), dtype=np.uint8)
    has_image = np.zeros(len(encoded), dtype=bool)
    for row, text in enumerate(encoded):
        if text is None or text == "":
            continue
        if not isinstance(text, str):
            raise ValueError(f"image row {row}: expected a base64 string, received {type(text).__name__}")
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as err:
            raise ValueError(f"image row {row}: not valid base64 ({err}); received {text[:40]!r}...") from err
        pixels = _read_file(raw, size) if raw.startswith(_MAGIC) else None
        if pixels is None and len(raw) == n_raw:
            pixels = np.frombuffer(raw, dtype=np.uint8).reshape(size, size, 3)
        if pixels is None:
            pixels = _read_file(raw, size)
        if pixels is None:
            raise ValueError(
                f"image row {row}: expected {size}x{size}x3 = {n_raw} raw RGB bytes or an image file Pillow can read, "
                f"received {len(raw)} bytes that are neither"
            )
        images[row] = pixels
        has_image[row] = True
    return images, has_image


def _read_file(raw: bytes, size: int) -> np.ndarray | None:
    """An image file's pixels as uint8 RGB resized to size x size, or None when Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(raw)) as img:
            rgb = img.convert("RGB")
            if rgb.size != (size, size):
                rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def small_cnn(n_classes: int, embedding_dim: int, image_size: int) -> tuple[keras.Model, keras.Model]:
    """The project's small image CNN, as a category classifier and the encoder inside it.

    Rescaling(1/255) -> Conv2D(16, 3) -> MaxPool -> Conv2D(32, 3) -> global average pooling ->
    Dense(embedding_dim, relu, name="image_embedding") [encoder output] -> Dense(n_classes, softmax).

    Args:
        n_classes: Number of categories the classifier predicts (at least 2).
        embedding_dim: Width of the image embedding (at least 1).
        image_size: Side of the square uint8 RGB input images, 0-255 (at least 2, for the pooling).

    Returns:
        ``(classifier, encoder)``; both take ``[batch, image_size, image_size, 3]`` and share layers.

    Raises:
        ValueError: If a size is out of range.
    """
    if n_classes < 2 or embedding_dim < 1 or image_size < 2:
        raise ValueError(
            "small_cnn needs n_classes >= 2, embedding_dim >= 1 and image_size >= 2, "
            f"received n_classes={n_classes}, embedding_dim={embedding_dim}, image_size={image_size}"
        )
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu", padding="same", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, activation="relu", padding="same", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    embedding = keras.layers.Dense(embedding_dim, activation="relu", name="image_embedding")(x)
    # float32 softmax, so the loss stays stable under a mixed_float16 policy.
    probs = keras.layers.Dense(n_classes, activation="softmax", name="category", dtype="float32")(embedding)
    return keras.Model(inputs, probs, name="image_classifier"), keras.Model(inputs, embedding, name="image_encoder")


def pretrain_small_cnn(
    images: np.ndarray,
    categories: np.ndarray,
    *,
    embedding_dim: int,
    epochs: int,
    batch_size: int,
    seed: int,
    has_image: np.ndarray | None = None,
    learning_rate: float = 1e-2,
) -> tuple[keras.Model, dict[str, float]]:
    """Pretrain the small CNN on predicting each item's category from its image; return its frozen encoder.

    A seeded 10% of the images (at least one) is held out and only scores the classifier; the encoder
    returned is the one trained on the other 90%, so the reported accuracy is that encoder's.

    Args:
        images: uint8 ``[N, size, size, 3]``.
        categories: Integer category id per row, ``[N]``, non-negative; the classifier has
            ``max(category) + 1`` classes.
        embedding_dim: Width of the image embedding.
        epochs: Training epochs (at least 1).
        batch_size: Training batch size (at least 1).
        seed: Seeds Keras, the hold-out split and the shuffling: same inputs and seed, same encoder.
        has_image: bool ``[N]``; only rows where it is True train or score. None means every row.
        learning_rate: Adam's learning rate. Keras's default 1e-3 is too slow for the few steps a
            pretraining gets here (1,000 demo items, batch 256, 5 epochs: 20 steps, 13-61% held-out
            accuracy over three seeds, against 100% at 1e-2).

    Returns:
        ``(encoder, metrics)``: the encoder with ``trainable=False``, mapping images to
        ``[batch, embedding_dim]``, and ``image_pretrain_accuracy`` (held-out accuracy),
        ``image_pretrain_items`` (images trained on) and ``image_pretrain_holdout_items``.

    Raises:
        ValueError: If shapes disagree, fewer than 2 rows have an image, the images show fewer than
            2 categories, or a category is negative.
    """
    images = np.asarray(images)
    categories = np.asarray(categories)
    mask = np.ones(len(images), dtype=bool) if has_image is None else np.asarray(has_image, dtype=bool)
    if images.ndim != 4 or images.shape[1] != images.shape[2] or images.shape[3] != 3:
        raise ValueError(f"images must be [N, size, size, 3], received shape {images.shape}")
    if categories.shape != (len(images),) or mask.shape != (len(images),):
        raise ValueError(
            f"categories and has_image must be [N] with N={len(images)} images, "
            f"received shapes {categories.shape} and {mask.shape}"
        )
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ValueError(
            "epochs and batch_size must be at least 1 and learning_rate positive, "
            f"received epochs={epochs}, batch_size={batch_size}, learning_rate={learning_rate}"
        )
    x, y = images[mask].astype(np.float32), categories[mask].astype(np.int64)
    if len(x) < 2:
        raise ValueError(f"pretraining the image CNN needs at least 2 items with an image, received {len(x)}")
    if y.min() < 0:
        raise ValueError(f"categories must be non-negative ids, received min {y.min()}")
    if len(np.unique(y)) < 2:
        raise ValueError(f"pretraining the image CNN needs at least 2 categories among the images, received {np.unique(y)}")
    keras.utils.set_random_seed(seed)
    order = np.random.default_rng(seed).permutation(len(x))
    n_holdout = max(1, round(_HOLDOUT * len(x)))
    held, fit = order[:n_holdout], order[n_holdout:]
    classifier, encoder = small_cnn(int(y.max()) + 1, embedding_dim, images.shape[1])
    classifier.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=keras.losses.SparseCategoricalCrossentropy())
    classifier.fit(x[fit], y[fit], batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    predicted = np.argmax(classifier.predict(x[held], batch_size=batch_size, verbose=0), axis=-1)
    metrics = {
        "image_pretrain_accuracy": float(np.mean(predicted == y[held])),
        "image_pretrain_items": float(len(fit)),
        "image_pretrain_holdout_items": float(n_holdout),
    }
    log.info("image CNN pretrained on %d images: held-out category accuracy %.3f", len(fit), metrics["image_pretrain_accuracy"])
    encoder.trainable = False
    return encoder, metrics


def backbone_encoder(name: str, weights_path: str, image_size: int) -> keras.Model:
    """A frozen Keras Applications backbone (no top, average pooled) with weights from a local file.

    The input is ``[batch, image_size, image_size, 3]`` uint8-range (0-255) pixels, resized up to the
    backbone's minimum input side (32) when smaller; the backbone's own preprocessing layers do the rest.
    For ``efficientnet_b0`` a local copy of Keras's ImageNet checkpoint (recognized by its Normalization
    variance) gets the same normalization fix Keras applies when it loads ``weights="imagenet"`` itself.

    Args:
        name: A key of ``BACKBONES``.
        weights_path: Local weights file of that backbone built with ``include_top=False`` (a Keras
            ``.weights.h5`` or a legacy ``.h5``). Never downloaded: "imagenet" is refused.
        image_size: Side of the square input images.

    Returns:
        The encoder, with ``trainable=False``, mapping images to ``[batch, d]`` (d = the backbone's width:
        576 for mobilenet_v3_small, 1280 for efficientnet_b0).

    Raises:
        ValueError: If the name is unknown, ``weights_path`` is "imagenet", empty or not a file, the
            file does not fit the backbone, or ``image_size`` is not positive.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown image backbone {name!r}; expected one of {sorted(BACKBONES)}")
    if weights_path == "imagenet":
        raise ValueError(
            f"image backbone {name!r}: weights_path='imagenet' would download weights, which this pipeline never does; "
            f"set weights_path ({_SETTING}) to a local weights file (include_top=False)"
        )
    if not weights_path:
        raise ValueError(
            f"image backbone {name!r} needs weights_path ({_SETTING}), a local weights file (include_top=False); received ''"
        )
    if not os.path.isfile(weights_path):
        raise ValueError(f"image backbone {name!r}: weights_path ({_SETTING}) {weights_path!r} is not a file")
    if image_size < 1:
        raise ValueError(f"image_size must be at least 1, received {image_size}")
    side = max(image_size, _MIN_SIZE[name])
    try:
        backbone = BACKBONES[name](weights=weights_path, include_top=False, pooling="avg", input_shape=(side, side, 3))
    except ValueError as err:
        raise ValueError(f"image backbone {name!r}: weights_path={weights_path!r} does not load: {err}") from err
    if name.startswith("efficientnet"):
        _fix_imagenet_normalization(backbone)
    backbone.trainable = False
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = keras.layers.Resizing(side, side, name="resize_to_backbone")(inputs) if side != image_size else inputs
    return keras.Model(inputs, backbone(x, training=False), name=f"{name}_encoder")


def _fix_imagenet_normalization(backbone: keras.Model) -> None:
    """Fold Keras's weights="imagenet" extra Rescaling(1/sqrt(stddev)) into the Normalization variance."""
    norm = next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Normalization))
    variance = keras.ops.convert_to_numpy(norm.adapt_variance)
    if np.allclose(variance, _IMAGENET_STDDEV_RGB, atol=1e-4):
        # (x - mean) / sqrt(var) / sqrt(stddev) == (x - mean) / sqrt(var * stddev)
        norm.adapt_variance.assign(variance * _IMAGENET_STDDEV_RGB)
        norm.finalize_state()


def encode(encoder: keras.Model, images: np.ndarray, has_image: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """Embed images with an encoder; rows without an image get zeros.

    Args:
        encoder: A model from ``pretrain_small_cnn``, ``small_cnn`` or ``backbone_encoder``.
        images: uint8 ``[N, size, size, 3]`` matching the encoder's input.
        has_image: bool ``[N]``.
        batch_size: Prediction batch size.

    Returns:
        float32 ``[N, d]``, d the encoder's output width.

    Raises:
        ValueError: If the shapes do not match the encoder or each other.
    """
    images = np.asarray(images)
    has_image = np.asarray(has_image, dtype=bool)
    expected = tuple(encoder.inputs[0].shape[1:])
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        raise ValueError(f"encoder {encoder.name!r} expects images [N, {', '.join(map(str, expected))}], received {images.shape}")
    if has_image.shape != (len(images),):
        raise ValueError(f"has_image must be [N] with N={len(images)}, received shape {has_image.shape}")
    out = np.zeros((len(images), int(encoder.outputs[0].shape[-1])), dtype=np.float32)
    if has_image.any():
        out[has_image] = encoder.predict(images[has_image].astype(np.float32), batch_size=batch_size, verbose=0)
    return out


def item_image_embeddings(
    lake_root: str,
    ds: str,
    *,
    backbone: str = SMALL,
    weights_path: str = "",
    embedding_dim: int = 16,
    epochs: int = 5,
    batch_size: int = 256,
    seed: int = 0,
    learning_rate: float = 1e-2,
) -> tuple[np.ndarray, dict[str, float]]:
    """The frozen per-item image-embedding table of the latest item snapshot at or before ``ds``.

    Args:
        lake_root: Lake root URI.
        ds: Day the table is for; the latest complete ``raw/items`` snapshot at or before it is read.
        backbone: ``"small"`` (pretrain the project's small CNN on the items' categories) or a key of
            ``BACKBONES`` (a pretrained network from ``weights_path``).
        weights_path: Local weights file, for a ``BACKBONES`` backbone only.
        embedding_dim: Width of the small CNN's embedding; ignored for a ``BACKBONES`` backbone, whose
            width is its own (576 for mobilenet_v3_small, 1280 for efficientnet_b0).
        epochs: Small CNN pretraining epochs.
        batch_size: Small CNN pretraining batch size.
        seed: Small CNN seed.
        learning_rate: Small CNN pretraining learning rate (Adam).

    Returns:
        ``(table, metrics)``: float32 ``[n_items, d]`` with row i = item id i (``n_items`` as
        ``recpipe.tables.n_items``); ids absent from the snapshot or without an image are zeros. Metrics:
        ``image_items_with_image``, ``image_embedding_dim`` and, for "small", the pretraining metrics
        (``image_pretrain_accuracy``, ...).

    Raises:
        ValueError: If the backbone is unknown, an image does not decode, or item ids are negative or
            repeated. A snapshot without any image gives an all-zero table (logged as a warning).
    """
    if backbone != SMALL and backbone not in BACKBONES:
        raise ValueError(f"unknown image backbone {backbone!r}; expected one of {[SMALL, *sorted(BACKBONES)]}")
    table = tables.read_snapshot(lake_root, contracts.RAW_ITEMS, ds, columns=["item_id", "category_id", "image"])
    n_items = tables.n_items(lake_root, ds)
    ids = table.column("item_id").to_numpy()
    if ids.min(initial=0) < 0 or len(np.unique(ids)) != len(ids):
        raise ValueError(f"{contracts.RAW_ITEMS.name} at or before ds={ds}: item ids must be unique and non-negative")
    images, has_image = decode_images(table.column("image").to_pylist())
    if not has_image.any():
        # Imported datasets carry no images: CNN+DNN then trains as a plain DNN (an all-zero image input)
        # rather than failing the night; the metric says so in every run.
        log.warning(
            "%s at or before ds=%s: none of its %d items has an image; image embeddings are zeros",
            contracts.RAW_ITEMS.name,
            ds,
            len(ids),
        )
        dim = embedding_dim if backbone == SMALL else BACKBONE_WIDTHS[backbone]
        return np.zeros((n_items, dim), np.float32), {"image_items_with_image": 0.0, "image_embedding_dim": float(dim)}
    metrics: dict[str, float] = {}
    if backbone == SMALL:
        categories = table.column("category_id").to_numpy()
        encoder, metrics = pretrain_small_cnn(
            images,
            categories,
            embedding_dim=embedding_dim,
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            has_image=has_image,
            learning_rate=learning_rate,
        )
    else:
        encoder = backbone_encoder(backbone, weights_path, images.shape[1])
    embeddings = encode(encoder, images, has_image)
    out = np.zeros((n_items, embeddings.shape[1]), dtype=np.float32)
    out[ids] = embeddings
    metrics.update({"image_items_with_image": float(has_image.sum()), "image_embedding_dim": float(embeddings.shape[1])})
    return out, metrics
