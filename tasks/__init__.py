"""Task registry. Adding a task = a package under tasks/ and its name in TASK_NAMES."""

from __future__ import annotations

import dataclasses
import importlib

TASK_NAMES: tuple[str, ...] = ("acceleration", "sentiment", "translation", "captioning", "vqa", "language_model")


@dataclasses.dataclass(frozen=True)
class CommandLine:
    """The Task class attributes that shape a task's command line, readable without importing the task's
    module (it imports TensorFlow), so ``run.py TASK --help`` and ``run.parse_command`` answer at once.
    Same names and meanings as on ``common.task.Task`` (has_bench: the class overrides ``Task.bench``);
    tests/test_cli.py checks that the two agree."""

    can_download: bool = False  # --download is allowed
    text_or_file_inputs: bool = False  # predict offers --text / --file
    score_arguments: tuple[str, ...] = ()  # score's required --FILE options; () = the task has no score
    score_flags: tuple[str, ...] = ()  # score's boolean options ("allow_missing" → --allow-missing)
    has_bench: bool = False  # the task overrides Task.bench (run.py TASK bench)


# Only tasks that differ from CommandLine's defaults are listed.
_COMMAND_LINES: dict[str, CommandLine] = {
    "acceleration": CommandLine(has_bench=True),
    "sentiment": CommandLine(can_download=True, text_or_file_inputs=True),
    "translation": CommandLine(can_download=True, has_bench=True),
    "captioning": CommandLine(can_download=True, score_arguments=("annotations", "predictions"),
                              score_flags=("allow_missing",), has_bench=True),
    "vqa": CommandLine(can_download=True, score_arguments=("questions", "annotations", "predictions"),
                       score_flags=("allow_missing",), has_bench=True),
    "language_model": CommandLine(has_bench=True),
}


class UnknownTaskError(ValueError):
    pass


def describe(name: str) -> str:
    """First line of the task package's docstring; cheap (does not import TensorFlow)."""
    module = importlib.import_module(f"tasks.{name}")
    return (module.__doc__ or "").strip().splitlines()[0]


def load_config(name: str):
    """The Config class of task ``name``, without importing TensorFlow (for ``run.py TASK --help``)."""
    if name not in TASK_NAMES:
        raise UnknownTaskError(f"Unknown task {name!r}; expected one of {list(TASK_NAMES)}")
    return importlib.import_module(f"tasks.{name}.config").Config


def command_line(name: str) -> CommandLine:
    """What task ``name``'s command line offers (see CommandLine), without importing TensorFlow."""
    if name not in TASK_NAMES:
        raise UnknownTaskError(f"Unknown task {name!r}; expected one of {list(TASK_NAMES)}")
    return _COMMAND_LINES.get(name, CommandLine())


def load_task(name: str):
    """Returns the Task class registered under ``name``."""
    if name not in TASK_NAMES:
        raise UnknownTaskError(f"Unknown task {name!r}; expected one of {list(TASK_NAMES)}")
    module = importlib.import_module(f"tasks.{name}.task")
    return module.TASK
