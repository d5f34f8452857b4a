"""The on-disk image cache: CNN features per image, and dataset-sized tables of features or pixels.

Running the CNN is the slow part of an image task, so ``cached_features`` runs it once per (image file,
encoder) and keeps each row on disk; later epochs and later runs only read it back. A dataset-sized table
(features of every image, or its pixels) is one ``.npy`` file per (encoder key, image list), written once
atomically and memory-mapped (``cached_feature_table``, ``cached_pixel_table``; ``open_table`` /
``write_table`` underneath); ``gather_rows`` reads a batch's rows inside tf.data without making a table a
graph constant. Reading and decoding the files is common/images.py's.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from common import progress
from common.errors import DataError
from common.images import decode_images, read_image_bytes, read_pixels
from common.io import atomic_path

logger = logging.getLogger(__name__)


# --- per-image feature cache -------------------------------------------------------------------------


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
            out[start : start + len(chunk)] = read_pixels(chunk, image_size)

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
