"""The Task contract: the only thing run.py and the registry-wide tests rely on.

``run.py`` drives every task the same way and never branches on the task's name:

    task = TaskClass(config)
    data = task.load_data(data_dir, workdir)                # read + split records; nothing fitted
    preprocessor = task.Preprocessor.fit(task, data, workdir)   # train step only; saved beside the
                                                            # checkpoint, loaded by every other step
    with strategy.scope(): model = task.build_model(data, preprocessor)   # compiled functional model
    task.fit(model, data, preprocessor, workdir)            # common.training.fit on task.datasets(...)
    metrics = task.evaluate(model, data, preprocessor, workdir)   # {"primary", "model", "baselines", ...}
    common.export.export_task(task, model, preprocessor, data, path)   # SavedModel taking RAW input
    common.export.predict(task, path, inputs)               # task.predict_arguments → endpoint → results

Optional steps: ``score`` (tasks with an official results format; ``score_arguments`` names its
required ``--options``) and ``bench``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Sequence

from common.config import BaseConfig
from common.errors import DataError, TaskError  # noqa: F401  (TaskError is raised via common.task)
from common.preprocessor import Preprocessor

# One exported endpoint: (python function of tensors, input signature as tf.TensorSpecs).
Endpoint = tuple[Callable, Sequence[Any]]


@dataclasses.dataclass
class TaskData:
    """What ``load_data`` hands to the other steps: records, not tensors. Each task subclasses it
    with typed split fields (``train``, ``validation``, ``test``, and whatever else it reads);
    ``info`` holds JSON-able facts about the data, copied to results.json."""

    info: dict[str, Any] = dataclasses.field(default_factory=dict, kw_only=True)


class Task:
    """Base class of every task. Subclasses set the class attributes and implement the steps."""

    name: ClassVar[str]  # folder name under tasks/, e.g. "translation"
    description: ClassVar[str]  # one line for `run.py --list`
    Config: ClassVar[type[BaseConfig]]  # frozen dataclass; defaults = the benchmark run
    Preprocessor: ClassVar[type[Preprocessor]]  # the fitted state (see common.preprocessor)
    primary_metric: ClassVar[str]  # key of metrics["model"] that results tables lead with
    higher_is_better: ClassVar[bool] = True
    # The checkpoint and early stopping follow this validation metric.
    monitor: ClassVar[str] = "val_loss"
    monitor_mode: ClassVar[str] = "min"
    # What a warm-started model starts as (said when no epoch beats it); None = no warm start.
    warm_start: ClassVar[str | None] = None
    # The endpoint `run.py TASK predict` calls, and what its inputs are (for --help).
    predict_endpoint: ClassVar[str] = "serve"
    predict_usage: ClassVar[str] = "INPUT [INPUT ...]"
    # True when predict's inputs may be either text or files: run.py then offers --text / --file and
    # sets ``input_kind`` to "text" / "file" (None = decide per input).
    text_or_file_inputs: ClassVar[bool] = False
    score_arguments: ClassVar[tuple[str, ...]] = ()  # e.g. ("annotations", "predictions")
    # Boolean options of ``score`` (e.g. "allow_missing" → --allow-missing), passed in the same dict.
    score_flags: ClassVar[tuple[str, ...]] = ()
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
        self.exported_facts: dict[str, Any] = {}
        self.input_kind: str | None = None  # the export's Preprocessor.export_facts(), set by predict

    # --- the steps ------------------------------------------------------------------------------
    def load_data(self, data_dir: Path | None, workdir: Path) -> TaskData:
        raise NotImplementedError

    def datasets(self, data: TaskData, preprocessor: Preprocessor) -> tuple[Any, Any]:
        """(train, validation) batched ``tf.data.Dataset``s of ``(inputs, targets)`` for ``fit``."""
        raise NotImplementedError

    def build_model(self, data: TaskData, preprocessor: Preprocessor):
        raise NotImplementedError

    def fit(self, model, data: TaskData, preprocessor: Preprocessor, workdir: Path) -> dict[str, Any]:
        from common import training

        train, validation = self.datasets(data, preprocessor)
        return training.fit(model, train, validation, self.config, workdir, monitor=self.monitor,
                            mode=self.monitor_mode)

    def evaluate(self, model, data: TaskData, preprocessor: Preprocessor, workdir: Path) -> dict[str, Any]:
        """Corpus metrics on the test split: ``common.report.metrics(...)``'s shape."""
        raise NotImplementedError

    def endpoints(self, model, preprocessor: Preprocessor) -> Mapping[str, Endpoint]:
        """The SavedModel's endpoints: name → (function of raw-input tensors, input signature)."""
        raise NotImplementedError

    def export_examples(self, data: TaskData) -> dict[str, Sequence[Any]]:
        """``{endpoint: [example args]}`` the fresh-process check calls every endpoint on."""
        raise NotImplementedError

    def write_samples(self, data: TaskData, folder: Path) -> list[str]:
        """Writes a few raw test inputs under ``folder`` (WORKDIR/samples) in the form ``predict``
        takes, and returns the command-line inputs that use them (file paths or sentences)."""
        raise NotImplementedError

    def export_facts(self) -> dict[str, Any]:
        """Facts about the exported model that ``predict`` reports (task.json's "facts", beside the
        preprocessor's), e.g. which model was exported; none by default."""
        return {}

    # --- actions on existing artefacts ----------------------------------------------------------
    def predict_arguments(self, inputs: Sequence[str]) -> list[Any]:
        """Command-line inputs → the arguments of ``predict_endpoint`` (arrays or tensors)."""
        raise NotImplementedError

    def predict_results(self, inputs: Sequence[str], outputs: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The endpoint's outputs (NumPy) → one JSON-able dict per predicted item."""
        raise NotImplementedError

    def score(self, arguments: dict[str, Any]) -> dict[str, Any]:
        raise TaskError(f"Task {self.name!r} has no official results format to score")

    def bench(self, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
        raise TaskError(f"Task {self.name!r} has no benchmark yet")
