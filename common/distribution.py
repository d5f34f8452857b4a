"""Past one machine: ``--set strategy=data_parallel``, one Keras job over every device of every process (rule 17).

The engine is Keras' own distribution API on the JAX backend: ``keras.distribution.initialize()`` joins JAX's
distributed runtime from Keras' variables, then one ``keras.distribution.DataParallel`` over ``jax.devices()`` (all
local GPUs on one machine; every GPU of every machine in a job) replicates the model and splits each global batch.
Nothing here is a collective of its own: the batches, gradients and metrics go through Keras and JAX, and the few
facts the processes must agree on (process 0's "ready", a failure message, "done") go through the key-value store of
JAX's distributed runtime, which exists for exactly that.

Every process runs the same command line with the same ``--workdir`` (a folder they all see) and:

    KERAS_DISTRIBUTION_JOB_ADDRESSES   host:port of process 0 (where JAX's coordinator listens), or every
                                       process's address, comma-separated (Keras uses the first)
    KERAS_DISTRIBUTION_NUM_PROCESSES   P, the number of processes in the job
    KERAS_DISTRIBUTION_PROCESS_ID      this process's index, 0 .. P-1

What must agree does:
  * one seed: the same config in every process, and the seed is set again right before the model is built (process 0
    fits the preprocessor in between, which draws random numbers the others do not);
  * one fitted preprocessor: process 0 fits it (or resumes with the saved one) into WORKDIR/.staging; the others read
    it from there after process 0 says "ready";
  * the data: every process builds the task's pipeline over all training examples (same seed: the same global
    batches) and keeps its own slice of every global batch, batch_size / P examples (``process_slices``). So a step
    sees the same examples as one process with the same batch_size, and an epoch covers every example once;
  * evaluation: process 0 alone, on the best checkpoint loaded onto one of its devices: one result for the job.
Only process 0 takes the WORKDIR lock and writes into WORKDIR (results.json, checkpoints, logs, export). The others
write their own logs into a temporary folder, which goes when they end; on a resume they restore process 0's
backup (read-only), so every process resumes from the same epoch with the same weights.

A process that fails records why in the runtime's key-value store and ends at once; the others stop at their next
collective with an error naming it (a process that was killed records nothing: with two processes it is "the other
one", with more it is named when it recorded an error). Re-running the same commands resumes from process 0's last
finished epoch, as a single process does. A JAX run (one process or several) ends with process 0 exporting the
SavedModel in a child process under the TensorFlow backend (``export_in_child``), from the saved checkpoint and
preprocessor.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common.errors import RunFailed, UsageError

ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
KEY = "rnn_suite"  # prefix of this suite's keys in the runtime's key-value store
POLL_SECONDS = 0.5  # how often a waiting process looks at the key-value store
GRACE_SECONDS = 3.0  # after a failed collective: time for the failed process to record why, before naming it

logger = logging.getLogger("run")


class JobFailed(RunFailed):
    """A process of the job failed or was lost: one ``error:`` line naming it, exit code 1."""


@dataclasses.dataclass(frozen=True)
class Job:
    """What this process is part of. ``kind`` is config.strategy; a run without strategy=data_parallel is a job of
    one process whatever its devices."""

    kind: str = "default"
    processes: int = 1
    process_id: int = 0
    devices: int = 1  # devices the model is replicated over, in all processes together
    local_devices: int = 1
    coordinator: str | None = None  # host:port of process 0's coordinator (jobs of several processes)

    @property
    def writer(self) -> bool:
        """Process 0 alone writes into WORKDIR."""
        return self.process_id == 0

    @property
    def several(self) -> bool:
        return self.processes > 1


_job = Job()
_state: dict[str, Any] = {"writer_folder": None, "exit_code": None, "weights": None, "distribution": None,
                          "resumed": False}


def job() -> Job:
    return _job


def requested() -> tuple[int, int, str | None]:
    """(processes, process id, addresses) from Keras' variables; (1, 0, None) when they are not set. Malformed
    values are a UsageError naming the variable."""
    values = {}
    for name in (PROCESSES, PROCESS_ID):
        text = os.environ.get(name, "").strip()
        try:
            values[name] = int(text) if text else None
        except ValueError:
            raise UsageError(f"{name}={text!r}: expected an integer") from None
    processes, process_id = values[PROCESSES], values[PROCESS_ID]
    addresses = os.environ.get(ADDRESSES, "").strip() or None
    if processes is None or processes == 1:
        return 1, 0, addresses
    if processes < 1:
        raise UsageError(f"{PROCESSES}={processes}: expected the number of processes of the job (1 or more)")
    if process_id is None or not 0 <= process_id < processes:
        raise UsageError(f"{PROCESS_ID}={os.environ.get(PROCESS_ID)!r}: expected this process's index in the job, "
                         f"0 to {processes - 1} ({PROCESSES}={processes})")
    if addresses is None:
        raise UsageError(f"{PROCESSES}={processes} but {ADDRESSES} is not set: expected host:port of process 0 "
                         f"(the job's coordinator), the same in every process")
    return processes, process_id, addresses


def check(config, action: str = "run", steps_text: str = "train") -> None:
    """The command line against Keras' variables and the backend, before anything runs: one UsageError each."""
    processes, _, _ = requested()
    steps = [step.strip() for step in steps_text.split(",") if step.strip()]
    if processes > 1 and config.strategy != "data_parallel":
        raise UsageError(f"{PROCESSES}={processes} asks for a job of {processes} processes, which only "
                         f"--set strategy=data_parallel (under KERAS_BACKEND=jax) runs; this run has "
                         f"strategy={config.strategy!r}")
    if processes > 1 and config.seeds:
        raise UsageError(f"--set seeds=... runs one process per seed, which a job of {processes} processes cannot; "
                         f"run one job per seed with --set seed=N (and its own --workdir)")
    if processes > 1 and action != "run":
        raise UsageError(f"run.py ... {action} runs in one process; expected it without the KERAS_DISTRIBUTION_* "
                         f"variables ({PROCESSES}={processes} is set)")
    if processes > 1 and "train" not in steps:
        raise UsageError(f"--steps {steps_text} in a job of {processes} processes: only training runs in several "
                         f"processes; evaluate or export in one process (without the KERAS_DISTRIBUTION_* "
                         f"variables)")
    if config.strategy != "data_parallel":
        return  # (Keras not imported: a --set seeds=... run's own process stays light)
    import keras

    backend = keras.backend.backend()
    if backend != "jax":
        raise UsageError(f"--set strategy=data_parallel runs on Keras' distribution API, which needs the JAX backend "
                         f"(this run's is {backend!r}): KERAS_BACKEND=jax python run.py ... --set "
                         f"strategy=data_parallel; on the devices of one machine the TensorFlow backend has "
                         f"--set strategy=mirrored")


