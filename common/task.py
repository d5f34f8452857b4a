"""The Task contract: the only thing run.py and the registry-wide tests rely on.

A task is a class with four steps (load_data, build_model, evaluate, export) plus ``predict`` on an
exported model. ``run.py`` drives them in that order and never branches on the task's name:

    task = TaskClass(config)
    data = task.load_data(data_dir, workdir)          # real files, or the synthetic default
    with strategy.scope(): model = task.build_model(data)   # compiled functional keras.Model
    task.fit(model, data, workdir)                    # common.training.fit unless overridden
    metrics = task.evaluate(model, data, workdir)     # corpus metrics on the test split (+ baselines)
    examples = task.export(model, data, path)         # SavedModel taking RAW input
    common.export.check_in_fresh_process(path, examples)

Optional steps: ``score`` (tasks with an official results format; ``score_arguments`` names its
required ``--options``) and ``bench``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Sequence

from common.config import BaseConfig


class TaskError(ValueError):
    """A user-facing problem with the task's input (data, model folder, predictions file)."""


@dataclasses.dataclass
class TaskData:
    """What ``load_data`` hands to the other steps.

    train / validation: batched ``tf.data.Dataset`` of ``(inputs, targets)`` ready for ``fit``.
    test: the test split in whatever form ``evaluate`` needs (records, arrays, a dataset).
    info: JSON-able facts about the data (source, split sizes, vocabulary sizes) copied to results.json.
    extras: task-specific objects needed by build_model / evaluate / export (vectorizers, statistics).
    """

    train: Any
    validation: Any
    test: Any
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


class Task:
    """Base class of every task. Subclasses set the class attributes and implement the steps."""

    name: ClassVar[str]  # folder name under tasks/, e.g. "translation"
    description: ClassVar[str]  # one line for `run.py --list`
    Config: ClassVar[type[BaseConfig]]  # frozen dataclass; defaults = the benchmark run
    primary_metric: ClassVar[str]  # key in evaluate()'s dict that results tables lead with
    higher_is_better: ClassVar[bool] = True
    score_arguments: ClassVar[tuple[str, ...]] = ()  # e.g. ("annotations", "predictions")
    # True when load_data can fetch the dataset itself. It does so only when run.py sets
    # ``task.download = True`` (the user passed --download); otherwise nothing is ever downloaded.
    can_download: ClassVar[bool] = False
    # Packages whose versions results.json records besides tensorflow/keras/numpy.
    extra_packages: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: BaseConfig):
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} expects a {self.Config.__name__}, got {type(config).__name__}")
        self.config = config
        self.download = False  # set by run.py --download; see can_download

    # --- the four steps -------------------------------------------------------------------------
    def load_data(self, data_dir: Path | None, workdir: Path) -> TaskData:
        raise NotImplementedError

    def build_model(self, data: TaskData):
        raise NotImplementedError

    def fit(self, model, data: TaskData, workdir: Path) -> dict[str, Any]:
        from common import training

        return training.fit(model, data.train, data.validation, self.config, workdir)

    def evaluate(self, model, data: TaskData, workdir: Path) -> dict[str, Any]:
        raise NotImplementedError

    def export(self, model, data: TaskData, path: Path) -> dict[str, Sequence[Any]]:
        """Writes the SavedModel and returns ``{endpoint: [example args]}`` for the smoke call."""
        raise NotImplementedError

    # --- actions on existing artefacts ----------------------------------------------------------
    def predict(self, model_dir: Path, inputs: Sequence[str]) -> list[Any]:
        raise NotImplementedError

    def score(self, arguments: dict[str, str]) -> dict[str, Any]:
        raise TaskError(f"Task {self.name!r} has no official results format to score")

    def bench(self, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
        raise TaskError(f"Task {self.name!r} has no benchmark yet")
