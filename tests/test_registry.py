"""Every registered task honours the contract (parametrized over the registry)."""

import inspect

import pytest

import tasks
from common.config import BaseConfig
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
    for method in ("load_data", "build_model", "evaluate", "export", "predict"):
        assert getattr(task_class, method) is not getattr(Task, method), f"{name} must implement {method}"
    module_doc = inspect.getmodule(task_class).__doc__ or ""
    assert f"python run.py {name}" in module_doc, "task.py opens with the exact command"


def test_unknown_task_is_a_clear_error():
    with pytest.raises(tasks.UnknownTaskError, match="Unknown task 'nope'; expected one of"):
        tasks.load_task("nope")
