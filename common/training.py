"""Fit-loop glue shared by every task: seeding, devices, precision, callbacks, resume.

``fit`` writes under WORKDIR:
  checkpoints/best.keras     best model so far by the monitored metric (written atomically)
  checkpoints/best.json      the monitored value and epoch of that model (survives a restart)
  backup/                    BackupAndRestore state: a killed run resumes at the next epoch
  logs/training.csv          one row per epoch (appended across a resume)
  logs/tensorboard/          TensorBoard scalars (when config.tensorboard)
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from common.callbacks import ArrayBackupAndRestore, EpochTensorBoard, EpochTimer, fill_keras_saving_cache
from common.config import BaseConfig
from common.errors import TrainingDiverged
from common.optimization import compile_model, learning_rate, replicas_in_sync  # noqa: F401  (tasks call them here)
from common.io import atomic_path, atomic_write_json

logger = logging.getLogger(__name__)


def configure_devices(config: BaseConfig) -> None:
    """Must run before TensorFlow touches a device (before any op or model)."""
    if config.logical_cpus > 1:
        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(config.logical_cpus)]
            )
        except RuntimeError as error:  # devices already initialised in this process
            logger.warning("Could not split the CPU into %d logical devices: %s", config.logical_cpus, error)
    for gpu in tf.config.list_physical_devices("GPU"):
        # Grow GPU memory on demand so several runs can share one card.
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:
            pass


def setup(config: BaseConfig) -> None:
    """Seeds everything and sets the global dtype policy; call before building any model."""
    configure_devices(config)
    keras.utils.set_random_seed(config.seed)
    keras.mixed_precision.set_dtype_policy(config.precision)


def reseed(config: BaseConfig) -> None:
    """Seeds again right before the model is built under strategy=data_parallel: process 0 fits the preprocessor
    (drawing random numbers) while the other processes of a job read it, and every process must then draw the same
    initial weights and the same shuffles (JAX refuses replicated values that differ between processes)."""
    if config.strategy == "data_parallel":
        keras.utils.set_random_seed(config.seed)


def preprocessing_scope(strategy):
    """Where the train step fits the preprocessor: in a TensorFlow strategy's scope (encoder pretraining and feature
    caching use its devices too); outside a data_parallel job's distribution, since process 0 fits it alone."""
    import contextlib

    return contextlib.nullcontext() if type(strategy).__module__ == "common.distribution" else strategy.scope()


def make_strategy(config: BaseConfig):
    """The strategy of ``config.strategy``: TensorFlow's (default, mirrored), or for data_parallel the job's
    ``keras.distribution.DataParallel`` (common.distribution; its ``scope()`` and ``num_replicas_in_sync``)."""
    if config.strategy == "data_parallel":
        from common import distribution

        return distribution.Strategy(distribution.job())
    if config.strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        # On CPU-only machines the cross-device reduction must not use NCCL.
        cross_device_ops = None if gpus else tf.distribute.ReductionToOneDevice()
        strategy = tf.distribute.MirroredStrategy(devices=devices, cross_device_ops=cross_device_ops)
        logger.info("MirroredStrategy over %d devices: %s", strategy.num_replicas_in_sync, devices)
        return strategy
    return tf.distribute.get_strategy()


def device_report() -> dict[str, Any]:
    """What ran where: the Keras backend, devices, GPU names, and the CUDA/cuDNN versions TensorFlow was built
    with (under KERAS_BACKEND=jax, JAX's devices: the model runs there, TensorFlow only runs tf.data)."""
    gpus = tf.config.list_physical_devices("GPU")
    build = tf.sysconfig.get_build_info()
    names = []
    for gpu in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
        except (RuntimeError, ValueError):
            names.append(gpu.name)
    report = {
        "keras_backend": keras.backend.backend(),
        "physical": [f"{d.device_type}:{d.name}" for d in tf.config.list_physical_devices()],
        "logical": [d.name for d in tf.config.list_logical_devices()],
        "gpu_used": bool(gpus),
        "gpu_names": names,
        "tensorflow_build": {"cuda": build.get("cuda_version"), "cudnn": build.get("cudnn_version"),
                             "cuda_build": bool(build.get("is_cuda_build"))},
        "dtype_policy": keras.config.dtype_policy().name,
    }
    if report["keras_backend"] == "jax":  # the model ran on JAX's devices; TensorFlow only fed the data
        import jax

        report["jax_devices"] = [f"{d.platform}:{d.device_kind}" for d in jax.devices()]
        report["gpu_used"] = any(d.platform == "gpu" for d in jax.devices())
        report["gpu_names"] = [d.device_kind for d in jax.devices() if d.platform == "gpu"]
    return report


