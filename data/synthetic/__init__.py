"""Seeded generators that write the real on-disk formats: the embedded default of every task."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

PARAMETERS_NAME = "parameters.json"  # beside a generated file: the arguments it was generated with


def write_once(path: Path, parameters: Mapping[str, Any], write: Callable[[Path], None]) -> Path:
    """Calls ``write(path)`` unless ``path`` already exists beside a ``parameters.json`` holding exactly
    ``parameters`` (same generator, version and arguments): reruns reuse the file, any change regenerates it."""
    path = Path(path)
    parameters_path = path.parent / PARAMETERS_NAME
    if path.exists() and parameters_path.exists():
        try:
            if json.loads(parameters_path.read_text()) == dict(parameters):
                return path
        except json.JSONDecodeError:
            pass  # a damaged side file: regenerate
    from common.io import atomic_write_json

    write(path)
    atomic_write_json(parameters_path, dict(parameters))
    return path
