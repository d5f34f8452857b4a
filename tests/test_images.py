"""common/images.py, common/encoders.py, common/feature_cache.py and data/synthetic/scenes.py: file checks,
in-graph decoding, encoders, feature cache."""

from __future__ import annotations

import io
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from common import encoders, feature_cache, images
from data import DataError
from data.synthetic import scenes


def _jpeg_bytes(seed: int = 0, size: int = 64) -> bytes:
    image = scenes.draw_scene(scenes.random_scene(np.random.default_rng(seed), max_objects=3), size)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _png_bytes(size: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


# --- scenes ------------------------------------------------------------------------------------------


def test_random_scene_is_seeded_and_objects_do_not_overlap():
    first = [scenes.random_scene(np.random.default_rng(7), max_objects=4) for _ in range(3)]
    again = [scenes.random_scene(np.random.default_rng(7), max_objects=4) for _ in range(3)]
    assert first == again
    rng = np.random.default_rng(1)
    counts = set()
    for _ in range(200):
        scene = scenes.random_scene(rng, max_objects=4)
        counts.add(len(scene.objects))
        for index, a in enumerate(scene.objects):
            assert 0.0 < a.x < 1.0 and 0.0 < a.y < 1.0
            for b in scene.objects[index + 1 :]:
                gap = math.hypot(a.x - b.x, a.y - b.y) - scenes.SIZE_RADIUS[a.size] - scenes.SIZE_RADIUS[b.size]
                assert gap > 0.0
    assert counts == {1, 2, 3, 4}


def test_draw_scene_puts_the_colour_at_the_object_centre():
    item = scenes.SceneObject(shape="square", colour="blue", size="large", x=0.3, y=0.7)
    image = scenes.draw_scene(scenes.Scene(objects=(item,), background="white"), image_size=100)
    assert image.size == (100, 100) and image.mode == "RGB"
    pixels = np.asarray(image)
    assert np.abs(pixels[70, 30].astype(int) - scenes.COLOUR_RGB["blue"]).max() < 12
    assert pixels[10, 90].min() > 200  # background far from the object stays white
    assert scenes.draw_scene(scenes.Scene(objects=(item,), background="white"), 100).tobytes() == image.tobytes()


def test_scene_validation_and_round_trip():
    with pytest.raises(ValueError, match="shape='hexagon'"):
        scenes.SceneObject(shape="hexagon", colour="red", size="small", x=0.5, y=0.5)
    with pytest.raises(ValueError, match=r"x=1.5.*\[0, 1\]"):
        scenes.SceneObject(shape="circle", colour="red", size="small", x=1.5, y=0.5)
    with pytest.raises(ValueError, match="background='pink'"):
        scenes.Scene(objects=(), background="pink")
    with pytest.raises(ValueError, match="max_objects=9"):
        scenes.random_scene(np.random.default_rng(0), max_objects=9)
    scene = scenes.random_scene(np.random.default_rng(3), max_objects=3)
    assert scenes.Scene.from_dict(scene.to_dict()) == scene


def test_spatial_language():
    left = scenes.SceneObject(shape="circle", colour="red", size="small", x=0.2, y=0.2)
    right = scenes.SceneObject(shape="circle", colour="red", size="small", x=0.8, y=0.25)
    assert scenes.horizontal_relation(left, right) == "left of"
    assert scenes.horizontal_relation(right, left) == "right of"
    assert scenes.vertical_relation(left, right) is None  # 0.05 apart: not clearly above
    assert scenes.region(left) == "top left" and scenes.region(right) == "top right"


def test_write_jpeg_is_atomic_and_readable(tmp_path):
    image = scenes.draw_scene(scenes.random_scene(np.random.default_rng(0)), 32)
    target = tmp_path / "sub" / "scene.jpg"
    scenes.write_jpeg(image, target)
    assert [p.name for p in target.parent.iterdir()] == ["scene.jpg"]  # no temporary left behind
    assert images.read_image_bytes(target)[:3] == b"\xff\xd8\xff"


# --- reading files -----------------------------------------------------------------------------------


def test_read_image_bytes_accepts_jpeg_and_png(tmp_path):
    (tmp_path / "a.jpg").write_bytes(_jpeg_bytes())
    (tmp_path / "b.png").write_bytes(_png_bytes())
    assert images.read_image_bytes(tmp_path / "a.jpg") == _jpeg_bytes()
    assert images.read_image_bytes(tmp_path / "b.png").startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "does not exist"),
        (b"GIF89a not really", "not a JPEG or PNG"),
        (b"", "not a JPEG or PNG"),
        ("truncated", "corrupt or truncated"),
    ],
)
def test_read_image_bytes_errors_name_the_file(tmp_path, content, message):
    path = tmp_path / "broken_image.jpg"
    if content == "truncated":
        content = _jpeg_bytes()[:400]
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as caught:
        images.read_image_bytes(path)
    assert "broken_image.jpg" in str(caught.value)


