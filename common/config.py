"""Frozen dataclass configs with presets and type-checked ``--set key=value`` overrides.

Every task's ``Config`` subclasses :class:`BaseConfig`. Its field defaults are the benchmark run,
``PRESETS`` maps a preset name (``tiny``, ``default``, ``paper``) to field overrides, and
``CHOICES`` names the allowed values of string fields. Overrides from the command line are strings;
they are parsed with the field's annotated type so that ``--set epochs=ten`` fails at once with a
message that names the key, the received value and the expected type.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, ClassVar, Mapping, Sequence


class ConfigError(ValueError):
    """A preset name or an override is not valid for this config."""


SEED_LIMIT = 2**32  # seeds are checked against [0, SEED_LIMIT) before anything runs
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_scalar(text: str, kind: type, key: str) -> Any:
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ConfigError(f"--set {key}={text!r}: expected a boolean (true/false)")
    if kind is int:
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"--set {key}={text!r}: expected an integer") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ConfigError(f"--set {key}={text!r}: expected a number") from None
    if kind is str:
        return text
    raise ConfigError(f"--set {key}: fields of type {kind!r} cannot be set from the command line")


def parse_value(text: str, annotation: Any, key: str) -> Any:
    """Parses ``text`` as a value of the (resolved) type ``annotation``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
        if text.strip().lower() in {"none", "null", ""} and len(arguments) < len(typing.get_args(annotation)):
            return None
        if len(arguments) == 1:
            return parse_value(text, arguments[0], key)
        raise ConfigError(f"--set {key}: union types other than Optional are not supported")
    if origin is tuple:
        arguments = typing.get_args(annotation)
        item_type = arguments[0]
        values = []
        for part in (part.strip() for part in text.split(",") if part.strip()):
            try:
                values.append(_parse_scalar(part, item_type, key))
            except ConfigError:  # name the whole value and the bad item
                kind = getattr(item_type, "__name__", str(item_type))
                raise ConfigError(f"--set {key}={text!r}: expected comma-separated {kind} values; "
                                  f"{part!r} is not one") from None
        return tuple(values)
    return _parse_scalar(text, annotation, key)


def check_split_fractions(validation_fraction: float, test_fraction: float) -> None:
    """Validation and test fractions in (0, 1) that leave at least 10% of the data for training."""
    if not 0 < validation_fraction < 1 or not 0 < test_fraction < 1:
        raise ConfigError(
            f"validation_fraction={validation_fraction} and test_fraction={test_fraction} must be in (0, 1)"
        )
    if validation_fraction + test_fraction >= 0.9:
        raise ConfigError(
            f"validation_fraction + test_fraction = {validation_fraction + test_fraction:g} must leave at least "
            "10% of the data for training"
        )


