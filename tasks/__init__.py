"""Task registry. Adding a task = a package under tasks/ and its name in TASK_NAMES."""

from __future__ import annotations

import importlib

TASK_NAMES: tuple[str, ...] = ("acceleration", "sentiment", "translation", "captioning", "vqa", "language_model")


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


def load_task(name: str):
    """Returns the Task class registered under ``name``."""
    if name not in TASK_NAMES:
        raise UnknownTaskError(f"Unknown task {name!r}; expected one of {list(TASK_NAMES)}")
    module = importlib.import_module(f"tasks.{name}.task")
    return module.TASK
