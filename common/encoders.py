"""CNN image encoders, keras-only (they build and run without TensorFlow: issue 13's JAX backend).

``build_encoder(name, size, weights_path)`` returns a functional keras.Model from float images in [0, 255] to
pooled features [B, D], preprocessing included. ``weights_path="imagenet"`` lets keras.applications fetch the
ImageNet weights (cached in ``$KERAS_HOME/models``); ``check_weights_request`` allows that only when the user
passed --download. Running them over image files, and caching what they compute, is common/feature_cache.py's.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import keras
import numpy as np

from common.errors import DataError

logger = logging.getLogger(__name__)

ENCODERS: tuple[str, ...] = ("small_cnn", "inception_v3", "resnet50", "mobilenet_v3_small")
# The smallest input side each keras.applications network accepts with include_top=False.
MINIMUM_IMAGE_SIZE: dict[str, int] = {"small_cnn": 16, "inception_v3": 75, "resnet50": 32, "mobilenet_v3_small": 32}
IMAGENET = "imagenet"  # encoder_weights value: keras.applications' own ImageNet weights (needs --download)


# --- encoders ----------------------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="rnn_suite")
class ImagePreprocessing(keras.layers.Layer):
    """Maps pixels in [0, 255] to what a keras.applications network expects.

    mode "tf": [-1, 1] (Inception); "caffe": RGB→BGR minus the ImageNet channel means (ResNet50);
    "unit": [0, 1]; "none": unchanged (MobileNetV3 rescales inside itself).
    """

    MODES = ("tf", "caffe", "unit", "none")

    def __init__(self, mode: str = "tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"ImagePreprocessing mode={mode!r}; expected one of {list(self.MODES)}")
        self.mode = mode

    def call(self, images):
        images = keras.ops.cast(images, self.compute_dtype)
        if self.mode == "tf":
            return images / 127.5 - 1.0
        if self.mode == "unit":
            return images / 255.0
        if self.mode == "caffe":
            bgr = keras.ops.flip(images, axis=-1)
            return bgr - keras.ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=self.compute_dtype)
        return images

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def _small_cnn(image_size: int, feature_dim: int) -> keras.Model:
    """Four conv blocks → a 4×4 grid → flatten → Dense(feature_dim).

    The grid is flattened rather than globally averaged so that the features keep where things are
    (captions say "left of" / "above"). Even with random weights the features carry colour, shape and
    position; the captioning task pretrains it on word presence before caching (tasks/captioning/pipeline.py,
    through pretrain_encoder).
    """
    images = keras.Input(shape=(image_size, image_size, 3), name="images")
    x = ImagePreprocessing(mode="unit", name="preprocess")(images)
    for index, filters in enumerate((32, 64, 96, 128)):
        x = keras.layers.Conv2D(filters=filters, kernel_size=3, padding="same", activation="relu",
                                name=f"conv{index + 1}")(x)
        if x.shape[1] > 4:
            x = keras.layers.MaxPooling2D(pool_size=2, name=f"pool{index + 1}")(x)
    x = keras.layers.AdaptiveAveragePooling2D(output_size=(4, 4), name="grid")(x)  # [B, 4, 4, 128]
    x = keras.layers.Flatten(name="flatten")(x)  # [B, 2048]
    features = keras.layers.Dense(units=feature_dim, activation="relu", name="features")(x)
    return keras.Model(images, features, name="small_cnn")


def check_weights_request(encoder: str, weights: str | None, download: bool) -> None:
    """``encoder_weights=imagenet`` names keras.applications' ImageNet weights: fetched (once, then read from
    Keras' cache) only when the user passed --download, and only for networks that have them."""
    if weights != IMAGENET:
        return
    if encoder not in ENCODERS or encoder == "small_cnn":
        raise DataError(f"encoder_weights={IMAGENET!r}: encoder {encoder!r} has no ImageNet weights; expected one of "
                        f"{[e for e in ENCODERS if e != 'small_cnn']} or a local weights file")
    if not download:
        raise DataError(f"encoder_weights={IMAGENET!r} fetches the {encoder} ImageNet weights through "
                        "keras.applications: pass --download (the file is then cached in ~/.keras/models and not "
                        "fetched again), or give a local *_notop.h5 file: --set encoder_weights=PATH")