def start(config) -> Job:
    """Joins the job (strategy=data_parallel) before JAX computes anything; returns this process's Job."""
    global _job
    if config.strategy != "data_parallel":
        _job = Job(kind=config.strategy)
        return _job
    import jax

    processes, process_id, addresses = requested()
    if processes > 1:
        # CPU processes exchange gradients through gloo (JAX's default CPU collectives do not span processes);
        # GPU devices use NCCL whatever this says.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        import keras

        try:
            keras.distribution.initialize()  # reads the three KERAS_DISTRIBUTION_* variables
        except Exception as error:  # e.g. the other processes never connected (JAX waits 5 minutes)
            raise JobFailed(f"process {process_id} of {processes} could not join the job at {addresses} "
                            f"({ADDRESSES}): {_first_line(error)}; expected every process to start with the same "
                            f"{ADDRESSES} and {PROCESSES}, and process 0 reachable there") from None
        # Registered after JAX's own exit handler, so it runs first (atexit is last-in, first-out): a process whose
        # job failed leaves without waiting at JAX's shutdown barrier for processes that are gone (it would wait
        # out the heartbeat timeout, then abort with a C++ stack trace).
        atexit.register(_leave_fast)
    devices = jax.devices()
    _job = Job(kind="data_parallel", processes=processes, process_id=process_id, devices=len(devices),
               local_devices=jax.local_device_count(), coordinator=addresses.split(",")[0] if processes > 1 else None)
    if processes > 1:
        logger.info("process %d of %d in the job at %s: %d devices in all, %d here", process_id, processes,
                    _job.coordinator, _job.devices, _job.local_devices)
    return _job


