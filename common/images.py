"""Image files to pixels: reading and checking files, in-graph JPEG/PNG decoding.

The two sides of reading an image, each with its failure mode made explicit:

* ``read_image_bytes(path)`` reads a file on the Python side and proves it decodes (PIL ``verify``
  and then a full ``load``, which is what catches truncation); problems raise ``data.DataError``
  naming the file.
* ``decode_images(bytes, size)`` is the in-graph decoder used inside pipelines and SavedModels;
  ``decode_images_safe`` is its variant for serving: a corrupt element gives a zero image and a
  per-element message instead of failing the whole batch.

``load_pixels`` / ``read_pixels`` chain the two for a list of files (uint8 pixels in memory). What is built
on top lives elsewhere: the CNN encoders in common/encoders.py, the on-disk feature cache and the
memory-mapped feature / pixel tables in common/feature_cache.py, fitting an encoder on the training
images in common/encoder_pretraining.py.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import tensorflow as tf

from common import progress
from common.errors import DataError

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- Python side: files ------------------------------------------------------------------------------


def read_image_bytes(path: str | os.PathLike) -> bytes:
    """Returns the raw bytes of a JPEG or PNG file after proving that it decodes completely.

    Raises data.DataError naming ``path`` when the file is missing, unreadable, not a JPEG/PNG, or
    corrupt/truncated (PIL's ``verify`` checks the structure, ``load`` decodes every pixel).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError(f"Image file {str(path)!r} does not exist (expected a JPEG or PNG file)")
    try:
        content = path.read_bytes()
    except OSError as error:
        raise DataError(f"Image file {str(path)!r} cannot be read: {error}") from None
    if not (content.startswith(_JPEG_MAGIC) or content.startswith(_PNG_MAGIC)):
        raise DataError(
            f"Image file {str(path)!r} is not a JPEG or PNG (first bytes {content[:8]!r}, "
            f"expected {_JPEG_MAGIC!r} or {_PNG_MAGIC!r}); size {len(content)} bytes"
        )
    try:
        with Image.open(io.BytesIO(content)) as image:
            image.verify()
        with Image.open(io.BytesIO(content)) as image:
            # PIL decodes truncated JPEGs with grey filling only when LOAD_TRUNCATED_IMAGES is set;
            # by default load() raises, which is what we want here.
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"Image file {str(path)!r} is corrupt or truncated ({len(content)} bytes): {error}") from None
    return content


# --- TensorFlow side: decoding -----------------------------------------------------------------------


