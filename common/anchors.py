"""Published anchors: the numbers a task's README results are compared with.

Each task lists its anchors in ``tasks/<task>/anchors.py`` as ``ANCHORS = (Anchor(...), ...)`` (a module that
imports nothing heavy, so ``run.py report`` reads it without TensorFlow; task.py, which imports TensorFlow,
does not repeat them). ``value`` is in the units of the task's own ``metrics["model"][metric]`` (accuracy as a fraction
when the task writes a fraction, BLEU 0-100 when it writes 0-100), so the report can put both side by side.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Anchor:
    metric: str  # key of results.json metrics["model"] this number is comparable with
    value: float  # in that key's units
    dataset: str  # what was measured on, as the source names it
    split: str  # e.g. "test", "test-dev"
    source: str  # who published it: paper (authors, year) or page, with a locator
    note: str = ""  # what differs from the suite's setting (ensembles, pre-training, extra data)

    def __post_init__(self) -> None:
        if not self.metric or not isinstance(self.value, (int, float)) or isinstance(self.value, bool):
            raise ValueError(f"Anchor needs a metric name and a numeric value; got {self.metric!r}={self.value!r}")
        if not self.source:
            raise ValueError(f"Anchor {self.metric}={self.value} needs a source")