def model_report(model: keras.Model) -> dict[str, Any]:
    """results.json's facts about the trained model: size, recurrent layers and their cuDNN
    eligibility, and XLA. Keras compiles with XLA only when asked, and turns it off for a model whose
    LSTMs take the cuDNN path on a GPU (it warns "Proceeding with jit_compile=False")."""
    recurrent = recurrent_layers_report(model)
    gpu = bool(tf.config.list_physical_devices("GPU"))
    requested = bool(getattr(model, "jit_compile", False))
    cudnn = gpu and any(entry["cudnn_eligible"] for entry in recurrent)
    return {"parameters": parameter_count(model), "recurrent_layers": recurrent,
            "cudnn_kernel_possible": cudnn,
            "jit_compile": {"requested": requested, "effective": requested and not cudnn}}


def parameter_count(model: keras.Model) -> int:
    """The model's weights, less the buffers a layer lists in ``non_parameter_variables`` (the language model's
    carried LSTM states: batch × units zeros refilled every epoch, nothing learned). Frozen weights and
    normalisation statistics count, as in Keras' summary."""
    buffers = {id(variable) for layer in model._flatten_layers(include_self=False, recursive=True)
               for variable in getattr(layer, "non_parameter_variables", ())}
    return int(sum(math.prod(variable.shape) for variable in model.weights if id(variable) not in buffers))


def recurrent_layers_report(model: keras.Model) -> list[dict[str, Any]]:
    """Every LSTM/GRU in ``model`` (inside wrappers and nested models too), with whether its
    arguments let TensorFlow use the cuDNN kernel on a GPU (the conditions Keras checks:
    tanh/sigmoid activations, no recurrent dropout, not unrolled, a bias; GRU also reset_after).
    Masked inputs additionally need right padding and no fully masked row (the pipelines ensure it)."""
    report = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not isinstance(layer, (keras.layers.LSTM, keras.layers.GRU)):
            continue
        problems = []
        if layer.activation is not keras.activations.tanh:
            problems.append(f"activation={getattr(layer.activation, '__name__', layer.activation)}")
        if layer.recurrent_activation is not keras.activations.sigmoid:
            problems.append("recurrent_activation is not sigmoid")
        if layer.recurrent_dropout:
            problems.append(f"recurrent_dropout={layer.recurrent_dropout}")
        if layer.unroll:
            problems.append("unroll=True")
        if not layer.use_bias:
            problems.append("use_bias=False")
        if isinstance(layer, keras.layers.GRU) and not layer.reset_after:
            problems.append("reset_after=False")
        report.append({"layer": layer.name, "kind": type(layer).__name__, "units": int(layer.units),
                       "cudnn_eligible": not problems, "why_not": problems})
    return report