def _decode_one(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    # decode_image handles JPEG, PNG (and GIF/BMP); expand_animations=False makes the result 3-D.
    image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    # Plain resize (not aspect-preserving crop): captions talk about the whole image.
    resized = tf.image.resize(tf.cast(image, tf.float32), [image_size, image_size], method="bilinear", antialias=True)
    return tf.clip_by_value(resized, 0.0, 255.0)


def decode_images(jpeg_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """[B] string of JPEG/PNG bytes → [B, image_size, image_size, 3] float32 in [0, 255].

    In-graph (usable in tf.data maps and SavedModel endpoints). A corrupt element fails the op;
    use ``decode_images_safe`` where one bad image must not fail the batch.
    """
    jpeg_bytes = tf.convert_to_tensor(jpeg_bytes, dtype=tf.string)
    return tf.map_fn(
        lambda item: _decode_one(item, image_size),
        jpeg_bytes,
        fn_output_signature=tf.TensorSpec([image_size, image_size, 3], tf.float32),
    )


def image_problems(jpeg_bytes: tf.Tensor) -> tf.Tensor:
    """[B] string → [B] string: "" for bytes that look like a complete JPEG/PNG, else the reason.

    Structural checks only (magic number; JPEG end-of-image marker / PNG IEND chunk, which a
    truncated file lacks). Cheap, and the reason is what a user needs to read.
    """
    jpeg_bytes = tf.convert_to_tensor(jpeg_bytes, dtype=tf.string)
    length = tf.strings.length(jpeg_bytes)
    head = tf.strings.substr(jpeg_bytes, 0, 8)
    is_jpeg = tf.equal(tf.strings.substr(head, 0, 3), _JPEG_MAGIC)
    is_png = tf.equal(head, _PNG_MAGIC)
    # Per-element positions need per-element lengths of the same shape (Substr's rule).
    jpeg_tail = tf.strings.substr(jpeg_bytes, tf.maximum(length - 2, 0), tf.fill(tf.shape(length), 2))
    png_tail = tf.strings.substr(jpeg_bytes, tf.maximum(length - 8, 0), tf.fill(tf.shape(length), 4))
    jpeg_complete = tf.equal(jpeg_tail, b"\xff\xd9")
    png_complete = tf.equal(png_tail, b"IEND")
    empty = tf.fill(tf.shape(jpeg_bytes), "")
    reason = tf.where(
        length == 0,
        "empty input: expected the bytes of a JPEG or PNG file",
        tf.where(
            ~(is_jpeg | is_png),
            "not a JPEG or PNG (the first bytes are not a JPEG/PNG signature)",
            tf.where(
                is_jpeg & ~jpeg_complete,
                "truncated JPEG: no end-of-image marker",
                tf.where(is_png & ~png_complete, "truncated PNG: no IEND chunk", empty),
            ),
        ),
    )
    return reason


def decode_images_safe(jpeg_bytes: tf.Tensor, image_size: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Like ``decode_images`` but never fails: returns (images [B,S,S,3] float32, problems [B] string).

    ``problems[i]`` is "" when image i decoded, else why not; its image is all zeros. Elements that
    pass the structural checks but still fail inside the decoder are caught by a tf.data
    ``ignore_errors`` pass (the only error-catching construct that works inside a graph).
    """
    jpeg_bytes = tf.convert_to_tensor(jpeg_bytes, dtype=tf.string)
    problems = image_problems(jpeg_bytes)
    count = tf.shape(jpeg_bytes)[0]
    indices = tf.range(count)
    candidates = tf.boolean_mask(indices, tf.equal(problems, ""))
    dataset = tf.data.Dataset.from_tensor_slices((candidates, tf.gather(jpeg_bytes, candidates)))
    dataset = dataset.map(lambda index, item: (index, _decode_one(item, image_size))).ignore_errors()

    def collect(state, element):
        decoded_indices, decoded_images = state
        index, image = element
        return (
            tf.concat([decoded_indices, index[None]], axis=0),
            tf.concat([decoded_images, image[None]], axis=0),
        )

    initial = (tf.zeros([0], tf.int32), tf.zeros([0, image_size, image_size, 3], tf.float32))
    decoded_indices, decoded_images = dataset.reduce(initial, collect)
    images = tf.scatter_nd(decoded_indices[:, None], decoded_images, [count, image_size, image_size, 3])
    decoded = tf.scatter_nd(decoded_indices[:, None], tf.ones_like(decoded_indices, tf.bool), [count])
    problems = tf.where(
        tf.equal(problems, "") & ~decoded, "corrupt image data: the decoder rejected it", problems
    )
    return images, problems


# --- Files to pixels ---------------------------------------------------------------------------------


def load_pixels(paths: Sequence[str | os.PathLike], image_size: int, batch_size: int = 128) -> np.ndarray:
    """[N] image files → uint8 [N, S, S, 3], through the checked reader and the in-graph decoder."""
    chunks = []
    starts = range(0, len(paths), batch_size)
    for start in progress.track(starts, len(starts), "reading and decoding images", unit="batches"):
        chunks.append(read_pixels(paths[start : start + batch_size], image_size))
    if not chunks:
        return np.zeros((0, image_size, image_size, 3), np.uint8)
    return np.concatenate(chunks, axis=0)


def read_pixels(paths: Sequence[str | os.PathLike], image_size: int) -> np.ndarray:
    """One batch of ``load_pixels``: [n] image files → uint8 [n, S, S, 3] in one decoder call."""
    content = [read_image_bytes(p) for p in paths]
    decoded = decode_images(tf.constant(content), image_size)
    return np.asarray(tf.cast(tf.round(decoded), tf.uint8))