def data_parallel():
    """The job's ``keras.distribution.DataParallel`` over every device of every process (made once)."""
    if _state["distribution"] is None:
        import jax
        import keras

        # auto_shard_dataset=False: each process already feeds its own slice of the global batch (process_slices).
        _state["distribution"] = keras.distribution.DataParallel(devices=jax.devices(), auto_shard_dataset=False)
    return _state["distribution"]


def scope():
    """The job's distribution scope under strategy=data_parallel; nothing otherwise. The model is built and fitted
    in it; preprocessing and evaluation run outside it, on one device of their process."""
    return data_parallel().scope() if _job.kind == "data_parallel" else contextlib.nullcontext()


class Strategy:
    """What runner.py's steps use of a strategy (``scope()``, ``num_replicas_in_sync``) for strategy=data_parallel."""

    def __init__(self, job: Job):
        self.num_replicas_in_sync = job.devices

    def scope(self):
        return scope()


# --- the data ---------------------------------------------------------------------------------------------------
def process_slices(dataset, job: Job):
    """Each global batch of ``dataset`` trimmed to a multiple of the job's devices (JAX splits a batch evenly) and
    cut into ``job.processes`` equal slices, of which this process keeps its own: per-process batch = global batch / P.
    Every process builds the same global batches (same seed), so a step sees the same examples as one process would,
    and every batch keeps its shapes (length-bucketed batches stay as they are). Batches left empty are dropped."""
    import tensorflow as tf

    if not isinstance(dataset, tf.data.Dataset) or (job.devices == 1 and job.processes == 1):
        return dataset

    def mine(*batch):
        size = tf.shape(tf.nest.flatten(batch)[0])[0]
        share = (size - size % job.devices) // job.processes
        start = job.process_id * share
        kept = tf.nest.map_structure(lambda tensor: tensor[start:start + share], batch)
        return kept if len(kept) > 1 else kept[0]

    def not_empty(*batch):
        return tf.shape(tf.nest.flatten(batch)[0])[0] > 0

    return dataset.map(mine).filter(not_empty).prefetch(tf.data.AUTOTUNE)


# --- where each process writes ---------------------------------------------------------------------------------
def job_resumed() -> bool:
    """Whether process 0 resumes an interrupted run (what it said when ready)."""
    return bool(_state["resumed"])


def writer_folder(workdir: Path) -> Path:
    """Process 0's run folder (its staging folder), which every process reads the shared state from: ``workdir``
    itself in process 0 and in a job of one process."""
    return Path(_state["writer_folder"]) if _state["writer_folder"] is not None else Path(workdir)


def job_backup(backup, shared_dir: Path):
    """``backup`` (the BackupAndRestore callback a single process uses, saving into this process's folder) made
    fit for a job of several processes: every process restores from process 0's backup (``shared_dir``), after a
    barrier, so that all restore the same epoch; each then saves its own copy (process 0 into WORKDIR's staging
    folder, the others into their temporary folder). Every process does the same saving and loading: those touch
    replicated variables, which JAX handles in all processes together. ``backup`` itself in a job of one process."""
    if not _job.several:
        return backup
    base = type(backup)

    class JobBackupAndRestore(base):
        def on_train_begin(self, logs=None):
            sync("restore the backup")
            if _job.writer:
                super().on_train_begin(logs)  # Keras falls back to the older copy of a damaged backup here
                return
            reader = base(backup_dir=str(shared_dir))
            reader.set_model(self.model)
            reader._load_model()

    backup.__class__ = JobBackupAndRestore  # the same object and settings, with the job's restore
    return backup


# --- agreement between the processes ---------------------------------------------------------------------------
def _client():
    from jax._src import distributed  # the runtime's key-value store: no public name for it in JAX 0.10

    return distributed.global_state.client


