"""Progress for long non-training loops (reading data, caching features, decoding, scoring).

On a terminal: a live bar (``keras.utils.Progbar``). Elsewhere (logs, CI, a pipe): one line when the
stage starts and one when it ends with its duration, so logs stay short and still say what ran.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import Iterable, Iterator, TypeVar

logger = logging.getLogger("progress")
Item = TypeVar("Item")


def _interactive() -> bool:
    return sys.stdout.isatty()


def track(items: Iterable[Item], total: int | None, stage: str, unit: str = "items") -> Iterator[Item]:
    """Yields ``items`` while showing progress of ``stage`` (``total`` items, counted one per item)."""
    start = time.perf_counter()
    logger.info("%s: %s %s ...", stage, "?" if total is None else f"{total:,}", unit)
    bar = None
    if _interactive() and total:
        import keras

        bar = keras.utils.Progbar(total, unit_name=unit.rstrip("s") or "item")
    count = 0
    for item in items:
        yield item
        count += 1
        if bar is not None:
            bar.update(count)
    logger.info("%s: %s %s done in %.1f s", stage, f"{count:,}", unit, time.perf_counter() - start)


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """One line when a stage without countable steps starts, one when it ends (with its duration)."""
    start = time.perf_counter()
    logger.info("%s ...", name)
    yield
    logger.info("%s: done in %.1f s", name, time.perf_counter() - start)