@dataclasses.dataclass(frozen=True)
class BaseConfig:
    """Options shared by every task. Subclasses add task fields with benchmark defaults."""

    seed: int = 1234  # seeds Python, NumPy and TensorFlow (keras.utils.set_random_seed)
    # Repeats: run.py runs the whole command once per seed into WORKDIR/seed-N/ (config.seed = N there) and writes
    # WORKDIR/results.json with mean ± std over them; () = one run with `seed`. A seed varies everything `seed`
    # seeds: the initial weights and shuffling, and in most tasks also the data split and the synthetic data.
    seeds: tuple[int, ...] = ()
    epochs: int = 20  # maximum number of passes over the training split
    batch_size: int = 64  # examples per optimizer step: the GLOBAL batch under a distribution strategy
    scale_learning_rate: bool = False  # multiply learning_rate by the number of replicas (linear scaling rule)
    learning_rate: float = 1e-3  # Adam step size unless the task says otherwise
    early_stopping_patience: int = 5  # epochs without validation improvement before stopping; 0 = never
    # "default" = one device (GPU if TensorFlow sees one); "mirrored" = all GPUs, else all logical CPUs;
    # "data_parallel" = KERAS_BACKEND=jax: every device of every process of a job (Keras' DataParallel)
    strategy: str = "default"
    logical_cpus: int = 0  # >1 splits the CPU into this many logical devices (to exercise "mirrored" without GPUs)
    precision: str = "float32"  # Keras dtype policy; "mixed_float16" on GPUs (outputs stay float32)
    jit_compile: bool = False  # XLA-compile the train/predict steps
    # Training steps per call into the compiled step (Keras' steps_per_execution): N > 1 runs N batches per call,
    # saving per-step dispatch, but per-batch callbacks (the NaN guard, a per-step learning-rate schedule) then see
    # every Nth batch; 1 was as fast as 4 or 16 on 2 CPU cores (tasks/acceleration/README.md, "Speed")
    steps_per_execution: int = 1
    tensorboard: bool = True  # write TensorBoard logs under WORKDIR/logs/tensorboard
    reduce_lr_patience: int = 0  # epochs without validation improvement before halving the learning rate; 0 = never
    # Keras fit verbosity: 1 = progress bar, 2 = one line per epoch; -1 = bar on a terminal, lines otherwise
    verbose: int = -1

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "strategy": ("default", "mirrored", "data_parallel"),
        "precision": ("float32", "mixed_float16", "mixed_bfloat16"),
    }
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"default": {}}

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            values = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, float) and not math.isfinite(v) for v in values):
                raise ConfigError(f"{field.name}={value!r} is not a finite number; expected a finite value")
        for key, allowed in self.CHOICES.items():
            value = getattr(self, key)
            if value not in allowed:
                raise ConfigError(f"{key}={value!r} is not allowed; expected one of {list(allowed)}")
        for key, value in (("epochs", self.epochs), ("batch_size", self.batch_size)):
            if value < 1:
                raise ConfigError(f"{key}={value} must be at least 1")
        if self.steps_per_execution < 1:
            raise ConfigError(f"steps_per_execution={self.steps_per_execution} must be at least 1 (training steps "
                              "per call into the compiled step)")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning_rate={self.learning_rate} must be positive")
        if len(set(self.seeds)) != len(self.seeds) or any(seed < 0 for seed in self.seeds):
            raise ConfigError(f"seeds={','.join(map(str, self.seeds))}: expected distinct non-negative integers")
        for key, seed in [("seed", self.seed)] + [("seeds", seed) for seed in self.seeds]:
            if not 0 <= seed < SEED_LIMIT:  # NumPy's (and so Keras') seeding takes 32-bit unsigned seeds
                raise ConfigError(f"{key}: {seed} is out of range; expected an integer from 0 to {SEED_LIMIT - 1}")

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        return {f.name: hints[f.name] for f in dataclasses.fields(cls)}

    @classmethod
    def from_preset(cls, preset: str = "default", overrides: Sequence[str] | Mapping[str, Any] = ()):
        """Builds the config of ``preset`` and applies ``key=value`` overrides on top."""
        presets = {"default": {}, **cls.PRESETS}
        if preset not in presets:
            raise ConfigError(f"Unknown preset {preset!r}; expected one of {sorted(presets)}")
        values: dict[str, Any] = dict(presets[preset])
        types_by_name = cls.field_types()
        if isinstance(overrides, Mapping):
            items = [(str(k), v) for k, v in overrides.items()]
        else:
            items = []
            for item in overrides:
                if "=" not in item:
                    raise ConfigError(f"--set {item!r}: expected key=value")
                key, _, text = item.partition("=")
                items.append((key.strip(), text))
        for key, value in items:
            if key not in types_by_name:
                raise ConfigError(
                    f"Unknown config key {key!r} for {cls.__module__}.{cls.__name__}; "
                    f"expected one of {sorted(types_by_name)}"
                )
            values[key] = parse_value(value, types_by_name[key], key) if isinstance(value, str) else value
        return cls(**values)

    @classmethod
    def describe_fields(cls) -> list[tuple[str, str, Any, str]]:
        """(name, type, default, meaning) of every field, the meaning read from the comment beside
        the field (or the comment lines just above it) in the config's source, for ``--help``."""
        import inspect
        import re

        comments: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            if not (isinstance(klass, type) and issubclass(klass, BaseConfig)):
                continue
            try:
                source = inspect.getsource(klass).splitlines()
            except (OSError, TypeError):
                continue
            above: list[str] = []
            for line in source:
                stripped = line.strip()
                match = re.match(r"^(\w+)\s*:\s*[^=#]+=\s*[^#]*?(?:#\s*(.*))?$", stripped)
                if stripped.startswith("#"):
                    above.append(stripped.lstrip("# ").strip())
                elif match and line.startswith("    ") and not line.startswith("     "):
                    # The comment beside the field wins; then the base class's; then the lines above.
                    name = match.group(1)
                    comments[name] = match.group(2) or comments.get(name) or " ".join(above)
                    above = []
                else:
                    above = []
        rows = []
        for name, kind in cls.field_types().items():
            shown = kind.__name__ if typing.get_origin(kind) is None else str(kind).replace("typing.", "")
            rows.append((name, shown, getattr(cls, name, None), comments.get(name, "")))
        return rows

    @classmethod
    def describe_presets(cls) -> dict[str, str]:
        """preset → its overrides, as one line each (``default`` = the field defaults)."""
        presets = {"default": {}, **cls.PRESETS}
        return {name: ", ".join(f"{k}={v}" for k, v in values.items()) or "the field defaults (the benchmark run)"
                for name, values in presets.items()}

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