def sync(name: str) -> None:
    """Waits until every process of the job got here (JAX's own barrier over the devices); nothing in one process."""
    if _job.several:
        from jax.experimental import multihost_utils

        try:
            multihost_utils.sync_global_devices(f"{KEY} {name}")
        except Exception as error:
            raise lost(error) from error


def _put(key: str, value: Any) -> None:
    try:
        _client().key_value_set(f"{KEY}/{key}", json.dumps(value), allow_overwrite=True)
    except Exception as error:  # the coordinator is gone: nobody is left to tell
        logger.debug("could not record %s in the job's key-value store: %s", key, error)


def _get(key: str) -> Any:
    try:
        text = _client().key_value_try_get(f"{KEY}/{key}")
    except Exception as error:
        if "NOT_FOUND" in str(error) or "not found" in str(error).lower():
            return None
        raise JobFailed(f"process {_job.process_id} of {_job.processes} lost the job's coordinator (process 0 at "
                        f"{_job.coordinator}): {_first_line(error)}; process 0 stopped? See its output; run the same "
                        f"commands again to resume") from None
    return json.loads(text)


def _failure(process_id: int) -> str | None:
    return _get(f"failed/{process_id}")


def _wait_for(key: str, from_processes: list[int], what: str) -> list[Any]:
    """Waits until each of ``from_processes`` recorded ``key/ID`` (or ``key`` for process 0); a process that
    recorded a failure instead stops the wait with a JobFailed naming it."""
    found: dict[int, Any] = {}
    while len(found) < len(from_processes):
        for process_id in from_processes:
            if process_id in found:
                continue
            failure = _failure(process_id)
            if failure is not None:
                raise JobFailed(f"process {process_id} of {_job.processes} failed {what}: {failure}")
            value = _get(key if process_id == 0 else f"{key}/{process_id}")
            if value is not None:
                found[process_id] = value
        if len(found) < len(from_processes):
            time.sleep(POLL_SECONDS)
    return [found[process_id] for process_id in from_processes]


def announce_ready(resumed: bool) -> None:
    """Process 0, its preprocessor saved: tells the others they may read it, and waits until they loaded their data
    and that preprocessor (a process that failed before training stops the job here, not in a collective: building
    the model already is one, JAX checks that every process creates the same initial values)."""
    if not _job.several:
        return
    _put("ready", {"resumed": bool(resumed)})
    _wait_for("loaded", list(range(1, _job.processes)), "before training")


def await_ready() -> dict:
    """A process other than 0: waits for process 0's preprocessor (or its failure)."""
    return _wait_for("ready", [0], "before training (while loading the data or fitting the preprocessor)")[0]


def announce_loaded() -> None:
    _put(f"loaded/{_job.process_id}", True)


def announce_done(error: BaseException | None = None) -> None:
    """Process 0 at the end of its run (the others wait for it before they leave the job together)."""
    if _job.several and _job.writer:
        _put("done", {"ok": error is None})


def await_done() -> None:
    _wait_for("done", [0], "after training (in evaluation, export or replacing the finished run)")


def record_failure(error: BaseException) -> None:
    """Called with any error that ends this process's run: the others name it, and this process leaves the job at
    once (exit code as run.py gives it)."""
    if not _job.several:
        return
    if not isinstance(error, JobFailed):  # a JobFailed is about another process; this one only follows
        _put(f"failed/{_job.process_id}", f"{type(error).__name__}: {_first_line(error)}")
    _state["exit_code"] = _exit_code(error)


def _exit_code(error: BaseException) -> int:
    from common.config import ConfigError
    from common.errors import DataError, TaskError

    if isinstance(error, KeyboardInterrupt):
        return 130
    if isinstance(error, RunFailed):
        return 1
    if isinstance(error, (UsageError, ConfigError, TaskError, DataError, FileNotFoundError, PermissionError)):
        return 2
    return 1


