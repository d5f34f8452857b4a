"""Images: reading and checking files, in-graph JPEG/PNG decoding, CNN encoders, on-disk feature cache.

Three layers of image handling, each with its own failure mode made explicit:

* ``read_image_bytes(path)`` reads a file on the Python side and proves it decodes (PIL ``verify``
  and then a full ``load``, which is what catches truncation); problems raise ``data.DataError``
  naming the file.
* ``decode_images(bytes, size)`` is the in-graph decoder used inside pipelines and SavedModels;
  ``decode_images_safe`` is its variant for serving: a corrupt element gives a zero image and a
  per-element message instead of failing the whole batch.
* ``build_encoder(name, size, weights_path)`` (common/encoders.py, keras-only, re-exported here) returns a
  functional keras.Model from float images in [0, 255] to pooled features [B, D], preprocessing included;
  ``cached_features`` runs it once per (image file, encoder) and keeps the result on disk.

Dataset-sized tables (features of every image, or pixels) are one ``.npy`` file per (encoder key,
image list), written once atomically and memory-mapped (``cached_feature_table``, ``cached_pixel_table``);
``gather_rows`` reads a batch's rows inside tf.data without making a table a graph constant.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from common import progress
from common.encoders import (  # noqa: F401  (keras-only; re-exported: part of this module's API)
    ENCODERS,
    IMAGENET,
    MINIMUM_IMAGE_SIZE,
    ImagePreprocessing,
    build_encoder,
    check_weights_request,
    weights_fingerprint,
)
from common.errors import DataError

logger = logging.getLogger(__name__)

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


# --- feature cache -----------------------------------------------------------------------------------


def _cache_file(cache_dir: Path, encoder_key: str, path: Path) -> Path:
    stat = path.stat()
    # Keyed by the absolute path, its size and modification time (an edited image is recomputed) and
    # the encoder key (architecture + image size + weights).
    identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{encoder_key}"
    name = hashlib.sha1(identity.encode()).hexdigest()
    return cache_dir / encoder_key / name[:2] / f"{name}.npy"


def _write_cache_entry(file: Path, row: np.ndarray) -> None:
    """Atomic (write a temporary sibling, then rename) but not fsynced: thousands of fsyncs would cost
    more than the CNN, and an entry damaged by a crash is detected on reading and recomputed."""
    file.parent.mkdir(parents=True, exist_ok=True)
    temporary = file.with_name(f".{file.name}.{os.getpid()}.tmp.npy")
    try:
        np.save(temporary, row)
        os.replace(temporary, file)
    finally:
        if temporary.exists():
            temporary.unlink()


def _read_cache_entry(file: Path) -> np.ndarray | None:
    try:
        return np.load(file)
    except (OSError, ValueError, EOFError):
        return None  # missing or damaged: recompute


def _safe_key(encoder_key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in encoder_key)


def _checked_paths(image_paths: Sequence[str | os.PathLike], caller: str) -> list[Path]:
    if not image_paths:
        raise ValueError(f"{caller} got no image paths")
    paths = [Path(p) for p in image_paths]
    for path in paths:
        if not path.is_file():
            raise DataError(f"Image file {str(path)!r} does not exist (expected a JPEG or PNG file)")
    return paths


def _compute_entries(encoder: keras.Model, paths: Sequence[Path], files: Sequence[Path], missing: Sequence[int],
                     batch_size: int, cache_dir: Path, store: Callable[[int, np.ndarray], None]) -> None:
    """Runs the CNN on the ``missing`` images, ``batch_size`` at a time; writes their entries and hands each
    row to ``store(index, row)``."""
    image_size = int(encoder.inputs[0].shape[1])
    if missing:
        logger.info("Computing %s features for %d of %d images (cache %s)", encoder.name, len(missing), len(paths),
                    cache_dir)
    starts = range(0, len(missing), batch_size)
    for start in progress.track(starts, len(starts), f"{encoder.name} features", unit="batches") if missing else ():
        chunk = missing[start : start + batch_size]
        content = [read_image_bytes(paths[index]) for index in chunk]
        images = decode_images(tf.constant(content), image_size)
        features = np.asarray(encoder(images, training=False), dtype=np.float32)
        for index, row in zip(chunk, features):
            _write_cache_entry(files[index], row)
            store(index, row)


def cached_features(
    encoder: keras.Model,
    encoder_key: str,
    image_paths: Sequence[str | os.PathLike],
    cache_dir: str | os.PathLike,
    batch_size: int = 64,
) -> np.ndarray:
    """[N, D] float32 features of ``image_paths``, computed once per (image, encoder) and cached on disk.

    One atomically renamed ``.npy`` per image under ``cache_dir/encoder_key/``; images already cached
    are only read back, so later epochs and later runs never run the CNN again. ``encoder_key`` must
    change whenever the encoder's architecture, input size or weights change (see ``weights_fingerprint``).
    The result is in memory; ``cached_feature_table`` gives the same rows memory-mapped from one file.
    """
    cache_dir = Path(cache_dir)
    paths = _checked_paths(image_paths, "cached_features")
    files = [_cache_file(cache_dir, _safe_key(encoder_key), path) for path in paths]
    rows: list[np.ndarray | None] = [_read_cache_entry(file) for file in files]
    missing = [index for index, row in enumerate(rows) if row is None]
    _compute_entries(encoder, paths, files, missing, batch_size, cache_dir, rows.__setitem__)
    return np.stack(rows).astype(np.float32)


# --- consolidated, memory-mapped tables ------------------------------------------------------------------
# A dataset-sized table (COCO train: 118,287 images x 2,048 floats = 0.97 GB) must neither become a tf.data
# graph constant (the 2 GB GraphDef limit; a second copy in memory) nor be read from 100,000 small files per
# run. So the rows are written once into one .npy per (encoder key, image list) and opened with
# np.load(mmap_mode="r"): pages are read when a batch touches them; ``gather_rows`` feeds tf.data from it.

TABLE_FOLDER = "tables"  # under cache_dir/<encoder key>/


def image_list_digest(paths: Sequence[Path], extra: str = "") -> str:
    """Hash of an ordered image list: each file's absolute path, size and modification time (as the
    per-image entries are keyed), so a changed, added, removed or reordered image gives another table."""
    digest = hashlib.sha1(extra.encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"\n{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def open_table(file: str | os.PathLike, shape: tuple[int, ...] | None = None,
               dtype: np.dtype | type | None = None) -> np.ndarray | None:
    """The ``.npy`` table at ``file`` memory-mapped read-only, or None when it is missing, unreadable or not of
    the expected ``shape`` / ``dtype`` (then the caller rebuilds it)."""
    try:
        table = np.load(file, mmap_mode="r")
    except (OSError, ValueError, EOFError):
        return None
    if (shape is not None and table.shape != tuple(shape)) or (dtype is not None and table.dtype != np.dtype(dtype)):
        logger.warning("Table %s has shape %s %s, expected %s %s: rebuilding it", file, table.shape, table.dtype,
                       shape, np.dtype(dtype) if dtype is not None else "any dtype")
        return None
    return table


def write_table(file: str | os.PathLike, shape: tuple[int, ...], dtype: np.dtype | type,
                fill: Callable[[np.ndarray], None]) -> np.ndarray:
    """Creates the ``.npy`` table ``file`` atomically and returns it memory-mapped read-only.

    ``fill(out)`` writes every row of ``out`` (a writable memory map of ``shape`` and ``dtype``, backed by a
    temporary sibling file); the file is then flushed, fsynced and renamed over ``file`` (common.io.atomic_path),
    so a reader sees a complete table or none, and a crash leaves no half-written table behind.
    """
    from common.io import atomic_path

    with atomic_path(file, suffix=".npy") as temporary:
        out = np.lib.format.open_memmap(temporary, mode="w+", dtype=dtype, shape=tuple(shape))
        fill(out)
        out.flush()
        del out  # unmapped before the rename
    table = open_table(file, shape, dtype)
    if table is None:
        raise DataError(f"Table {str(file)!r} was written but cannot be read back as {dtype} {shape}")
    return table


def cached_feature_table(
    encoder: keras.Model,
    encoder_key: str,
    image_paths: Sequence[str | os.PathLike],
    cache_dir: str | os.PathLike,
    batch_size: int = 64,
) -> np.ndarray:
    """[N, D] float32 features of ``image_paths`` (the rows of ``cached_features``), memory-mapped read-only.

    The table is ``cache_dir/encoder_key/tables/<image list hash>.npy``, written once (atomically) and then
    only opened. It is filled from the per-image entries (computing the missing ones with the CNN in batches
    of ``batch_size``, exactly as ``cached_features``) straight into the file's memory map: building it
    never holds the whole table in memory.
    """
    cache_dir = Path(cache_dir)
    paths = _checked_paths(image_paths, "cached_feature_table")
    key = _safe_key(encoder_key)
    width = int(encoder.outputs[0].shape[-1])
    file = cache_dir / key / TABLE_FOLDER / f"{image_list_digest(paths, key)}-{len(paths)}x{width}.npy"
    table = open_table(file, (len(paths), width), np.float32)
    if table is not None:
        return table
    files = [_cache_file(cache_dir, key, path) for path in paths]
    # A first pass finds the missing entries, so that the CNN sees the same batches as in cached_features.
    missing = [index for index, entry in enumerate(files) if _entry_width(entry) != width]

    def fill(out: np.ndarray) -> None:
        _compute_entries(encoder, paths, files, missing, batch_size, cache_dir, out.__setitem__)
        computed = set(missing)
        for index, entry in enumerate(files):
            if index not in computed:
                row = _read_cache_entry(entry)  # checked by the first pass, unless removed since
                if row is None:
                    raise DataError(f"Feature cache entry {str(entry)!r} of {str(paths[index])!r} disappeared while "
                                    "the feature table was written; run again")
                out[index] = row

    logger.info("Writing the %d x %d feature table %s", len(paths), width, file)
    return write_table(file, (len(paths), width), np.float32, fill)


def _entry_width(file: Path) -> int | None:
    row = _read_cache_entry(file)
    return None if row is None or row.ndim != 1 else int(row.shape[0])


def cached_pixel_table(
    image_paths: Sequence[str | os.PathLike],
    image_size: int,
    cache_dir: str | os.PathLike,
    batch_size: int = 128,
) -> np.ndarray:
    """uint8 [N, S, S, 3] pixels of ``image_paths`` (the rows of ``load_pixels``), memory-mapped read-only from
    ``cache_dir/pixels-S/tables/<image list hash>.npy``, written once (atomically) and then only opened."""
    paths = _checked_paths(image_paths, "cached_pixel_table")
    key = f"pixels-{int(image_size)}"
    shape = (len(paths), image_size, image_size, 3)
    file = Path(cache_dir) / key / TABLE_FOLDER / f"{image_list_digest(paths, key)}-{len(paths)}.npy"
    table = open_table(file, shape, np.uint8)
    if table is not None:
        return table

    def fill(out: np.ndarray) -> None:
        starts = range(0, len(paths), batch_size)
        for start in progress.track(starts, len(starts), "reading and decoding images", unit="batches"):
            chunk = paths[start : start + batch_size]
            out[start : start + len(chunk)] = _pixels(chunk, image_size)

    logger.info("Writing the %d-image pixel table %s", len(paths), file)
    return write_table(file, shape, np.uint8, fill)


def gather_rows(arrays: Sequence[np.ndarray], positions: tf.Tensor) -> list[tf.Tensor]:
    """In-graph ``[array[positions] for array in arrays]`` that leaves the arrays in NumPy (memory-mapped or not).

    The arrays are read by one ``tf.numpy_function`` per call (one Python call per batch: use it after
    ``batch``), so none of them becomes a constant of the tf.data graph, whatever its size. Each result
    has the array's dtype (object arrays of bytes → tf.string) and the static shape [len(positions), ...].
    The dataset holds Python references to the arrays: it cannot be serialised to another process
    (tf.data service), which the suite does not do.
    """
    arrays = list(arrays)
    dtypes = [tf.string if array.dtype == object else tf.as_dtype(array.dtype) for array in arrays]

    def take(indices: np.ndarray) -> list[np.ndarray]:
        # np.take on a memory map copies the touched rows into an ordinary array (the batch).
        return [np.take(array, indices, axis=0) for array in arrays]

    positions = tf.convert_to_tensor(positions)
    results = tf.numpy_function(take, [positions], dtypes, stateful=False, name="gather_rows")
    for result, array in zip(results, arrays):
        result.set_shape(positions.shape.concatenate(array.shape[1:]))
    return list(results)


# --- measuring the table path at full size (the tasks' bench) ---------------------------------------------


def write_stand_in_table(file: str | os.PathLike, rows: int, width: int, seed: int,
                         chunk_rows: int = 8192) -> np.ndarray:
    """A seeded float32 [rows, width] table of N(0, 1) values (stand-in features), memory-mapped read-only.

    Reused when ``file`` already holds that shape. Written with plain buffered writes in ``chunk_rows``
    pieces (not through a writable memory map, whose dirty pages would count in this process's peak RSS),
    atomically; the memory it takes is one chunk.
    """
    from common.io import atomic_path

    table = open_table(file, (rows, width), np.float32)
    if table is not None:
        return table
    generator = np.random.default_rng(seed)
    with atomic_path(file, suffix=".npy") as temporary, open(temporary, "wb") as handle:
        np.lib.format.write_array_header_1_0(
            handle, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                     "shape": (rows, width)})  # fmt: skip
        for start in range(0, rows, chunk_rows):
            handle.write(generator.standard_normal((min(chunk_rows, rows - start), width), np.float32).tobytes())
    table = open_table(file, (rows, width), np.float32)
    if table is None:
        raise DataError(f"Stand-in table {str(file)!r} was written but cannot be read back as float32 {rows}x{width}")
    return table


def _memory_megabytes() -> dict[str, float]:
    """Peak RSS of this process (getrusage) and, on Linux, the resident anonymous and file-backed parts now
    (memory-mapped table pages are file-backed: page cache the kernel can drop, not a copy of the table)."""
    import resource

    figures = {"peak_rss_megabytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}  # KiB on Linux
    try:
        status = Path("/proc/self/status").read_text().splitlines()
    except OSError:
        return figures
    for line in status:
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile"):
            figures[f"{name.lower().replace('rss', 'rss_')}_megabytes"] = int(value.split()[0]) / 1024
    return figures


def measure_pipeline(dataset: tf.data.Dataset, batches: int) -> dict[str, Any]:
    """Runs ``batches`` batches of ``dataset`` (repeated if shorter) and returns what they cost: seconds to the
    first batch (shuffle-buffer fill and tracing), examples/s over the following ``batches`` batches, memory
    before and after (``_memory_megabytes``) and the size of the dataset's serialised graph, which a table
    held as a graph constant would make as large as the table."""
    before = _memory_megabytes()
    iterator = iter(dataset.repeat())
    start = time.perf_counter()
    next(iterator)
    first = time.perf_counter() - start
    examples = 0
    start = time.perf_counter()
    for _ in range(batches):
        inputs, _targets = next(iterator)
        examples += int(tf.shape(tf.nest.flatten(inputs)[0])[0])
    seconds = time.perf_counter() - start
    after = _memory_megabytes()
    # Last: serialising a graph that held a table as a constant would copy the table (and add to the peak).
    graph_bytes = len(dataset._as_serialized_graph().numpy())  # noqa: SLF001 (tf.data's only graph accessor)
    return {"dataset_graph_bytes": graph_bytes, "first_batch_seconds": first, "timed_batches": batches,
            "timed_examples": examples, "timed_seconds": seconds, "examples_per_second": examples / seconds,
            "memory_before_megabytes": before, "memory_after_megabytes": after}


# --- Fitting an encoder on the training images ---------------------------------------------------------


def load_pixels(paths: Sequence[str | os.PathLike], image_size: int, batch_size: int = 128) -> np.ndarray:
    """[N] image files → uint8 [N, S, S, 3], through the checked reader and the in-graph decoder."""
    chunks = []
    starts = range(0, len(paths), batch_size)
    for start in progress.track(starts, len(starts), "reading and decoding images", unit="batches"):
        chunks.append(_pixels(paths[start : start + batch_size], image_size))
    if not chunks:
        return np.zeros((0, image_size, image_size, 3), np.uint8)
    return np.concatenate(chunks, axis=0)


def _pixels(paths: Sequence[str | os.PathLike], image_size: int) -> np.ndarray:
    content = [read_image_bytes(p) for p in paths]
    decoded = decode_images(tf.constant(content), image_size)
    return np.asarray(tf.cast(tf.round(decoded), tf.uint8))


def pretrain_encoder(
    encoder: keras.Model,
    pixels: np.ndarray,
    targets: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    verbose: int,
    jit_compile: bool = False,
    rectify: bool = False,
) -> dict[str, list[float]]:
    """Trains ``encoder`` in place to predict multi-hot ``targets`` of its images; returns the history.

    pixels: uint8 [N, S, S, 3]; targets: float32 [N, T] (1 where label t applies to image n). A
    sigmoid head on the pooled features is trained with the encoder and then dropped, so the
    encoder's features carry what the labels name (caption words, object attributes): the stand-in
    for ImageNet pretraining when no pretrained weights are given. ``rectify`` puts a ReLU between
    the features and the head (for encoders whose features are linear). 10% of the images validate.
    """
    images = keras.Input(shape=tuple(pixels.shape[1:]), name="images")
    features = encoder(images)
    if rectify:
        features = keras.layers.ReLU(name="pretraining_relu")(features)
    outputs = keras.layers.Dense(units=targets.shape[1], activation="sigmoid", dtype="float32", name="labels")(features)
    model = keras.Model(images, outputs, name="encoder_pretraining")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")], jit_compile=jit_compile)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        history = model.fit(pixels.astype("float32"), targets, batch_size=batch_size, epochs=epochs,
                            validation_split=0.1, shuffle=True, verbose=verbose)
    else:
        # Under a multi-device strategy every batch must split evenly across the replicas (Keras builds
        # on the first batch averaged across them), so the same split goes through tf.data with
        # batches trimmed to a multiple of the replica count.
        from common.training import _even_batches

        cut = len(pixels) - int(len(pixels) * 0.1)  # validation_split=0.1 takes the last 10%

        def batches(x, y, shuffle):
            dataset = tf.data.Dataset.from_tensor_slices((x.astype("float32"), y))
            if shuffle:
                dataset = dataset.shuffle(len(x), reshuffle_each_iteration=True)
            return _even_batches(dataset.batch(batch_size), replicas)

        history = model.fit(batches(pixels[:cut], targets[:cut], True), epochs=epochs, verbose=verbose,
                            validation_data=batches(pixels[cut:], targets[cut:], False))
    return {key: [float(v) for v in values] for key, values in history.history.items()}
