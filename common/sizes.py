"""Sizes checked before anything is allocated: a rough estimate of a run's memory from its config alone.

A mistyped size (``--set lstm_units=100000000``, ``batch_size=1e8``, ``sequence_length=1e8``) would otherwise be
found out by the machine: minutes of allocation, swapping, then an out-of-memory traceback or a killed process.
Here the config's sizes are read by their names, the same across tasks:

  width   keys ending in ``units`` or ``_dim`` (LSTM, Dense, embedding, image-feature sizes)
  length  ``sequence_length``, ``max_*_length``, ``max_*_tokens`` (time steps of one example)
  vocab   ``max_tokens``, ``*_max_tokens``, ``max_answers``, ``max_vocabulary`` (embedding and output rows)
  batch   keys ending in ``batch_size``
  layers  ``layers``, ``lstm_layers``
  image   ``image_size`` (pixels on a side)

and turned into bytes: the parameters with their gradients and two Adam moments, and one batch's activations
kept for the backward pass (every layer's gates at every step, the batch of images). It is a lower estimate on
purpose (no output logits, no CNN feature maps: whether a task has them is not in its config's names), so the
check refuses only what cannot fit the machine's physical memory at all, never a run that would; the error names
the key that makes it so (the one whose default would bring the estimate down the most).
Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
import re

from common.config import ConfigError

FLOAT_BYTES = 4
PARAMETER_COPIES = 4  # weights, gradients and Adam's two moments
GATES = 4  # an LSTM keeps four gate activations per unit and step for the backward pass
IMAGE_CHANNELS = 3


def _kind(name: str) -> str | None:
    if name == "max_tokens" or name.endswith("_max_tokens") or name in ("max_answers", "max_vocabulary"):
        return "vocab"
    if name == "sequence_length" or re.fullmatch(r"max_\w*_(length|tokens)", name):
        return "length"
    if name.endswith("batch_size"):
        return "batch"
    if name.endswith("units") or name.endswith("_dim"):
        return "width"
    if name in ("layers", "lstm_layers"):
        return "layers"
    if name == "image_size":
        return "image"
    return None


def sizes(config) -> dict[str, int]:
    """The config's size keys (name → value) that the estimate reads."""
    found = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if isinstance(value, int) and not isinstance(value, bool) and _kind(field.name):
            found[field.name] = value
    return found


def estimate_bytes(values: dict[str, int]) -> float:
    """Bytes of the parameters (with gradients and optimizer state) and of one batch's activations."""
    by_kind: dict[str, int] = {}
    for name, value in values.items():
        kind = _kind(name)
        by_kind[kind] = max(by_kind.get(kind, 0), max(value, 0))
    width = by_kind.get("width", 0)
    length = max(by_kind.get("length", 1), 1)
    vocab = by_kind.get("vocab", 0)
    batch = max(by_kind.get("batch", 1), 1)
    layers = max(by_kind.get("layers", 1), 1)
    image = by_kind.get("image", 0)
    parameters = layers * 8.0 * width * width + 2.0 * vocab * width
    activations = batch * length * layers * GATES * width + batch * image * image * IMAGE_CHANNELS
    return FLOAT_BYTES * (PARAMETER_COPIES * parameters + 2.0 * activations)


def machine_bytes() -> int:
    """The machine's physical memory (a fixed figure, unlike the free memory of the moment)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def check_sizes(config, memory: int | None = None) -> None:
    """Raises ConfigError naming the key when the config's estimated memory exceeds the machine's ``memory``
    (physical memory by default). A machine whose memory cannot be read is not checked."""
    memory = machine_bytes() if memory is None else memory
    values = sizes(config)
    needed = estimate_bytes(values)
    if memory <= 0 or needed <= memory:
        return
    defaults = {name: getattr(type(config), name) for name in values}
    # The key to blame: the one whose default would bring the estimate down the most.
    blame = min(values, key=lambda name: estimate_bytes({**values, name: defaults[name]}))
    raise ConfigError(f"{blame}={values[blame]}: a run with these sizes needs about {_gib(needed)} of memory "
                      f"(model, optimizer state and one batch, estimated from the config), more than this "
                      f"machine's {_gib(memory)}; expected a smaller {blame} (its default is {defaults[blame]})")


def _gib(size: float) -> str:
    gib = size / 2**30
    return f"{gib:.1f} GiB" if gib < 1e4 else f"{gib:.1e} GiB"