def build_encoder(name: str, image_size: int, weights_path: str | None = None, feature_dim: int = 256) -> keras.Model:
    """Functional model: float images [B, S, S, 3] in [0, 255] → pooled features [B, D].

    name: one of ENCODERS. keras.applications networks are built with weights=None (nothing is
    downloaded) and loaded from ``weights_path`` (an ImageNet ``*_notop.h5`` file or a
    ``.weights.h5`` of this model) when given; ``weights_path="imagenet"`` builds them with
    keras.applications' ImageNet weights (fetched into Keras' cache: callers allow it only on --download,
    see ``check_weights_request``); otherwise their weights are random, which is said
    loudly in the log because the features are then nearly useless for real photos.
    feature_dim: output size of ``small_cnn`` only (the others have fixed widths: 2048/2048/576).
    """
    if name not in ENCODERS:
        raise ValueError(f"Unknown encoder {name!r}; expected one of {list(ENCODERS)}")
    if image_size < MINIMUM_IMAGE_SIZE[name]:
        raise ValueError(f"encoder {name!r} needs image_size >= {MINIMUM_IMAGE_SIZE[name]}, got {image_size}")
    if name == "small_cnn":
        encoder = _small_cnn(image_size, feature_dim)
    else:
        images = keras.Input(shape=(image_size, image_size, 3), name="images")
        imagenet = weights_path == IMAGENET
        options = {"include_top": False, "weights": IMAGENET if imagenet else None,
                   "input_shape": (image_size, image_size, 3), "pooling": "avg"}
        if name == "inception_v3":
            backbone, mode = keras.applications.InceptionV3(**options), "tf"
        elif name == "resnet50":
            backbone, mode = keras.applications.ResNet50(**options), "caffe"
        else:
            backbone, mode = keras.applications.MobileNetV3Small(**options, include_preprocessing=True), "none"
        x = ImagePreprocessing(mode=mode, name="preprocess")(images)
        features = backbone(x)
        encoder = keras.Model(images, features, name=f"{name}_encoder")
        if imagenet:
            logger.info("Encoder %s: keras.applications ImageNet weights (Keras cache: ~/.keras/models)", name)
        elif weights_path:
            _load_backbone_weights(backbone, encoder, weights_path)
        else:
            logger.warning(
                "!!! Encoder %s has RANDOM weights: no --set encoder_weights=PATH was given. Features of real "
                "photos will be nearly meaningless; give the ImageNet notop .h5 file for real results. !!!",
                name,
            )
        return encoder
    if weights_path == IMAGENET:
        raise DataError(f"encoder_weights={IMAGENET!r}: small_cnn has no ImageNet weights")
    if weights_path:
        _load_backbone_weights(encoder, encoder, weights_path)
    return encoder


def _load_backbone_weights(backbone: keras.Model, encoder: keras.Model, weights_path: str) -> None:
    path = Path(weights_path)
    if not path.is_file():
        raise DataError(f"Encoder weights file {str(path)!r} does not exist")
    errors = []
    for target in (backbone, encoder):  # an ImageNet notop file fits the backbone; our own save, the encoder
        try:
            target.load_weights(str(path))
            logger.info("Loaded encoder weights from %s", path)
            return
        except Exception as error:  # noqa: BLE001  (Keras raises several types for a mismatch)
            errors.append(f"{target.name}: {error}")
    raise DataError(f"Encoder weights {str(path)!r} do not fit the {encoder.name} architecture: {' | '.join(errors)}")


def weights_fingerprint(model: keras.Model) -> str:
    """Short hash of every weight value: part of the cache key, so retrained weights never reuse stale features."""
    digest = hashlib.sha1()
    for weight in model.weights:
        digest.update(weight.path.encode())
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()[:16]
