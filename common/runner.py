"""Running one task's command: a run's steps (train, evaluate, export) into WORKDIR, ``bench``, a ``--set
seeds=...`` series of runs, ``predict`` and ``score``; and what the console shows after them.

run.py parses and checks the command line (``run.parse_command``: task, options, config, ``--steps``) and hands
the result here. Nothing here knows any task by name: everything goes through common.task.Task. Importing this
module does not import TensorFlow; the steps import it when they run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import numbers
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from common.errors import RunFailed, UsageError

STEPS = ("train", "evaluate", "export")
RUN_PY = Path(__file__).resolve().parents[1] / "run.py"  # what a seed's own process runs


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def run(task_class, options: argparse.Namespace, action: str, config) -> dict:
    """``run.py TASK [run|bench]``: one process's part of the run. Under ``--set strategy=data_parallel`` with
    Keras' KERAS_DISTRIBUTION_* variables it first joins the job (common.distribution): process 0 runs the steps
    into WORKDIR as a single run does, the others train beside it and write nothing there."""
    from common import distribution

    distribution.check(config, action, getattr(options, "steps", "train"))  # bench has no --steps
    job = distribution.start(config)
    if not job.several:
        return _run_here(task_class, options, action, config)
    try:
        if not job.writer:
            workdir = (options.workdir or Path("runs") / task_class.name).resolve()
            return distribution.follow(task_class, options, config, workdir)
        results = _run_here(task_class, options, action, config)
        distribution.announce_done()
        return results
    except BaseException as error:
        distribution.record_failure(error)  # the other processes name this one; this one leaves the job at once
        raise


def _run_here(task_class, options: argparse.Namespace, action: str, config) -> dict:
    """The run in this process: ``options`` and ``config`` as run.parse_command checked them. Checks the paths
    (the data exists, WORKDIR is a folder), then runs the steps once, or once per seed of ``--set seeds=...``."""
    if options.data_dir is not None and not options.data_dir.exists() and not options.download:
        from common.io import describe_missing_path

        # A comma-separated list of files (acceleration: several recordings) is checked entry by entry.
        if "," not in str(options.data_dir):
            raise UsageError(f"--data-dir {str(options.data_dir)!r} {describe_missing_path(options.data_dir)}")
        missing = [f"{part.strip()!r} {describe_missing_path(part.strip())}"
                   for part in str(options.data_dir).split(",") if not Path(part.strip()).exists()]
        if missing:
            raise UsageError(f"--data-dir {str(options.data_dir)!r}: {'; '.join(missing)}")
    workdir = (options.workdir or Path("runs") / task_class.name).resolve()
    if workdir.exists() and not workdir.is_dir():
        raise UsageError(f"--workdir {str(workdir)!r} is a file; expected a folder (new or from an earlier run)")
    created = not workdir.exists()
    from common.workdir_lock import WorkdirLock

    # One run at a time in WORKDIR (rule 16); a seeds run holds WORKDIR while each seed locks its seed-N folder.
    lock = WorkdirLock(workdir)
    try:
        try:
            workdir.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except PermissionError as error:
            raise UsageError(f"--workdir {str(workdir)!r} cannot be written ({error.strerror}: "
                             f"{error.filename!r}); expected a folder this user may write, or one it may "
                             f"create") from None
    except BaseException:
        if created and workdir.is_dir() and not any(workdir.iterdir()):
            workdir.rmdir()
        raise
    try:
        if config.seeds:
            return run_seeds(task_class, options, config, workdir)
        return run_in(task_class, options, action, config, workdir)
    except BaseException:
        lock.release()
        if created:
            _remove_half_made(workdir)
        raise
    finally:
        lock.release()


def _remove_half_made(workdir: Path) -> None:
    """A WORKDIR this failed run created goes again, with the synthetic data or caches it made, unless it keeps
    what a re-run resumes (an interrupted run's staging folder) or a finished run."""
    from common.staging import STAGING, run_entries

    if workdir.is_dir() and not run_entries(workdir) and not (workdir / STAGING).exists():
        shutil.rmtree(workdir, ignore_errors=True)


def parse_steps(text: str) -> list[str]:
    """``--steps`` as a list, or one usage error (the command line, a single run and a seeds run check it alike)."""
    steps = [s.strip() for s in text.split(",") if s.strip()]
    if not steps or any(s not in STEPS for s in steps):
        raise UsageError(f"--steps {text!r}: expected a comma-separated subset of {list(STEPS)}")
    return steps


def run_in(task_class, options: argparse.Namespace, action: str, config, workdir: Path) -> dict:
    """One run in ``workdir``: bench, or the requested steps; writes results.json and prints the summary."""
    from common import report, training
    from common.io import atomic_write_json

    training.setup(config)
    task = task_class(config)
    task.download = options.download

    from common.staging import Staging

    # Every step, bench included, writes into WORKDIR/.staging; the finished run in WORKDIR is replaced only when
    # they all succeed (a bench that trains or fits a preprocessor would otherwise overwrite the run's own).
    staging = Staging(workdir)
    if action == "bench":
        try:
            results = task.bench(options.data_dir, staging.prepare(train=False))
            results = staging.final_path({"task": task.name, "preset": options.preset, "config": config.to_dict(),
                                          **results, "versions": report.versions(task.extra_packages),
                                          "hardware": report.hardware(), "devices": training.device_report(),
                                          "date": now()})
            atomic_write_json(staging.folder / "bench.json", results)
            staging.commit()
        except BaseException as error:
            _after_failure(error, staging, workdir, keep=False)
            raise
        title = f"{task.name} bench → {workdir / 'bench.json'}"
        print(report.format_table(results.get("figures", results), title=title))
        return results

    steps = parse_steps(options.steps)
    train = "train" in steps
    try:
        results = _run_steps(task, options, config, steps, staging.prepare(train=train))
        results = staging.final_path(results)  # results.json names the final WORKDIR's files
        atomic_write_json(staging.folder / "results.json", results)
        staging.commit()
    except BaseException as error:
        _after_failure(error, staging, workdir, keep=train)
        raise
    seconds = results["seconds"]
    if "metrics" in results:
        title = f"{task.name} ({options.preset}) → {workdir / 'results.json'}"
        print(report.format_summary(results["metrics"], task.higher_is_better, title=title))
    print(report.format_table({"seconds": seconds}))
    for line in closing_lines(task, results, options.preset, workdir):
        print(line)
    if "export" in results:
        print("try the exported model: python " + shlex.join(results["export"]["predict_example"]))
    return results


def _after_failure(error: BaseException, staging, workdir: Path, keep: bool) -> None:
    """A failed bench or run: its staging folder goes, unless ``keep`` (a train step) and it holds something (an
    interrupted run's state to resume, a failed run's logs the error points to). A one-line error then names
    WORKDIR's paths, not the staging folder's, and says that the finished run in WORKDIR was kept. A
    KeyboardInterrupt only keeps or removes the folder."""
    if not staging.abandon(keep=keep) and isinstance(error, Exception):
        _rewrite_paths(error, staging)
    if isinstance(error, Exception) and staging.has_finished_run:
        _say_finished_run_kept(error, workdir)


def _rewrite_paths(error: Exception, staging) -> None:
    if len(error.args) == 1 and isinstance(error.args[0], str):
        error.args = (staging.final_path(error.args[0]),)


def _say_finished_run_kept(error: Exception, workdir: Path) -> None:
    """Appends to a failed run's one-line error that the finished run in WORKDIR is as it was."""
    kept = f"; the finished run in {workdir} was kept unchanged"
    if len(error.args) == 1 and isinstance(error.args[0], str) and not isinstance(error, KeyError):
        error.args = (error.args[0] + kept,)
    elif isinstance(error, OSError) and error.strerror:
        error.strerror += kept


def _run_steps(task, options: argparse.Namespace, config, steps: list[str], workdir: Path) -> dict:
    """The steps of one run, all writing under ``workdir`` (the staging folder); returns results.json's dict."""
    import keras

    from common import distribution, export, report, training
    from common.preprocessor import preprocessor_dir

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    data = task.load_data(options.data_dir, workdir)
    seconds["load_data"] = time.perf_counter() - start

    strategy = training.make_strategy(config)
    results: dict = {
        "task": task.name,
        "preset": options.preset,
        "command": typed_command(),
        "date": now(),
        "primary_metric": task.primary_metric,
        "config": config.to_dict(),
        "data": data.info,
    }
    preprocessor_folder = preprocessor_dir(workdir)
    if "train" in steps:
        start = time.perf_counter()
        with training.preprocessing_scope(strategy):  # encoder pretraining, feature caching: the strategy's devices
            preprocessor, resumed = training.fitted_preprocessor(task, data, workdir, options.data_dir)
        if not resumed:
            seconds["fit_preprocessor"] = time.perf_counter() - start
        distribution.announce_ready(resumed)  # a job's other processes read the preprocessor now
        training.reseed(config)
        start = time.perf_counter()
        with strategy.scope():
            model = task.build_model(data, preprocessor)
        results["training"] = task.fit(model, data, preprocessor, workdir)
        seconds["train"] = time.perf_counter() - start
    else:
        preprocessor = task.Preprocessor.load(preprocessor_folder)
        with strategy.scope():
            model = training.load_best(workdir)
        previous = previous_results(workdir / "results.json")
        if "training" in previous:
            # Keep the record of how the evaluated model was trained (an earlier invocation's train step).
            results["training"] = {**previous["training"], "from_earlier_run": previous.get("date")}
    model = distribution.local_model(model, workdir)  # data_parallel: process 0 evaluates alone, on one device
    results["model"] = training.model_report(model)
    if results["model"]["jit_compile"]["requested"] and not results["model"]["jit_compile"]["effective"]:
        logging.getLogger("run").warning("jit_compile=true is not in effect: the LSTMs take cuDNN's kernel, which "
                                         "XLA cannot compile (Keras turns XLA off for such models)")
    if "evaluate" in steps:
        start = time.perf_counter()
        results["metrics"] = task.evaluate(model, data, preprocessor, workdir)
        seconds["evaluate"] = time.perf_counter() - start
    if "export" in steps:
        start = time.perf_counter()
        if keras.backend.backend() == "tensorflow":
            results["export"] = export.export_task(task, model, preprocessor, data, workdir / "export")
            # Inputs a user can try the exported model on at once (README's predict examples use them).
            samples = task.write_samples(data, workdir / "samples")
        else:
            # Under another backend the SavedModel is written by a child process with the TensorFlow backend: its
            # graph is TensorFlow's, while the checkpoint and the fitted preprocessor are backend-neutral files.
            results["export"] = distribution.export_in_child(task, options, workdir)
            samples = results["export"].pop("samples")
        results["export"]["predict_example"] = ["run.py", task.name, "predict", "--model", str(workdir / "export"),
                                                *samples]
        seconds["export"] = time.perf_counter() - start
    results["seconds"] = seconds
    results["versions"] = report.versions(task.extra_packages)
    results["hardware"] = report.hardware()
    results["devices"] = {**training.device_report(), "strategy": config.strategy,
                          "replicas": strategy.num_replicas_in_sync,
                          "distribution": distribution.report(config, strategy)}
    return results


class SeedFailed(RunFailed):
    """One seed of a ``--set seeds=...`` series failed (it names the seed and keeps the finished ones)."""


def seed_command(task_class, options: argparse.Namespace, workdir: Path, seed: int,
                 series: Path | None = None) -> list[str]:
    """The ordinary single-run command of one seed (what a user would type to redo that seed alone), run in the
    series' staging folder ``series`` (default: WORKDIR itself)."""
    command = [sys.executable, str(RUN_PY), task_class.name, "run", "--preset", options.preset,
               "--workdir", str((series or workdir) / f"seed-{seed}"), "--steps", options.steps]
    if options.data_dir is not None:
        command += ["--data-dir", str(options.data_dir)]
    elif options.download:  # one download for every seed, not one per seed folder
        command += ["--data-dir", str(workdir / "downloads")]
    if options.download:
        command.append("--download")
    for override in options.overrides:
        if override.partition("=")[0].strip() != "seeds":
            command += ["--set", override]
    return command + ["--set", f"seed={seed}", "--set", "seeds="]


def run_one_seed(command: list[str]) -> int:
    """Runs one seed's command in its own process (a fresh TensorFlow, as the user's own re-run would get)."""
    import subprocess

    return subprocess.run(command).returncode


def run_seeds(task_class, options: argparse.Namespace, config, workdir: Path, runner=run_one_seed) -> dict:
    """``--set seeds=1,2,3``: the requested steps once per seed, each in its own process and folder
    (WORKDIR/seed-N, an ordinary run folder: the suite's usual rules apply there, so an interrupted seed
    resumes and a finished one is trained afresh, as a plain re-run would), then WORKDIR/results.json with
    mean ± std of every metric. A failed seed stops the command; finished seed folders are kept."""
    from common import report
    from common.io import atomic_write_json
    from common.staging import Staging

    parse_steps(options.steps)  # checked before any seed runs
    aggregate_path = workdir / "results.json"
    previous = previous_results(aggregate_path)
    if aggregate_path.exists() and not report.is_seed_aggregate(previous):
        raise UsageError(f"--workdir {str(workdir)!r} holds a single run's results.json; "
                         "expected a new folder or one from an earlier --set seeds=... run")
    # The series is staged as one run: the seed folders and the aggregate replace a finished series together.
    staging = Staging(workdir)
    series = staging.prepare(train="train" in parse_steps(options.steps), series=True)
    per_seed: dict[int, dict] = {}
    try:
        for index, seed in enumerate(config.seeds, 1):
            folder = series / f"seed-{seed}"
            print(f"== seed {seed} ({index}/{len(config.seeds)}) → {folder}", flush=True)
            code = runner(seed_command(task_class, options, workdir, seed, series))
            results = previous_results(folder / "results.json")
            if code != 0 or not results:
                kept = " (the finished series in WORKDIR was kept unchanged)" if staging.has_finished_run else ""
                finished = (f"finished seeds {list(per_seed)} wait in {series} for a re-run" if per_seed
                            else "no seed finished")
                raise SeedFailed(f"seed {seed} failed (exit code {code}); its folder: {folder}; {finished}; "
                                 f"no aggregate written{kept}")
            # Its results.json names the seed folder's final place in WORKDIR.
            per_seed[seed] = staging.final_path(results)
            atomic_write_json(folder / "results.json", per_seed[seed])
        aggregate = report.seed_aggregate(per_seed, {seed: f"seed-{seed}" for seed in per_seed})
        aggregate = {"task": task_class.name, "preset": options.preset,
                     "command": typed_command(), "date": now(),
                     **{k: v for k, v in aggregate.items() if k not in ("task", "preset")},
                     "config": config.to_dict(), "hardware": report.hardware()}
        atomic_write_json(series / "results.json", aggregate)
        staging.commit()
    except BaseException:
        staging.abandon(keep=True)  # seed folders that finished or were interrupted wait there for a re-run
        raise
    if "metrics" in aggregate:
        title = f"{task_class.name} ({options.preset}), seeds {list(config.seeds)} → {aggregate_path}"
        print(report.format_seed_summary(aggregate, title=title))
    return aggregate


def closing_lines(task, results: dict, preset: str, workdir: Path) -> list[str]:
    """What a newcomer needs after the tables: did training help, is this a real run, where are the files."""
    lines = []
    training = results.get("training") or {}
    monitor, best_epoch = training.get("monitor"), training.get("best_epoch")
    if best_epoch is not None and not training.get("from_earlier_run"):
        run_epochs = len(next(iter(training.get("history", {}).values()), []))
        best = training.get(f"best_{monitor}")
        if best_epoch == 0:
            lines.append(f"training did not help: no epoch of {run_epochs} beat the starting model "
                         f"({monitor} {best:.6g} at epoch 0), so the saved and exported model is the warm start"
                         + (f": {task.warm_start}" if task.warm_start else ""))
        else:
            lines.append(f"best epoch: {best_epoch} ({monitor} {best:.6g}); epochs run in this process: {run_epochs}")
    if preset == "tiny":
        lines.append("smoke test (--preset tiny): tiny data and model, a few epochs: the scores above are "
                     "meaningless; the benchmark is the default preset")
    pictures = sorted(p.name for p in workdir.glob("*.png"))
    lines.append(f"files in {workdir}: results.json, checkpoints/ (best model + fitted preprocessor), logs/"
                 + (", export/ (SavedModel), samples/" if "export" in results else "")
                 + (", " + ", ".join(pictures) if pictures else ""))
    return lines


def typed_command() -> str:
    """The command line as the user typed it, for results.json (run.py report makes its paths portable)."""
    return " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])


def previous_results(path: Path) -> dict:
    """An earlier results.json, or {} where there is none (or it cannot be read)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# --- actions on an exported model and on results files -------------------------------------------------------------
def predict(task_class, options: argparse.Namespace) -> None:
    """``run.py TASK predict``: one readable block per input, or with ``--json`` one JSON object per line."""
    from common import export

    task = task_class(task_class.Config())
    task.input_kind = getattr(options, "input_kind", None)
    for index, line in enumerate(export.predict(task, options.model, options.inputs)):
        if options.json:
            print(json.dumps(line, allow_nan=False))
        else:
            print(("\n" if index else "") + format_prediction(line))


def format_prediction(result: Mapping[str, Any], shown: int = 5, whole: int = 10) -> str:
    """One predict result as a short block for a person: its first entry (the input) as the head line, each other
    entry indented below. Strings print as they are, numbers with 4 significant digits, and a list of more than
    ``whole`` numbers as its length and first ``shown`` values (``--json`` prints every value in full)."""

    def number(value) -> str:
        if isinstance(value, bool):
            return str(value).lower()
        return str(value) if isinstance(value, numbers.Integral) else f"{value:.4g}"

    def readable(value) -> str:
        if value is None:
            return "none"  # e.g. a score that was not finite
        if isinstance(value, str):
            return value or '""'  # an empty input or answer stays visible
        if isinstance(value, numbers.Real):
            return number(value)
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, numbers.Real) for v in value):
            if len(value) <= whole:
                return " ".join(map(number, value))
            return (f"{len(value)} values, first {shown}: {' '.join(map(number, value[:shown]))} ... "
                    "(use --json for all)")
        return json.dumps(value, ensure_ascii=False)

    lines = []
    for index, (key, value) in enumerate(result.items()):
        indent = "  " if index else ""
        # A multi-line string (generated text) keeps its lines under its key.
        lines.append(f"{indent}{key}: " + readable(value).replace("\n", "\n" + indent + "    "))
    return "\n".join(lines)


def score(task_class, options: argparse.Namespace) -> None:
    """``run.py TASK score``: the official metric of a results file, printed as one JSON object."""
    task = task_class(task_class.Config())
    names = (*task_class.score_arguments, *task_class.score_flags)
    scores = task.score({name: getattr(options, name) for name in names})
    print(json.dumps(scores, allow_nan=False))