class AtomicBestCheckpoint(keras.callbacks.Callback):
    """Saves the whole model to ``path`` when ``monitor`` improves, via write-then-rename.

    Keras' ModelCheckpoint writes in place, so a kill during the write leaves a corrupt file; and
    its "best so far" is forgotten on restart. This one keeps the best value in a JSON side file.
    """

    def __init__(self, path: Path, monitor: str = "val_loss", mode: str = "min"):
        super().__init__()
        self.path = Path(path)
        self.state_path = self.path.with_suffix(".json")
        self.monitor = monitor
        self.mode = mode
        self.best = math.inf if mode == "min" else -math.inf
        if self.state_path.exists() and self.path.exists():
            state = json.loads(self.state_path.read_text())
            if state.get("monitor") == monitor:
                self.best = float(state["value"])

    def _improved(self, value: float) -> bool:
        return value < self.best if self.mode == "min" else value > self.best

    def save_best(self, model: keras.Model, value: float, epoch: int) -> None:
        """Writes ``model`` as the best so far (model first, then its JSON record; both atomic)."""
        self.best = value
        fill_keras_saving_cache()  # a third less time in model.save (see common/callbacks.py)
        with atomic_path(self.path, suffix=".keras") as temporary:
            model.save(temporary)
        atomic_write_json(self.state_path, {"monitor": self.monitor, "value": value, "epoch": epoch})

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(f"Checkpoint monitors {self.monitor!r}, but the epoch logs have only {sorted(logs)}")
        value = float(logs[self.monitor])
        if math.isfinite(value) and self._improved(value):
            self.save_best(self.model, value, epoch + 1)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite and remembers where.

    ``fit`` then raises TrainingDiverged naming the epoch (1-based, as Keras prints it), so a
    diverged run fails instead of exporting whatever checkpoint came before the divergence.
    """

    def __init__(self):
        super().__init__()
        self.diverged_at: tuple[int, int] | None = None  # (epoch, batch), 1-based
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged_at = (self._epoch, batch + 1)
            self.model.stop_training = True


class EpochCSVLogger(keras.callbacks.CSVLogger):
    """Keras' CSVLogger with epochs numbered from 1, as the console ("Epoch 1/60") and best.json
    number them (epoch 0 is the model before training, when a warm start competes)."""

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch + 1, logs)


def best_checkpoint_path(workdir: Path) -> Path:
    return Path(workdir) / "checkpoints" / "best.keras"


def default_callbacks(config: BaseConfig, workdir: Path, monitor: str = "val_loss", mode: str = "min") -> list:
    from common import distribution

    workdir = Path(workdir)
    backup = keras.callbacks.BackupAndRestore(backup_dir=str(workdir / "backup"), double_checkpoint=True)
    callbacks: list = [
        # First, so that a kill in a later callback still finds this epoch backed up. In a job of several processes
        # every process restores process 0's backup, and each saves its own copy.
        distribution.job_backup(backup, distribution.writer_folder(workdir) / "backup"),
        AtomicBestCheckpoint(best_checkpoint_path(workdir), monitor=monitor, mode=mode),
        EpochCSVLogger(str(workdir / "logs" / "training.csv"), append=True),
        StopOnNonFiniteLoss(),
    ]
    if config.early_stopping_patience > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=config.early_stopping_patience, restore_best_weights=True
            )
        )
    if config.reduce_lr_patience > 0:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor=monitor, mode=mode, factor=0.5,
                                              patience=config.reduce_lr_patience)
        )
    if config.tensorboard:
        callbacks.append(EpochTensorBoard(log_dir=str(workdir / "logs" / "tensorboard")))
    return callbacks


# Fields that may change between an interrupted run and its resumption (they do not change what
# the saved weights and optimizer state mean).
_RESUMABLE_CHANGES = frozenset({"epochs", "verbose", "tensorboard", "early_stopping_patience", "reduce_lr_patience",
                                "logged_examples", "seeds", "steps_per_execution"})


def _settings(config: dict) -> dict:
    """The config entries a resume must match, as run.json stores them (JSON round trip: tuples become lists)."""
    fields = {k: v for k, v in config.items() if k not in _RESUMABLE_CHANGES}
    return json.loads(json.dumps(fields, sort_keys=True, default=str))


def _fingerprint(settings: dict) -> str:
    """run.json's short hash of ``_settings`` (a record for readers; prepare_run compares the settings themselves)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


# Data identity (a resume must match the data too, rule 16). A file up to this size is hashed whole (sha256): the
# recordings, pair files, JSON annotation files of the suite's datasets are below it and hash in well under a second,
# and equal contents count as equal data even when copied (mtime ignored). A larger file is named by its size,
# mtime and the sha256 of its first and last MiB (reading GBs at every start would cost more than the resume saves);
# a folder (image folders of 100k files) by its sorted list of relative paths, sizes and mtimes, not by contents.
WHOLE_HASH_LIMIT = 64 * 2**20
_EDGE = 2**20


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if size <= WHOLE_HASH_LIMIT:
            for block in iter(lambda: handle.read(2**20), b""):
                digest.update(block)
            return f"file, {size} bytes, sha256 {digest.hexdigest()[:16]}"
        digest.update(handle.read(_EDGE))
        handle.seek(size - _EDGE)
        digest.update(handle.read(_EDGE))
    return f"file, {size} bytes, mtime_ns {path.stat().st_mtime_ns}, sha256 of first+last MiB {digest.hexdigest()[:16]}"


