"""Measuring a table-fed input pipeline at full size without the full data set (the tasks' ``bench``).

``write_stand_in_table`` writes a seeded float32 table of a real data set's shape (118,287 x 2,048 for COCO
train) that the task's own tf.data pipeline then reads memory-mapped, as it reads a feature table from
common/feature_cache.py; ``measure_pipeline`` times that pipeline and reports the memory it took and the
size of its graph, which shows that no table became a graph constant.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from common.errors import DataError
from common.feature_cache import open_table
from common.io import atomic_path


def write_stand_in_table(file: str | os.PathLike, rows: int, width: int, seed: int,
                         chunk_rows: int = 8192) -> np.ndarray:
    """A seeded float32 [rows, width] table of N(0, 1) values (stand-in features), memory-mapped read-only.

    Reused when ``file`` already holds that shape. Written with plain buffered writes in ``chunk_rows``
    pieces (not through a writable memory map, whose dirty pages would count in this process's peak RSS),
    atomically; the memory it takes is one chunk.
    """
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
