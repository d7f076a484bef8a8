import base64
import io
import json

import keras
import numpy as np
import pytest
from PIL import Image

from recpipe.synthetic import IMAGE_SIZE, _image
from training import images


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _png(pixels: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")  # [h, w, 3] -> RGB, [h, w] -> grayscale
    return _b64(buf.getvalue())


def _synthetic(n: int, n_categories: int = 6) -> tuple[np.ndarray, np.ndarray]:
    categories = np.arange(n) % n_categories
    encoded = [_image(np.random.default_rng(k), int(c)) for k, c in enumerate(categories)]
    pixels, has_image = images.decode_images(encoded)
    assert has_image.all()
    return pixels, categories


def test_decode_raw_bytes_png_and_empty():
    raw = np.arange(IMAGE_SIZE * IMAGE_SIZE * 3, dtype=np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE, 3)  # 0..255, then 0..175
    exact_png = np.random.default_rng(0).integers(0, 256, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    red_24 = np.zeros((24, 24, 3), dtype=np.uint8)
    red_24[..., 0] = 255
    gray_30 = np.full((30, 30), 100, dtype=np.uint8)
    pixels, has_image = images.decode_images([_b64(raw.tobytes()), "", None, _png(exact_png), _png(red_24), _png(gray_30)])
    assert pixels.shape == (6, IMAGE_SIZE, IMAGE_SIZE, 3) and pixels.dtype == np.uint8
    assert has_image.tolist() == [True, False, False, True, True, True]
    np.testing.assert_array_equal(pixels[0], raw)
    assert not pixels[1].any() and not pixels[2].any()
    np.testing.assert_array_equal(pixels[3], exact_png)  # PNG is lossless and already 12x12
    assert (pixels[4] == [255, 0, 0]).all()  # 24x24 solid red, resized to 12x12
    assert (pixels[5] == [100, 100, 100]).all()  # grayscale becomes RGB


def test_decode_names_the_bad_row():
    with pytest.raises(ValueError, match=r"row 1: not valid base64"):
        images.decode_images(["", "not base64!"])
    with pytest.raises(ValueError, match=r"row 0: expected 12x12x3 = 432 raw RGB bytes.*received 10 bytes"):
        images.decode_images([_b64(bytes(10))])
    with pytest.raises(ValueError, match=r"row 2: expected a base64 string, received int"):
        images.decode_images(["", "", 7])


def test_small_cnn_shapes_and_validation():
    classifier, encoder = images.small_cnn(n_classes=3, embedding_dim=5, image_size=IMAGE_SIZE)
    x = np.zeros((2, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    assert classifier.predict(x, verbose=0).shape == (2, 3)
    assert encoder.predict(x, verbose=0).shape == (2, 5)
    assert encoder.get_layer("image_embedding") is classifier.get_layer("image_embedding")
    with pytest.raises(ValueError, match=r"n_classes >= 2.*received n_classes=1"):
        images.small_cnn(n_classes=1, embedding_dim=5, image_size=IMAGE_SIZE)


def test_pretrain_learns_categories_and_freezes_the_encoder():
    pixels, categories = _synthetic(300)
    kwargs = {"embedding_dim": 8, "epochs": 5, "batch_size": 32, "seed": 3}
    encoder, metrics = images.pretrain_small_cnn(pixels, categories, **kwargs)
    assert metrics["image_pretrain_accuracy"] > 0.9, metrics
    assert (metrics["image_pretrain_items"], metrics["image_pretrain_holdout_items"]) == (270, 30)
    assert encoder.trainable_weights == []
    has_image = np.ones(300, dtype=bool)
    has_image[0] = False
    emb = images.encode(encoder, pixels, has_image)
    assert emb.shape == (300, 8) and emb.dtype == np.float32
    assert not emb[0].any() and emb[1:].any()
    again, _ = images.pretrain_small_cnn(pixels, categories, **kwargs)
    np.testing.assert_allclose(images.encode(again, pixels, has_image), emb, rtol=1e-5, atol=1e-6)


def test_pretrain_refuses_one_category_or_no_images():
    pixels, _ = _synthetic(4)
    with pytest.raises(ValueError, match="at least 2 categories"):
        images.pretrain_small_cnn(pixels, np.zeros(4, dtype=int), embedding_dim=4, epochs=1, batch_size=2, seed=0)
    with pytest.raises(ValueError, match="at least 2 items with an image, received 0"):
        images.pretrain_small_cnn(
            pixels, np.arange(4), embedding_dim=4, epochs=1, batch_size=2, seed=0, has_image=np.zeros(4, dtype=bool)
        )


def test_backbone_loads_a_local_file_and_refuses_downloads(tmp_path):
    source = keras.applications.MobileNetV3Small(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    path = tmp_path / "w.weights.h5"
    source.save_weights(path)
    encoder = images.backbone_encoder("mobilenet_v3_small", str(path), IMAGE_SIZE)
    assert encoder.trainable_weights == []
    (backbone,) = [layer for layer in encoder.layers if isinstance(layer, keras.Model)]
    loaded = backbone.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(loaded, source.get_weights(), strict=True))
    pixels, _ = _synthetic(3)
    emb = images.encode(encoder, pixels, np.array([True, False, True]))
    assert emb.shape == (3, images.BACKBONE_WIDTHS["mobilenet_v3_small"]) == (3, 576)  # MobileNetV3Small's pooled width
    assert not emb[1].any() and emb[0].any()
    missing = str(tmp_path / "missing.h5")
    for bad, why in [
        ("imagenet", "weights_path='imagenet' would download"),
        ("", "needs weights_path"),
        (missing, "is not a file"),
    ]:
        with pytest.raises(ValueError, match=why) as err:
            images.backbone_encoder("mobilenet_v3_small", bad, IMAGE_SIZE)
        assert "weights_path" in str(err.value)
    with pytest.raises(ValueError, match=r"unknown image backbone 'resnet'.*efficientnet_b0"):
        images.backbone_encoder("resnet", str(path), IMAGE_SIZE)


def test_backbone_names_match_the_config():
    from recpipe.config import CNN_BACKBONES

    assert sorted(CNN_BACKBONES) == sorted([images.SMALL, *images.BACKBONES])


def _normalization(model: keras.Model) -> keras.layers.Normalization:
    (backbone,) = [layer for layer in model.layers if isinstance(layer, keras.Model)] or [model]
    (norm,) = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Normalization)]
    return norm


def test_efficientnet_imagenet_checkpoint_gets_keras_normalization_fix(tmp_path, monkeypatch):
    # Keras's ImageNet checkpoint stores the ImageNet standard deviations as the Normalization *variance*;
    # Keras divides once more by sqrt(stddev) when it loads "imagenet", so the variance used must be stddev**2.
    source = keras.applications.EfficientNetB0(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    plain, imagenet = tmp_path / "plain.weights.h5", tmp_path / "imagenet.weights.h5"
    source.save_weights(plain)
    _normalization(source).adapt_variance.assign([0.229, 0.224, 0.225])
    source.save_weights(imagenet)
    encoder = images.backbone_encoder("efficientnet_b0", str(imagenet), 32)
    variance = keras.ops.convert_to_numpy(_normalization(encoder).adapt_variance)
    np.testing.assert_allclose(variance, [0.229**2, 0.224**2, 0.225**2], rtol=1e-6)
    # The same outputs as Keras's own weights="imagenet" path, pointed at this file instead of the download.
    monkeypatch.setattr("keras.src.applications.efficientnet.file_utils.get_file", lambda *a, **k: str(imagenet))
    keras_imagenet = keras.applications.EfficientNetB0(
        weights="imagenet", include_top=False, pooling="avg", input_shape=(32, 32, 3)
    )
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(images.encode(encoder, x, np.ones(2, dtype=bool)), keras_imagenet.predict(x, verbose=0), atol=1e-5)
    # Any other file is loaded as it is.
    variance = keras.ops.convert_to_numpy(
        _normalization(images.backbone_encoder("efficientnet_b0", str(plain), 32)).adapt_variance
    )
    np.testing.assert_array_equal(variance, [1.0, 1.0, 1.0])


def _items_snapshot(root, ds, rows):
    part = root / "raw" / "items" / f"ds={ds}"
    part.mkdir(parents=True)
    (part / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (part / "_SUCCESS").touch()


def test_item_image_embeddings_from_a_tiny_lake(tmp_path):
    # Items 0..7 and 9 (8 missing), out of order; item 3 has no image. 8 images over 2 categories.
    rows = [
        {"item_id": i, "city_id": 0, "category_id": i % 2, "price": 1.0, "created_ts": 0,
         "image": "" if i == 3 else _image(np.random.default_rng(i), i % 2)}
        for i in [9, 7, 3, 0, 1, 2, 4, 5, 6]
    ]  # fmt: skip
    _items_snapshot(tmp_path, "2026-11-01", rows)
    table, metrics = images.item_image_embeddings(str(tmp_path), "2026-11-02", embedding_dim=4, epochs=2, batch_size=4)
    assert table.shape == (10, 4) and table.dtype == np.float32
    assert not table[3].any() and not table[8].any()  # no image; id absent from the snapshot
    assert table[[0, 1, 2, 4, 5, 6, 7, 9]].any(axis=1).all()
    assert set(metrics) == {
        "image_pretrain_accuracy",
        "image_pretrain_items",
        "image_pretrain_holdout_items",
        "image_items_with_image",
        "image_embedding_dim",
    }
    assert (metrics["image_items_with_image"], metrics["image_embedding_dim"]) == (8, 4)
    assert (metrics["image_pretrain_items"], metrics["image_pretrain_holdout_items"]) == (7, 1)
    with pytest.raises(ValueError, match=r"unknown image backbone 'vgg'.*'small'"):
        images.item_image_embeddings(str(tmp_path), "2026-11-02", backbone="vgg")


def test_item_image_embeddings_of_a_lake_without_images_are_zeros(tmp_path):
    _items_snapshot(
        tmp_path, "2026-11-01", [{"item_id": 1, "city_id": 0, "category_id": 0, "price": 1.0, "created_ts": 0, "image": ""}]
    )
    table, got = images.item_image_embeddings(str(tmp_path), "2026-11-01", embedding_dim=3)
    assert table.shape == (2, 3) and not table.any()
    assert got == {"image_items_with_image": 0.0, "image_embedding_dim": 3.0}
    table, _ = images.item_image_embeddings(str(tmp_path), "2026-11-01", backbone="mobilenet_v3_small", weights_path="unused")
    assert table.shape == (2, images.BACKBONE_WIDTHS["mobilenet_v3_small"])