def _folder_digest(folder: Path) -> str:
    digest, count = hashlib.sha256(), 0
    for root, directories, files in os.walk(folder):
        directories.sort()
        for name in sorted(files):
            path = Path(root) / name
            try:
                stat = path.stat()
            except OSError:
                continue
            digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
            count += 1
    return f"folder, {count} files, sha256 of names/sizes/mtimes {digest.hexdigest()[:16]}"


def _info_paths(info: Any) -> list[str]:
    """Every ``"path"`` value in load_data's ``data.info`` (nested too): the files the data came from."""
    found: list[str] = []
    if isinstance(info, dict):
        for key, value in info.items():
            if key == "path" and isinstance(value, (str, os.PathLike)):
                found.append(str(value))
            else:
                found += _info_paths(value)
    elif isinstance(info, (list, tuple)):
        for value in info:
            found += _info_paths(value)
    return found


def data_identity(info: dict | None, data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """What the data of a run is, for the resume check: the resolved ``--data-dir`` entries (None = the task's
    synthetic default, whose generator parameters are config fields and so in the config fingerprint already),
    and a digest of every existing file or folder they and ``info``'s ``"path"`` entries name (see
    WHOLE_HASH_LIMIT). Generic: it reads only the command line and what load_data returned."""
    named = [part.strip() for part in str(data_dir).split(",") if part.strip()] if data_dir is not None else []
    resolved_dirs = [str(Path(part).resolve()) for part in named] or None
    files: dict[str, str] = {}
    for entry in [*named, *_info_paths(info or {})]:
        path = Path(entry).resolve()
        if str(path) in files or not path.exists():
            continue
        try:
            files[str(path)] = _folder_digest(path) if path.is_dir() else _file_digest(path)
        except OSError as error:
            files[str(path)] = f"unreadable ({error.strerror})"
    return {"data_dir": resolved_dirs, "files": files}


def describe_data_change(before: dict | None, now: dict) -> str:
    """Old and new data in words, for the log line of a run that starts afresh on other data."""
    if not before:
        return "no record of its data"

    def named(identity: dict) -> str:
        return ", ".join(repr(p) for p in identity["data_dir"]) if identity.get("data_dir") else "the synthetic data"

    if before.get("data_dir") != now.get("data_dir"):
        return f"data: {named(before)} → {named(now)}"
    old, new = before.get("files", {}), now.get("files", {})
    changed = [f"{path!r} ({old.get(path, 'absent')} → {new.get(path, 'absent')})"
               for path in sorted(set(old) | set(new)) if old.get(path) != new.get(path)]
    return f"data {named(now)} changed since: " + "; ".join(changed)


def prepare_run(workdir: Path, config: BaseConfig, data: dict | None = None) -> bool:
    """Decides between resuming an interrupted run in WORKDIR and starting afresh; returns resumed.

    Resume only when a BackupAndRestore backup exists AND it was written under the same config
    (else Keras fails deep inside with a shape mismatch, or silently mixes two models) AND, when ``data`` (a
    ``data_identity``) is given, on the same data (else the old preprocessor and epochs would meet new data).
    ``data=None`` (the fit loop's own call, after fitted_preprocessor's) checks the config only and keeps the
    recorded data. A fresh start forgets the previous run's best checkpoint and rotates its CSV log, so that
    "best" and the log describe this run only. Calling it again before training starts changes nothing.
    """
    workdir = Path(workdir)
    backup = workdir / "backup"
    state_path = workdir / "checkpoints" / "run.json"
    resumable = backup.is_dir() and any(backup.iterdir())
    recorded = {}
    if state_path.exists():
        try:
            recorded = json.loads(state_path.read_text())
        except ValueError:
            recorded = {}
        recorded = recorded if isinstance(recorded, dict) else {}  # e.g. a list: no usable record
    # The recorded settings are compared, not the recorded fingerprint: a run interrupted under another version of
    # the suite (another set of resumable keys, another hash) resumes when its settings are this run's.
    recorded_config = recorded.get("config") if isinstance(recorded.get("config"), dict) else {}
    before, now = _settings(recorded_config), _settings(config.to_dict())
    same_settings = bool(recorded_config) and before == now
    if resumable:
        reasons = []
        if not same_settings:
            changed = [f"{key}: {before.get(key)!r} → {now.get(key)!r}" for key in sorted(set(before) | set(now))
                       if before.get(key) != now.get(key)]
            reasons.append(f"a different config ({'; '.join(changed)})" if recorded_config
                           else "no record of its config")
        if data is not None and recorded.get("data") != data:
            reasons.append(f"other data ({describe_data_change(recorded.get('data'), data)})")
        if reasons:
            logger.warning("%s holds an interrupted run with %s; starting afresh instead of resuming it",
                           workdir, " and ".join(reasons))
            shutil.rmtree(backup)
            resumable = False
    if resumable:
        logger.info("Resuming the interrupted run in %s", workdir)
    else:
        best = best_checkpoint_path(workdir)
        for stale in (best, best.with_suffix(".json")):
            stale.unlink(missing_ok=True)
        log = workdir / "logs" / "training.csv"
        if log.exists():
            os.replace(log, log.with_name("training.previous.csv"))
    if data is None and same_settings:
        data = recorded.get("data")  # the fit loop's call: the data recorded by fitted_preprocessor's call stays
    atomic_write_json(state_path, {"fingerprint": _fingerprint(now), "config": config.to_dict(), "data": data})
    return resumable


def fitted_preprocessor(task, data, workdir: Path, data_dir: str | os.PathLike | None = None):
    """The train step's preprocessor and whether the run resumes: an interrupted run in WORKDIR
    (same config, same data: ``data_identity(data.info, data_dir)``) resumes with the preprocessor it was trained
    with; a fresh run fits one on the training split and saves it, before any epoch, to
    WORKDIR/checkpoints/preprocessor/."""
    from common.preprocessor import STATE_FILE, preprocessor_dir

    folder = preprocessor_dir(workdir)
    resumed = prepare_run(workdir, task.config, data_identity(data.info, data_dir))
    if resumed and (folder / STATE_FILE).is_file():
        logger.info("Resuming with the fitted preprocessor in %s (not refitted)", folder)
        return task.Preprocessor.load(folder), True
    preprocessor = task.Preprocessor.fit(task, data, workdir)
    from common.staging import as_final

    # The facts name the data as the finished run will see it (not the staging folder the run writes to).
    preprocessor.save(folder, facts={"config": task.config.to_dict(), "data": as_final(workdir, data.info)})
    return preprocessor, False


def saved_or_trained(task, data, workdir: Path):
    """(model, preprocessor, trained_now) for a bench: WORKDIR's best checkpoint with the preprocessor fitted
    with it, or, when WORKDIR holds no checkpoint, a model trained here (preprocessor fitted and saved too)."""
    from common.errors import TaskError
    from common.preprocessor import STATE_FILE, preprocessor_dir

    best = best_checkpoint_path(workdir)
    folder = preprocessor_dir(workdir)
    if best.exists():
        if not (folder / STATE_FILE).is_file():
            raise TaskError(f"Checkpoint {str(best)!r} has no fitted preprocessor beside it (expected "
                            f"{str(folder / STATE_FILE)!r}); retrain in this --workdir or use another one")
        return keras.saving.load_model(best), task.Preprocessor.load(folder), False
    preprocessor, _ = fitted_preprocessor(task, data, workdir)
    model = task.build_model(data, preprocessor)
    task.fit(model, data, preprocessor, workdir)
    return model, preprocessor, True


def verbosity(config: BaseConfig) -> int:
    """Progress bar on a terminal; one line per epoch in logs and CI (a bar there is noise)."""
    if config.verbose >= 0:
        return config.verbose
    return 1 if sys.stdout.isatty() else 2


def _even_batches(dataset, replicas: int):
    """Trims every batch to a multiple of ``replicas`` examples (and drops batches left empty).

    Trimming batch by batch keeps each batch's shapes, so length-bucketed batches of different
    widths (sentiment) pass through unchanged; unbatching and rebatching would mix widths.
    """
    if not isinstance(dataset, tf.data.Dataset):
        return dataset

    def trim(*batch):
        size = tf.shape(tf.nest.flatten(batch)[0])[0]
        keep = size - size % replicas
        trimmed = tf.nest.map_structure(lambda tensor: tensor[:keep], batch)
        return trimmed if len(trimmed) > 1 else trimmed[0]

    def not_empty(*batch):
        return tf.shape(tf.nest.flatten(batch)[0])[0] > 0

    return dataset.map(trim).filter(not_empty).prefetch(tf.data.AUTOTUNE)


def fit(
    model: keras.Model,
    train,
    validation,
    config: BaseConfig,
    workdir: Path,
    monitor: str = "val_loss",
    mode: str = "min",
    extra_callbacks: list | None = None,
    initial_candidate: bool = False,
    metric_units: dict[str, str] | None = None,
    steps_per_epoch: int | None = None,
) -> dict[str, Any]:
    """Trains ``model`` with the suite's callbacks; returns history and timing for results.json.

    Re-running with the same WORKDIR after a crash resumes from the last finished epoch. After a
    successful run the model holds the best weights seen (EarlyStopping restores them, or they are
    reloaded from the best checkpoint when training ran to the last epoch).

    initial_candidate: score the model before any training and keep it as "epoch 0" of the
    best-checkpoint race (for a warm-started model that training must improve on, not replace).
    metric_units: metric name → its unit, for the y-axes of learning_curves.png (e.g. {"loss": "g²"}).
    steps_per_epoch: batches per epoch of a ``train`` that repeats without end; None = one pass over ``train``.
    """
    workdir = Path(workdir)
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    # Only the TensorFlow backend's models carry a tf.distribute strategy (JAX: keras.distribution instead).
    replicas = getattr(model, "distribute_strategy", tf.distribute.get_strategy()).num_replicas_in_sync
    if replicas > 1:
        # Keras' MirroredStrategy path averages the first batch across replicas before building
        # (keras/src/backend/tensorflow/trainer.py _maybe_symbolic_build), which fails when a batch
        # splits unevenly. Make every batch a multiple of the replica count: at most replicas-1
        # examples per epoch are dropped (training data is reshuffled each epoch).
        logger.info("MirroredStrategy over %d replicas: batches trimmed to multiples of %d", replicas, replicas)
        train = _even_batches(train, replicas)
        validation = _even_batches(validation, replicas)
    from common import distribution

    job = distribution.job()
    if job.kind == "data_parallel":
        # Each process feeds its slice of every global batch (per-process batch = batch_size / processes).
        train = distribution.process_slices(train, job)
        validation = distribution.process_slices(validation, job)
    resumed = prepare_run(workdir, config)
    if not job.writer:
        resumed = distribution.job_resumed()  # process 0's decision (this process's own folder is a scratch one)
    timer = EpochTimer()
    callbacks = default_callbacks(config, workdir, monitor, mode) + [timer] + list(extra_callbacks or [])
    checkpoint = next(c for c in callbacks if isinstance(c, AtomicBestCheckpoint))
    initial = None
    # The starting value survives a resume (the learning curves mark it), and only for this run.
    initial_path = workdir / "checkpoints" / "initial.json"
    if resumed:
        recorded = json.loads(initial_path.read_text()) if initial_path.exists() else {}
        initial = recorded.get("value") if recorded.get("monitor") == monitor else None
    else:
        initial_path.unlink(missing_ok=True)
    if initial_candidate and not resumed:
        with distribution.scope():
            scores = model.evaluate(validation, return_dict=True, verbose=0)  # one pass, logged below
        key = monitor[len("val_"):] if monitor.startswith("val_") else monitor
        if key not in scores:
            raise KeyError(f"initial_candidate monitors {monitor!r}, but evaluate() returned only {sorted(scores)}")
        initial = float(scores[key])
        checkpoint.save_best(model, initial, epoch=0)
        atomic_write_json(initial_path, {"monitor": monitor, "value": initial})
        logger.info("Initial model: %s = %.6g (kept as the best until an epoch beats it)", monitor, initial)
    start = time.perf_counter()
    # shuffle=False: the tf.data pipelines shuffle examples themselves (before batching).
    try:
        with distribution.scope():
            history = model.fit(
                train, validation_data=validation, epochs=config.epochs, callbacks=callbacks,
                verbose=verbosity(config), shuffle=False, steps_per_epoch=steps_per_epoch,
            )
    except Exception as error:
        named = distribution.lost(error)  # a collective failed: name the process that stopped
        if named is error:
            raise
        raise named from error
    seconds = time.perf_counter() - start
    guard = next(c for c in callbacks if isinstance(c, StopOnNonFiniteLoss))
    if guard.diverged_at is not None:
        epoch, batch = guard.diverged_at
        raise TrainingDiverged(
            f"training diverged: the loss became NaN/inf in epoch {epoch} (batch {batch}) with "
            f"learning_rate={config.learning_rate:g}; nothing was exported. Try a smaller learning_rate "
            f"(--set learning_rate=...); logs are in {workdir / 'logs'}"
        )
    distribution.sync("best checkpoint written")  # process 0 writes it; every process restores the same one
    best_path = best_checkpoint_path(distribution.writer_folder(workdir))
    if best_path.exists():
        # The best epoch may predate a resume, so restore from disk rather than from memory.
        best = keras.saving.load_model(best_path, compile=False)
        model.set_weights(best.get_weights())
    if job.kind == "data_parallel":
        distribution.check_same_weights(model)
    epochs_run = len(history.history.get("loss", []))
    best_state = json.loads(checkpoint.state_path.read_text()) if checkpoint.state_path.exists() else {}
    _plot_learning_curves(workdir / "logs" / "training.csv", workdir / "learning_curves.png", monitor, initial,
                          metric_units)
    return {
        "resumed": resumed,
        "monitor": monitor,
        "initial_" + monitor: initial,
        "epochs_run_this_process": epochs_run,
        "best_" + monitor: checkpoint.best,
        # 0 = the warm-started model before any training stayed the best (see initial_candidate).
        "best_epoch": best_state.get("epoch"),
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
        "seconds": seconds,
        "seconds_per_epoch": (sum(timer.seconds) / len(timer.seconds)) if timer.seconds else None,
        "seconds_each_epoch": [float(s) for s in timer.seconds],  # the first includes compilation
    }


START_LABEL = "start (before training)"  # the legend entry of the monitored metric's epoch-0 value


def _plot_learning_curves(csv_path: Path, png_path: Path, monitor: str, initial: float | None = None,
                          units: dict[str, str] | None = None) -> None:
    """Writes ``learning_curves_figure`` of the CSV log (so the curves of a resumed run include the epochs
    before the interruption) to ``png_path``; nothing when the log is missing or empty."""
    import csv

    try:
        with open(csv_path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError:
        return
    if not rows:
        return
    figure = learning_curves_figure(rows, monitor, initial, units)
    import matplotlib.pyplot as plt  # after learning_curves_figure chose the Agg backend

    with atomic_path(png_path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=90)
    plt.close(figure)


def learning_curves_figure(rows: list[dict[str, str]], monitor: str, initial: float | None = None,
                           units: dict[str, str] | None = None):
    """One panel per logged metric (training beside validation, per epoch) from training.csv's rows.

    initial: the monitored metric's validation value before any training (fit's ``initial_<monitor>``,
    the warm start's score). Its panel shows it as epoch 0 and a dashed line, so whether any epoch beat
    the starting model is visible (the best-checkpoint race counts it as epoch 0). units: metric name →
    unit, shown on the y-axis beside the name. Returns the matplotlib Figure (the caller saves and closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    units = units or {}
    names = [k for k in rows[0] if k not in ("epoch", "learning_rate") and not k.startswith("val_")]
    figure, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 3.5), squeeze=False)
    epochs = [int(float(r["epoch"])) for r in rows]
    for axis, name in zip(axes[0], names):
        for key, style in ((name, "tab:blue"), ("val_" + name, "tab:orange")):
            if key in rows[0]:
                axis.plot(epochs, [float(r[key]) if r[key] not in ("", "nan") else float("nan") for r in rows],
                          marker="o", markersize=3, color=style, label=key)
        monitored = "val_" + name == monitor
        if monitored and initial is not None:
            # A dashed level from the starred epoch-0 value: a validation point past it (below, for a loss)
            # beat the starting model.
            axis.plot([0, max(epochs + [1])], [initial, initial], color="black", linestyle="--", linewidth=1.0,
                      marker="*", markersize=10, markevery=[0], label=START_LABEL)
        axis.set_xlabel("epoch" + ("  (0 = before training)" if monitored and initial is not None else ""))
        axis.set_ylabel(f"{name} ({units[name]})" if units.get(name) else name)
        axis.set_title(name + ("  (checkpoint monitor)" if monitored else ""))
        axis.legend()
    figure.tight_layout()
    return figure


def load_best(workdir: Path) -> keras.Model:
    path = best_checkpoint_path(workdir)
    if not path.exists():
        raise FileNotFoundError(f"No trained model at {path}; run the 'train' step first")
    return keras.saving.load_model(path)