def _leave_fast() -> None:
    code = _state["exit_code"]
    if code is None:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def lost(error: BaseException) -> BaseException:
    """The error to raise when a collective of the job failed: a JobFailed naming the process that recorded a
    failure, or the other process of a job of two; ``error`` itself when this process alone is at fault."""
    if not _job.several or isinstance(error, JobFailed):
        return error
    text = str(error)
    collective = any(word in text for word in ("Gloo", "gloo", "NCCL", "Connection reset", "connection closed",
                                               "UNAVAILABLE", "DEADLINE_EXCEEDED", "Socket closed", "peer"))
    deadline = time.monotonic() + GRACE_SECONDS
    others = [p for p in range(_job.processes) if p != _job.process_id]
    while True:
        try:
            failures = {p: _failure(p) for p in others}
        except JobFailed as gone:  # the coordinator (process 0) is gone with its store
            return gone
        failures = {p: why for p, why in failures.items() if why is not None}
        if failures or time.monotonic() > deadline or not collective:
            break
        time.sleep(POLL_SECONDS)
    resume = "run the same commands again to resume from the last finished epoch"
    if failures:
        named = "; ".join(f"process {p} failed: {why}" for p, why in sorted(failures.items()))
        return JobFailed(f"process {_job.process_id} of {_job.processes} stopped: {named}; {resume}")
    if not collective:
        return error
    who = f"process {others[0]}" if len(others) == 1 else f"one of processes {others}"
    return JobFailed(f"process {_job.process_id} of {_job.processes} stopped: {who} of the job stopped answering "
                     f"(killed, out of memory, or its machine is gone) while they trained together "
                     f"({_first_line(error)}); see that process's output, then {resume}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:400]


# --- the weights are the same everywhere -----------------------------------------------------------------------
def weights_digest(model) -> str:
    digest = hashlib.sha256()
    for value in model.get_weights():
        digest.update(str(value.shape).encode() + str(value.dtype).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def check_same_weights(model) -> dict[str, Any]:
    """Every process's digest of the trained weights, gathered by JAX (``process_allgather``); a difference is an
    error, since the processes were meant to hold one model."""
    digest = weights_digest(model)
    record: dict[str, Any] = {"weights_sha256": digest[:16]}
    if _job.several:
        import numpy as np
        from jax.experimental import multihost_utils

        try:
            gathered = multihost_utils.process_allgather(np.frombuffer(bytes.fromhex(digest), dtype=np.uint8))
        except Exception as error:
            raise lost(error) from error
        digests = [bytes(row).hex()[:16] for row in np.asarray(gathered)]
        if len(set(digests)) != 1:
            raise JobFailed(f"the processes of the job ended training with different weights (sha256 {digests}); "
                            f"expected one model: the same command, data and seed in every process")
        record["weights_identical_in_every_process"] = True
    _state["weights"] = record
    logger.info("process %d of %d: trained weights sha256 %s", _job.process_id, _job.processes, digest[:16])
    return record


def report(config, strategy) -> dict[str, Any]:
    """results.json's devices.distribution: what ran, for every run (a run of one process says processes: 1)."""
    if _job.kind == "data_parallel":
        record = {"kind": "data_parallel", "engine": "keras.distribution.DataParallel (JAX)",
                  "processes": _job.processes, "devices": _job.devices,
                  "devices_per_process": _job.local_devices, "global_batch_size": config.batch_size,
                  "batch_size_per_process": config.batch_size // _job.processes}
        if _job.several:
            record["coordinator"] = _job.coordinator
    else:
        record = {"kind": config.strategy, "engine": "tf.distribute.MirroredStrategy" if config.strategy == "mirrored"
                  else "one device", "processes": 1, "devices": int(strategy.num_replicas_in_sync)}
    return {**record, **(_state["weights"] or {})}


# --- the model process 0 evaluates ---------------------------------------------------------------------------------
def local_model(model, workdir: Path):
    """Under strategy=data_parallel, the best checkpoint loaded outside the distribution (onto one device of this
    process), which process 0 evaluates alone: a replicated model's predictions would need every process."""
    if _job.kind != "data_parallel":
        return model
    from common import training

    return training.load_best(workdir)


# --- the processes other than 0 ------------------------------------------------------------------------------
SCRATCH_PREFIX = "rnn_suite_process"  # + process id, "_pid" + the OS process id, "_" + mkdtemp's random part


def sweep_scratch(root: str | os.PathLike | None = None) -> list[Path]:
    """Removes the scratch folders (see ``follow``) of processes that no longer run: a process killed outright
    (SIGKILL, out of memory) cannot remove its own. Returns the folders removed. A folder whose OS process still
    runs, or belongs to another user (no permission to signal it), stays."""
    import re
    import shutil

    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob(f"{SCRATCH_PREFIX}*_pid*_*"):
        match = re.fullmatch(rf"{SCRATCH_PREFIX}\d+_pid(\d+)_.*", folder.name)
        if not match or not folder.is_dir():
            continue
        try:
            os.kill(int(match.group(1)), 0)  # signal 0: only asks whether the process exists
            continue
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    if removed:
        logger.info("removed %d scratch folder(s) of processes that no longer run", len(removed))
    return removed


def follow(task_class, options, config, workdir: Path) -> dict:
    """Process k > 0 of a job: trains beside process 0 and writes nothing into WORKDIR. Its own logs go into a
    temporary folder, removed at the end; the preprocessor and a resumed run's backup are process 0's."""
    import shutil

    from common import training
    from common.staging import STAGING

    shared = Path(workdir) / STAGING
    _state["writer_folder"] = shared
    sweep_scratch()
    scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{_job.process_id}_pid{os.getpid()}_"))
    try:
        training.setup(config)
        task = task_class(config)
        state = await_ready()  # process 0 has downloaded and read the data, and fitted the preprocessor
        _state["resumed"] = bool(state.get("resumed"))
        # --download without --data-dir: the files process 0 fetched into WORKDIR/downloads, not a second copy.
        task.download = options.download
        data_dir = options.data_dir if options.data_dir is not None or not options.download else shared / "downloads"
        data = task.load_data(data_dir, scratch)
        from common.preprocessor import preprocessor_dir

        preprocessor = task.Preprocessor.load(preprocessor_dir(shared))
        announce_loaded()
        training.reseed(config)  # as process 0 does after its preprocessor: the same initial weights everywhere
        with scope():
            model = task.build_model(data, preprocessor)
        logger.info("process %d of %d: %s", _job.process_id, _job.processes,
                    "resuming process 0's interrupted run" if state.get("resumed") else "training")
        record = task.fit(model, data, preprocessor, scratch)
        await_done()
        epochs = record.get("epochs_run_this_process")
        print(f"process {_job.process_id} of {_job.processes}: trained {epochs} epoch{'' if epochs == 1 else 's'} "
              f"beside process 0, which wrote {workdir}")
        return record
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- the export of a JAX run ---------------------------------------------------------------------------------------
def export_in_child(task, options, workdir: Path) -> dict[str, Any]:
    """The export step of a run whose backend is not TensorFlow: a child process with KERAS_BACKEND=tensorflow
    exports ``workdir``'s best checkpoint and fitted preprocessor (backend-neutral files) and writes the samples;
    returns results.json's "export" record. The SavedModel graph (preprocessing, decoders) is TensorFlow's."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    request = {"task": task.name, "preset": options.preset, "overrides": list(options.overrides),
               "data_dir": None if options.data_dir is None else str(options.data_dir),
               "download": bool(options.download), "workdir": str(workdir)}
    environment = {key: value for key, value in os.environ.items() if not key.startswith("KERAS_DISTRIBUTION_")}
    environment.update(KERAS_BACKEND="tensorflow",
                       PYTHONPATH=os.pathsep.join(filter(None, [str(root), environment.get("PYTHONPATH")])))
    logger.info("exporting the SavedModel under the TensorFlow backend (a child process)")
    # The child is tasks/export_child.py: it needs the task registry, which common/ may not import.
    child = subprocess.run([sys.executable, "-m", "tasks.export_child", json.dumps(request)],
                           stdout=subprocess.PIPE, text=True, env=environment, cwd=root)
    lines = child.stdout.strip().splitlines()
    if child.returncode != 0 or not lines:
        raise JobFailed(f"the export under the TensorFlow backend failed (exit code {child.returncode}; its "
                        f"output is above); the trained checkpoint is in {workdir / 'checkpoints'}")
    return json.loads(lines[-1])


# --- a job on this machine: the tests and the bench ---------------------------------------------------------------
def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_local(arguments: list[str], processes: int, port: int | None = None, log_folder: Path | None = None,
                 environment: dict[str, str] | None = None) -> list:
    """Starts ``python run.py ARGUMENTS`` as a job of ``processes`` processes on this machine (JAX on CPU,
    coordinator on 127.0.0.1): returns the Popen objects, process 0 first. Their stdout/stderr go to
    LOG_FOLDER/process-N.out/.err (else pipes)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    port = port or free_port()
    running = []
    for process_id in range(processes):
        env = {**os.environ, **(environment or {}), "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
               "PYTHONPATH": str(root)}
        if processes > 1:
            env.update({ADDRESSES: f"127.0.0.1:{port}", PROCESSES: str(processes), PROCESS_ID: str(process_id)})
        else:
            for name in (ADDRESSES, PROCESSES, PROCESS_ID):
                env.pop(name, None)
        if log_folder is not None:
            Path(log_folder).mkdir(parents=True, exist_ok=True)
            out = open(Path(log_folder) / f"process-{process_id}.out", "w")
            err = open(Path(log_folder) / f"process-{process_id}.err", "w")
        else:
            out = err = subprocess.PIPE
        running.append(subprocess.Popen([sys.executable, str(root / "run.py"), *arguments], stdout=out, stderr=err,
                                        env=env, text=True, cwd=root))
    return running


def bench(task: str = "acceleration", preset: str = "tiny", overrides: tuple[str, ...] = (
        "synthetic_seconds=10", "epochs=6", "early_stopping_patience=0", "tensorboard=false", "linear_skip=false"),
        processes: tuple[int, ...] = (1, 2), folder: Path | None = None) -> dict[str, Any]:
    """Examples per second of training with 1 and with 2 processes of a data_parallel job on this machine (same
    global batch, same data), from each run's fastest epoch after the first (which compiles): on a machine shared
    with other work the fastest epoch is the least disturbed one. ``train_windows`` (the examples of an epoch)
    comes from the task's data facts (acceleration); other tasks report seconds per epoch."""
    folder = Path(folder or tempfile.mkdtemp(prefix="rnn_suite_distribution_bench_"))
    figures: dict[str, Any] = {"task": task, "preset": preset, "overrides": list(overrides), "runs": {}}
    for count in processes:
        workdir = folder / f"processes-{count}"
        arguments = [task, "--preset", preset, "--workdir", str(workdir), "--steps", "train",
                     "--set", "strategy=data_parallel", *[part for o in overrides for part in ("--set", o)]]
        started = time.perf_counter()
        running = launch_local(arguments, count, log_folder=folder / f"logs-{count}")
        codes = [process.wait() for process in running]
        wall = time.perf_counter() - started
        if any(codes):
            raise JobFailed(f"bench: the {count}-process run failed (exit codes {codes}); logs in "
                            f"{folder / f'logs-{count}'}")
        results = json.loads((workdir / "results.json").read_text())
        epochs = results["training"]["seconds_each_epoch"]
        seconds = min(epochs[1:] or epochs)
        examples = (results.get("data") or {}).get("train_windows")
        figures["runs"][count] = {"seconds_per_epoch": seconds, "seconds_each_epoch": epochs, "wall_seconds": wall,
                                  "examples_per_second": examples / seconds if examples else None,
                                  "devices": results["devices"]["distribution"]}
    if len(processes) == 2:
        one, two = (figures["runs"][count]["seconds_per_epoch"] for count in processes)
        figures[f"speed_{processes[1]}_vs_{processes[0]}"] = one / two
    return figures


if __name__ == "__main__":
    # python -m common.distribution bench [OUTPUT.json]   (1 vs 2 processes on this machine)
    if len(sys.argv) in (2, 3) and sys.argv[1] == "bench":
        measured = bench()
        text = json.dumps(measured, indent=1)
        print(text)
        if len(sys.argv) == 3:
            Path(sys.argv[2]).write_text(text + "\n")
    else:
        sys.exit("usage: python -m common.distribution bench [OUTPUT.json]")
