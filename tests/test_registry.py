"""Every registered task honours the contract (parametrized over the registry)."""

import inspect

import pytest

import tasks
from common.config import BaseConfig
from common.preprocessor import Preprocessor
from common.task import Task


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_task_honours_the_contract(name):
    task_class = tasks.load_task(name)
    assert issubclass(task_class, Task) and task_class.name == name
    assert tasks.describe(name), "the package docstring's first line is the --list description"
    assert issubclass(task_class.Config, BaseConfig)
    assert {"tiny", "paper"} <= set(task_class.Config.PRESETS)
    for preset in ("tiny", "default", "paper"):
        task_class(task_class.Config.from_preset(preset))  # every preset is a valid config
    assert isinstance(task_class.primary_metric, str) and task_class.primary_metric
    for method in ("load_data", "datasets", "build_model", "evaluate", "endpoints", "export_examples",
                   "write_samples", "predict_arguments", "predict_results"):
        assert getattr(task_class, method) is not getattr(Task, method), f"{name} must implement {method}"
    assert issubclass(task_class.Preprocessor, Preprocessor) and task_class.Preprocessor.task == name
    assert not hasattr(task_class, "export") and not hasattr(task_class, "predict"), "export/predict are generic"
    source = inspect.getsource(inspect.getmodule(task_class))
    assert len(source.splitlines()) <= 250, f"tasks/{name}/task.py is wiring: at most 250 lines"
    module_doc = inspect.getmodule(task_class).__doc__ or ""
    assert f"python run.py {name}" in module_doc, "task.py opens with the exact command"


def test_unknown_task_is_a_clear_error():
    with pytest.raises(tasks.UnknownTaskError, match="Unknown task 'nope'; expected one of"):
        tasks.load_task("nope")


def test_common_never_imports_data_or_tasks():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "common"
    pattern = re.compile(r"^\s*(from|import)\s+(data|tasks)\b", re.MULTILINE)
    offenders = [str(p) for p in root.rglob("*.py") if pattern.search(p.read_text())]
    assert not offenders, f"common/ must know nothing of data/ or tasks/: {offenders}"


def test_every_python_line_fits_120_characters():
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    # The project's own code only: a virtual environment made inside the clone (.venv/, as the README's install
    # does) holds other people's.
    folders = ("common", "data", "tasks", "tests")
    files = [root / "run.py", *(p for folder in folders for p in (root / folder).rglob("*.py"))]
    long_lines = [f"{p.relative_to(root)}:{n}" for p in files
                  for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if len(line) > 120]
    assert not long_lines, f"lines over 120 characters (pyproject.toml's line-length): {long_lines[:20]}"
