"""The user-facing error kinds. run.py prints each as one ``error:`` line and exits with 2 (``RunFailed``: 1).

They live in ``common/`` so that every layer (readers in ``data/``, shared code, tasks) raises the
same classes without ``common/`` importing ``data/``.
"""


class UsageError(Exception):
    """A malformed command line (unknown action, bad option, a --workdir that is a file...). The message says what
    was received and what was expected; run.py prints it after ``error:`` and exits with 2."""


class DataError(ValueError):
    """Input data is missing or malformed. The message names the file/field and what was expected."""


class TaskError(ValueError):
    """A user-facing problem with the task's input (model folder, predictions file, arguments)."""


class RunFailed(RuntimeError):
    """A run stopped for a reason other than its input (the input's errors exit with 2). run.py prints it as one
    ``error:`` line and exits with 1."""


class TrainingDiverged(RunFailed):
    """Training produced a non-finite loss. Nothing is exported: a NaN model must never reach a user."""