# --- decoding ----------------------------------------------------------------------------------------


def test_decode_images_shape_range_and_content():
    batch = tf.constant([_jpeg_bytes(0), _png_bytes()])
    decoded = images.decode_images(batch, 32).numpy()
    assert decoded.shape == (2, 32, 32, 3) and decoded.dtype == np.float32
    assert decoded.min() >= 0.0 and decoded.max() <= 255.0
    np.testing.assert_allclose(decoded[1].mean(axis=(0, 1)), [10, 200, 30], atol=1.5)  # the flat green PNG


def test_decode_images_safe_reports_each_bad_element_and_keeps_the_good_ones():
    good = _jpeg_bytes(1)
    batch = [good, b"not an image", good[: len(good) // 2], b"", _png_bytes(), good[:300] + good[-2:]]
    function = tf.function(lambda b: images.decode_images_safe(b, 32),
                           input_signature=[tf.TensorSpec([None], tf.string)])
    decoded, problems = function(tf.constant(batch))
    problems = [p.decode() for p in problems.numpy()]
    assert problems[0] == "" and problems[4] == ""
    assert "not a JPEG or PNG" in problems[1]
    assert "truncated JPEG" in problems[2]
    assert "empty input" in problems[3]
    assert "corrupt image data" in problems[5]  # passes the structural checks, rejected by the decoder
    np.testing.assert_allclose(decoded[0].numpy(), images.decode_images(tf.constant([good]), 32)[0].numpy())
    assert float(tf.reduce_max(decoded[1])) == 0.0
    empty, no_problems = function(tf.constant([], tf.string))
    assert empty.shape == (0, 32, 32, 3) and no_problems.shape == (0,)


# --- encoders ----------------------------------------------------------------------------------------


def test_image_preprocessing_modes_and_config_round_trip():
    pixels = np.array([[[[0.0, 127.5, 255.0]]]], np.float32)
    assert np.allclose(encoders.ImagePreprocessing("tf")(pixels), [[[[-1.0, 0.0, 1.0]]]])
    assert np.allclose(encoders.ImagePreprocessing("unit")(pixels), [[[[0.0, 0.5, 1.0]]]])
    assert np.allclose(encoders.ImagePreprocessing("caffe")(pixels), [[[[255 - 103.939, 127.5 - 116.779, 0 - 123.68]]]])
    layer = encoders.ImagePreprocessing(mode="caffe", name="p")
    clone = encoders.ImagePreprocessing.from_config(layer.get_config())
    assert clone.mode == "caffe" and clone.name == "p"
    with pytest.raises(ValueError, match="mode='bgr'"):
        encoders.ImagePreprocessing(mode="bgr")


def test_build_encoder_small_cnn_and_errors(tmp_path):
    encoder = encoders.build_encoder("small_cnn", 32, feature_dim=16)
    batch = images.decode_images(tf.constant([_jpeg_bytes(0), _jpeg_bytes(1)]), 32)
    features = encoder(batch).numpy()
    assert features.shape == (2, 16)
    weights = tmp_path / "encoder.weights.h5"
    encoder.save_weights(weights)
    keras.utils.set_random_seed(99)
    reloaded = encoders.build_encoder("small_cnn", 32, weights_path=str(weights), feature_dim=16)
    np.testing.assert_allclose(reloaded(batch).numpy(), features, rtol=1e-5, atol=1e-6)
    assert encoders.weights_fingerprint(reloaded) == encoders.weights_fingerprint(encoder)
    with pytest.raises(ValueError, match="Unknown encoder 'vgg'"):
        encoders.build_encoder("vgg", 32)
    with pytest.raises(ValueError, match="inception_v3.*>= 75"):
        encoders.build_encoder("inception_v3", 64)
    with pytest.raises(DataError, match="missing.h5"):
        encoders.build_encoder("small_cnn", 32, weights_path=str(tmp_path / "missing.h5"))
    other = encoders.build_encoder("small_cnn", 32, feature_dim=8)
    other.save_weights(tmp_path / "other.weights.h5")
    with pytest.raises(DataError, match="do not fit"):
        encoders.build_encoder("small_cnn", 32, weights_path=str(tmp_path / "other.weights.h5"), feature_dim=16)


def test_keras_application_encoder_warns_about_random_weights(caplog):
    with caplog.at_level("WARNING"):
        encoder = encoders.build_encoder("mobilenet_v3_small", 32)
    assert encoder.output_shape == (None, 576)
    assert any("RANDOM weights" in record.message for record in caplog.records)


# --- feature cache -----------------------------------------------------------------------------------


class _CountingEncoder(keras.Model):
    """Wraps an encoder and counts how many images it was asked to encode."""

    def __init__(self, inner):
        super().__init__(inputs=inner.inputs, outputs=inner.outputs, name=inner.name)
        self.images_seen = 0

    def __call__(self, batch, **kwargs):
        self.images_seen += int(batch.shape[0])
        return super().__call__(batch, **kwargs)


def test_cached_features_computes_once_and_recomputes_changed_images(tmp_path):
    paths = []
    for index in range(3):
        path = tmp_path / f"img{index}.jpg"
        path.write_bytes(_jpeg_bytes(index, size=40))
        paths.append(path)
    encoder = _CountingEncoder(encoders.build_encoder("small_cnn", 32, feature_dim=8))
    cache = tmp_path / "cache"
    first = feature_cache.cached_features(encoder, "small_cnn-32-abc", paths, cache, batch_size=2)
    assert first.shape == (3, 8) and encoder.images_seen == 3
    second = feature_cache.cached_features(encoder, "small_cnn-32-abc", paths, cache, batch_size=2)
    np.testing.assert_array_equal(first, second)
    assert encoder.images_seen == 3  # nothing recomputed
    expected = encoder(images.decode_images(tf.constant([paths[1].read_bytes()]), 32)).numpy()[0]
    np.testing.assert_allclose(first[1], expected, rtol=1e-5, atol=1e-6)
    paths[2].write_bytes(_jpeg_bytes(10, size=40))  # a changed file (new size/mtime) is recomputed
    feature_cache.cached_features(encoder, "small_cnn-32-abc", paths, cache)
    assert encoder.images_seen == 5
    feature_cache.cached_features(encoder, "another-key", paths[:1], cache)  # another encoder key: its own cache
    assert encoder.images_seen == 6
    damaged = sorted((cache / "another-key").rglob("*.npy"))[0]
    damaged.write_bytes(damaged.read_bytes()[:20])  # e.g. a crash right after the rename
    again = feature_cache.cached_features(encoder, "another-key", paths[:1], cache)
    assert encoder.images_seen == 7 and again.shape == (1, 8)
    with pytest.raises(DataError, match="nowhere.jpg"):
        feature_cache.cached_features(encoder, "k", [tmp_path / "nowhere.jpg"], cache)


def test_cached_features_needs_paths(tmp_path):
    with pytest.raises(ValueError, match="no image paths"):
        feature_cache.cached_features(encoders.build_encoder("small_cnn", 16, feature_dim=4), "k", [], tmp_path)


def test_feature_table_is_memory_mapped_written_once_and_holds_the_cached_features(tmp_path):
    paths = []
    for index in range(3):
        path = tmp_path / f"img{index}.jpg"
        path.write_bytes(_jpeg_bytes(index, size=40))
        paths.append(path)
    encoder = _CountingEncoder(encoders.build_encoder("small_cnn", 32, feature_dim=8))
    cache, key = tmp_path / "cache", "small_cnn-32-abc"
    table = feature_cache.cached_feature_table(encoder, key, paths, cache, batch_size=2)
    assert isinstance(table, np.memmap) and not table.flags.writeable
    assert table.shape == (3, 8) and table.dtype == np.float32 and encoder.images_seen == 3
    np.testing.assert_array_equal(table, feature_cache.cached_features(encoder, key, paths, cache))  # the same entries
    expected = np.array(table)
    (file,) = (cache / key / feature_cache.TABLE_FOLDER).glob("*.npy")
    written = file.stat().st_mtime_ns
    np.testing.assert_array_equal(feature_cache.cached_feature_table(encoder, key, paths, cache), expected)
    assert file.stat().st_mtime_ns == written and encoder.images_seen == 3  # opened, not rewritten
    reordered = feature_cache.cached_feature_table(encoder, key, paths[::-1], cache)  # another list: another table
    np.testing.assert_array_equal(reordered, expected[::-1])
    assert encoder.images_seen == 3 and len(list((cache / key / feature_cache.TABLE_FOLDER).glob("*.npy"))) == 2
    del table, reordered  # (a mapped file must not be truncated under its map: the suite only ever renames)
    file.write_bytes(file.read_bytes()[:100])  # damaged (by hand: the suite's writes are atomic)
    np.testing.assert_array_equal(feature_cache.cached_feature_table(encoder, key, paths, cache), expected)
    assert encoder.images_seen == 3  # rebuilt from the per-image entries
    paths[2].write_bytes(_jpeg_bytes(10, size=40))  # a changed image: a new table, only its row recomputed
    changed = feature_cache.cached_feature_table(encoder, key, paths, cache)
    assert encoder.images_seen == 4 and not np.array_equal(changed[2], expected[2])
    np.testing.assert_array_equal(changed[:2], expected[:2])
    tables = cache / key / feature_cache.TABLE_FOLDER
    assert not [f for f in tables.iterdir() if f.name.startswith(".")]  # no leftovers
    with pytest.raises(ValueError, match="cached_feature_table got no image paths"):
        feature_cache.cached_feature_table(encoder, key, [], cache)


def test_pixel_table_holds_load_pixels_rows(tmp_path):
    paths = []
    for index in range(3):
        paths.append(tmp_path / f"img{index}.png" if index == 1 else tmp_path / f"img{index}.jpg")
        paths[-1].write_bytes(_png_bytes(24) if index == 1 else _jpeg_bytes(index, size=40))
    table = feature_cache.cached_pixel_table(paths, 16, tmp_path / "cache", batch_size=2)
    assert isinstance(table, np.memmap) and table.shape == (3, 16, 16, 3) and table.dtype == np.uint8
    np.testing.assert_array_equal(table, images.load_pixels(paths, 16))
    assert feature_cache.cached_pixel_table(paths, 16, tmp_path / "cache").filename == table.filename


def test_gather_rows_reads_arrays_in_the_graph_without_making_them_constants(tmp_path):
    table = np.arange(1000 * 300, dtype=np.float32).reshape(1000, 300)  # 1.2 MB
    np.save(tmp_path / "table.npy", table)
    mapped = np.load(tmp_path / "table.npy", mmap_mode="r")
    words = np.array([f"word {i}".encode() for i in range(1000)], object)

    def gather(positions):
        return tuple(feature_cache.gather_rows([mapped, words], positions))

    dataset = tf.data.Dataset.range(1000).shuffle(1000, seed=1).batch(7).map(gather)
    assert dataset.element_spec[0].shape.as_list() == [None, 300] and dataset.element_spec[1].dtype == tf.string
    order = np.array(list(tf.data.Dataset.range(1000).shuffle(1000, seed=1).as_numpy_iterator()))
    rows, strings = next(iter(dataset))
    np.testing.assert_array_equal(rows.numpy(), table[order[:7]])
    assert list(strings.numpy()) == list(words[order[:7]])
    assert len(dataset._as_serialized_graph().numpy()) < 20_000  # the table is not in the graph
    constant = tf.data.Dataset.range(1000).batch(7).map(lambda p: tf.gather(tf.constant(table), p))
    assert len(constant._as_serialized_graph().numpy()) > table.nbytes  # what the test guards against


def test_keras_application_encoder_loads_a_local_notop_weights_file(tmp_path, caplog):
    # Stands in for an ImageNet "*_notop" file: the backbone alone, as keras.applications builds it.
    backbone = keras.applications.MobileNetV3Small(
        include_top=False, weights=None, input_shape=(32, 32, 3), pooling="avg", include_preprocessing=True
    )
    path = tmp_path / "mobilenet_v3_small_notop.weights.h5"
    backbone.save_weights(path)
    batch = images.decode_images(tf.constant([_jpeg_bytes(0), _jpeg_bytes(1)]), 32)
    expected = backbone(batch).numpy()
    keras.utils.set_random_seed(7)
    with caplog.at_level("WARNING"):
        encoder = encoders.build_encoder("mobilenet_v3_small", 32, weights_path=str(path))
    assert "RANDOM" not in caplog.text
    np.testing.assert_allclose(encoder(batch).numpy(), expected, rtol=1e-4, atol=1e-5)
