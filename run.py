#!/usr/bin/env python
"""One command for every task of the suite.

    python run.py --list                      (the tasks)      python run.py --check   (what the install has)
    python run.py TASK --help                 (every --set key with its type, default and meaning)
    python run.py TASK [run] [--preset tiny|default|paper] [--data-dir PATH] [--workdir DIR]
                             [--set key=value ...] [--steps train,evaluate,export] [--download]
    python run.py TASK predict --model DIR INPUT [INPUT ...]
    python run.py TASK score --<file options the task names>
    python run.py TASK bench [--preset ...] [--data-dir PATH] [--workdir DIR]
    python run.py TASK [run] ... --set seeds=1,2,3   (the run once per seed into WORKDIR/seed-N/, then mean ± std)
    python run.py report RUN_DIR [RUN_DIR ...] [--metric KEY] [--output FILE.md]   (published vs reproduced)
    python run.py gpu-bench [--quick] [--tasks a,b] [--precisions p,q] [--output FILE.json]   (models, any backend)

The full run writes WORKDIR/results.json (metrics, config, data facts, library versions, hardware,
devices, wall time per step) and prints a results table. Usage errors (unknown task, unknown or
ill-typed --set key, missing data path) print one line starting with "error:" and exit with 2.
Nothing here knows any task by name: everything goes through common.task.Task.
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from common import quiet  # noqa: E402  (light: does not import TensorFlow)

quiet.install()  # before TensorFlow loads: its CPU-machine start-up lines are noise

import tasks  # noqa: E402  (light: does not import TensorFlow)

ACTIONS = ("run", "predict", "score", "bench")
STEPS = ("train", "evaluate", "export")
EXIT_USAGE = 2


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one clear line instead of argparse's usage dump
        raise UsageError(message)


def _split_task_and_action(argv: list[str]) -> tuple[str, str, list[str]]:
    if not argv or argv[0].startswith("-"):
        raise UsageError(f"expected a task name first; one of {list(tasks.TASK_NAMES)} (or --list)")
    name, rest = argv[0], argv[1:]
    if name not in tasks.TASK_NAMES:
        raise UsageError(f"Unknown task {name!r}; expected one of {list(tasks.TASK_NAMES)}")
    action = "run"
    if rest and not rest[0].startswith("-"):
        if rest[0] not in ACTIONS:
            raise UsageError(f"Unknown action {rest[0]!r} for task {name!r}; expected one of {list(ACTIONS)}")
        action, rest = rest[0], rest[1:]
    return name, action, rest


def _parse_options(task_class, action: str, argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog=f"run.py {task_class.name} {action}", add_help=True)
    if action in ("run", "bench"):
        presets = sorted({"default", *task_class.Config.PRESETS})
        parser.add_argument("--preset", default="default", choices=presets)
        parser.add_argument("--data-dir", type=Path, default=None, help="real data file/folder; default: synthetic")
        parser.add_argument("--workdir", type=Path, default=None, help=f"default: runs/{task_class.name}")
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--download", action="store_true",
                            help="let the task fetch its public dataset (into --data-dir, else WORKDIR/downloads)")
    if action == "run":
        parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of train,evaluate,export")
    if action == "predict":
        parser.add_argument("--model", type=Path, required=True, help="folder written by the export step")
        parser.add_argument("inputs", nargs="+", help="raw inputs (files or text, as the task says)")
        if task_class.text_or_file_inputs:
            kinds = parser.add_mutually_exclusive_group()
            kinds.add_argument("--text", dest="input_kind", action="store_const", const="text",
                               help="every input is text, even one that looks like a path")
            kinds.add_argument("--file", dest="input_kind", action="store_const", const="file",
                               help="every input is a file path")
    if action == "score":
        for name in task_class.score_arguments:
            parser.add_argument(f"--{name}", required=True, type=Path)
        for name in task_class.score_flags:
            parser.add_argument(f"--{name.replace('_', '-')}", dest=name, action="store_true")
        if not task_class.score_arguments:
            raise UsageError(f"Task {task_class.name!r} has no official results format to score")
    return parser.parse_args(argv)


def _environment_check() -> str:
    """``run.py --check``: what a new install has and lacks, without importing TensorFlow."""
    import importlib.metadata
    import shutil

    lines = [f"python {sys.version.split()[0]} ({sys.executable})"]
    missing = []
    for package in ("tensorflow", "keras", "tensorflow-datasets", "pycocotools", "pycocoevalcap", "sacrebleu", "nltk"):
        try:
            lines.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            missing.append(package)
    if missing:
        lines.append(f"MISSING: {missing}: run  python -m pip install -r requirements.txt")
    if shutil.which("java"):
        lines.append(f"java: {shutil.which('java')} (captioning's official METEOR and PTB tokenizer can run)")
    else:
        lines.append("java: not found. Only captioning's official metrics (METEOR, the PTB tokenizer) need it; "
                     "install any Java >= 8, e.g.  sudo apt-get install default-jre-headless  (or conda install "
                     "openjdk). Everything else works without it.")
    gpu = quiet.gpu_driver_present()
    lines.append("NVIDIA driver: found (for training on it: python -m pip install 'tensorflow[and-cuda]==2.21.0')"
                 if gpu else "NVIDIA driver: not found (training runs on the CPU)")
    return "\n".join(lines)


def _task_help(name: str, action: str) -> str:
    """``run.py TASK --help``: the options, the presets and every --set key with type, default, meaning."""
    import textwrap

    config = tasks.load_config(name)
    lines = [f"usage: run.py {name} {'bench' if action == 'bench' else '[run]'} [--preset NAME] [--data-dir PATH] "
             f"[--workdir DIR] [--set KEY=VALUE ...]" + (" [--steps train,evaluate,export]" if action == "run" else "")
             + " [--download]",
             f"       run.py {name} predict --model DIR INPUT ...", "",
             f"{name}: {tasks.describe(name)}", "",
             "options:",
             "  --preset NAME       a named set of --set values (below); default: default",
             "  --data-dir PATH     real data (file or folder); default: the synthetic data, written to WORKDIR/data",
             f"  --workdir DIR       where checkpoints, logs, results.json and the export go; default: runs/{name}",
             "  --set KEY=VALUE     change one config value (repeatable; keys below)",
             "  --steps LIST        a subset of train,evaluate,export (evaluate/export reuse WORKDIR's saved run)",
             "  --download          let the task fetch its public dataset (only tasks that can)", "",
             "presets:"]
    for preset, overrides in config.describe_presets().items():
        lines.append(textwrap.fill(overrides, 116, initial_indent=f"  {preset:<8} ", subsequent_indent=" " * 11))
    lines += ["", "config keys (--set KEY=VALUE): type, default, meaning"]
    choices = config.CHOICES
    for key, kind, default, meaning in config.describe_fields():
        allowed = f" one of {list(choices[key])};" if key in choices else ""
        head = f"  {key} ({kind}, default {default!r}){allowed}"
        lines.append(head)
        if meaning:
            lines.append(textwrap.fill(meaning, 116, initial_indent="      ", subsequent_indent="      "))
    return "\n".join(lines)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def _run(task_class, options: argparse.Namespace, action: str) -> dict:
    config = task_class.Config.from_preset(options.preset, options.overrides)
    if config.seeds and action == "bench":
        raise UsageError("--set seeds=... repeats a run; bench measures one configuration (use --set seed=N)")
    if options.download and not task_class.can_download:
        raise UsageError(f"Task {task_class.name!r} cannot download its dataset; pass --data-dir with local files")
    if options.data_dir is not None and not options.data_dir.exists() and not options.download:
        # A comma-separated list of files (acceleration: several recordings) is checked entry by entry.
        missing = [part for part in str(options.data_dir).split(",") if not Path(part.strip()).exists()]
        if missing or "," not in str(options.data_dir):
            raise UsageError(f"--data-dir {str(options.data_dir)!r} does not exist"
                             + (f" (missing: {', '.join(map(repr, missing))})" if "," in str(options.data_dir) else ""))
    workdir = (options.workdir or Path("runs") / task_class.name).resolve()
    if workdir.exists() and not workdir.is_dir():
        raise UsageError(f"--workdir {str(workdir)!r} is a file; expected a folder (new or from an earlier run)")
    created = not workdir.exists()
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if config.seeds:
            return _run_seeds(task_class, options, config, workdir)
        return _run_in(task_class, options, action, config, workdir)
    except BaseException:
        if created and not any(workdir.iterdir()):
            workdir.rmdir()  # a run that failed before writing anything leaves no empty folder behind
        raise


def _steps(options: argparse.Namespace) -> list[str]:
    """``--steps`` as a list, or one usage error (a single run and a seeds run check it alike)."""
    steps = [s.strip() for s in options.steps.split(",") if s.strip()]
    if not steps or any(s not in STEPS for s in steps):
        raise UsageError(f"--steps {options.steps!r}: expected a comma-separated subset of {list(STEPS)}")
    return steps


def _run_in(task_class, options: argparse.Namespace, action: str, config, workdir: Path) -> dict:
    from common import export, report, training
    from common.io import atomic_write_json
    from common.preprocessor import preprocessor_dir

    training.setup(config)
    task = task_class(config)
    task.download = options.download

    if action == "bench":
        results = task.bench(options.data_dir, workdir)
        results = {"task": task.name, "preset": options.preset, "config": config.to_dict(), **results,
                   "versions": report.versions(task.extra_packages), "hardware": report.hardware(),
                   "devices": training.device_report(), "date": _now()}
        atomic_write_json(workdir / "bench.json", results)
        title = f"{task.name} bench → {workdir / 'bench.json'}"
        print(report.format_table(results.get("figures", results), title=title))
        return results

    steps = _steps(options)
    import keras

    deferred_export = None
    if "export" in steps and keras.backend.backend() != "tensorflow":
        # The SavedModel graph (preprocessing, decoders) is TensorFlow; the checkpoint and the fitted preprocessor
        # are backend-neutral files, so the TensorFlow backend exports what another backend trained.
        steps.remove("export")
        deferred_export = ["KERAS_BACKEND=tensorflow", "python", "run.py", task.name, "--preset", options.preset,
                           "--workdir", str(workdir), "--steps", "evaluate,export",
                           *(["--data-dir", str(options.data_dir)] if options.data_dir is not None else []),
                           *[part for override in options.overrides for part in ("--set", override)]]
        logging.getLogger("run").warning("Keras backend %r: the export step is left to the TensorFlow backend "
                                         "(command printed at the end)", keras.backend.backend())
        if not steps:
            raise UsageError("--steps export needs the TensorFlow backend: " + shlex.join(deferred_export))

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    data = task.load_data(options.data_dir, workdir)
    seconds["load_data"] = time.perf_counter() - start

    strategy = training.make_strategy(config)
    results: dict = {
        "task": task.name,
        "preset": options.preset,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "date": _now(),
        "primary_metric": task.primary_metric,
        "config": config.to_dict(),
        "data": data.info,
    }
    preprocessor_folder = preprocessor_dir(workdir)
    if "train" in steps:
        start = time.perf_counter()
        with strategy.scope():  # encoder pretraining and feature caching run on the strategy's devices too
            preprocessor, resumed = training.fitted_preprocessor(task, data, workdir)
        if not resumed:
            seconds["fit_preprocessor"] = time.perf_counter() - start
        start = time.perf_counter()
        with strategy.scope():
            model = task.build_model(data, preprocessor)
        results["training"] = task.fit(model, data, preprocessor, workdir)
        seconds["train"] = time.perf_counter() - start
    else:
        preprocessor = task.Preprocessor.load(preprocessor_folder)
        with strategy.scope():
            model = training.load_best(workdir)
        previous = _previous_results(workdir / "results.json")
        if "training" in previous:
            # Keep the record of how the evaluated model was trained (an earlier invocation's train step).
            results["training"] = {**previous["training"], "from_earlier_run": previous.get("date")}
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
        results["export"] = export.export_task(task, model, preprocessor, data, workdir / "export")
        # Inputs a user can try the exported model on at once (README's predict examples use them).
        samples = task.write_samples(data, workdir / "samples")
        results["export"]["predict_example"] = ["run.py", task.name, "predict", "--model", str(workdir / "export"),
                                                *samples]
        seconds["export"] = time.perf_counter() - start
    results["seconds"] = seconds
    results["versions"] = report.versions(task.extra_packages)
    results["hardware"] = report.hardware()
    results["devices"] = {**training.device_report(), "strategy": config.strategy,
                          "replicas": strategy.num_replicas_in_sync}
    atomic_write_json(workdir / "results.json", results)
    if "metrics" in results:
        title = f"{task.name} ({options.preset}) → {workdir / 'results.json'}"
        print(report.format_summary(results["metrics"], task.higher_is_better, title=title))
    print(report.format_table({"seconds": seconds}))
    for line in _closing_lines(task, results, options.preset, workdir):
        print(line)
    if "export" in results:
        print("try the exported model: python " + shlex.join(results["export"]["predict_example"]))
    if deferred_export:
        print(f"export: the SavedModel is written by the TensorFlow backend (this run used "
              f"{keras.backend.backend()!r}): " + shlex.join(deferred_export))
    return results


class SeedFailed(Exception):
    pass


def _seed_command(task_class, options: argparse.Namespace, workdir: Path, seed: int) -> list[str]:
    """The ordinary single-run command of one seed (what a user would type to redo that seed alone)."""
    command = [sys.executable, str(ROOT / "run.py"), task_class.name, "run", "--preset", options.preset,
               "--workdir", str(workdir / f"seed-{seed}"), "--steps", options.steps]
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


def _run_one_seed(command: list[str]) -> int:
    import subprocess

    return subprocess.run(command).returncode


def _run_seeds(task_class, options: argparse.Namespace, config, workdir: Path, runner=_run_one_seed) -> dict:
    """``--set seeds=1,2,3``: the requested steps once per seed, each in its own process and folder
    (WORKDIR/seed-N, an ordinary run folder: the suite's usual rules apply there, so an interrupted seed
    resumes and a finished one is trained afresh, as a plain re-run would), then WORKDIR/results.json with
    mean ± std of every metric. A failed seed stops the command; finished seed folders are kept."""
    from common import report
    from common.io import atomic_write_json

    _steps(options)  # checked before any seed runs
    aggregate_path = workdir / "results.json"
    previous = _previous_results(aggregate_path)
    if aggregate_path.exists() and not report.is_seed_aggregate(previous):
        raise UsageError(f"--workdir {str(workdir)!r} holds a single run's results.json; "
                         "expected a new folder or one from an earlier --set seeds=... run")
    aggregate_path.unlink(missing_ok=True)  # written again only when every seed of this invocation finished
    per_seed: dict[int, dict] = {}
    for index, seed in enumerate(config.seeds, 1):
        folder = workdir / f"seed-{seed}"
        print(f"== seed {seed} ({index}/{len(config.seeds)}) → {folder}", flush=True)
        code = runner(_seed_command(task_class, options, workdir, seed))
        results = _previous_results(folder / "results.json")
        if code != 0 or not results:
            finished = f"finished seeds {list(per_seed)} are kept in their folders" if per_seed else "no seed finished"
            raise SeedFailed(f"seed {seed} failed (exit code {code}); its folder: {folder}; {finished}; "
                             f"no aggregate written")
        per_seed[seed] = results
    aggregate = report.seed_aggregate(per_seed, {seed: f"seed-{seed}" for seed in per_seed})
    aggregate = {"task": task_class.name, "preset": options.preset,
                 "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "date": _now(),
                 **{k: v for k, v in aggregate.items() if k not in ("task", "preset")},
                 "config": config.to_dict(), "hardware": report.hardware()}
    atomic_write_json(aggregate_path, aggregate)
    if "metrics" in aggregate:
        title = f"{task_class.name} ({options.preset}), seeds {list(config.seeds)} → {aggregate_path}"
        print(report.format_seed_summary(aggregate, title=title))
    return aggregate


def _report(argv: list[str]) -> int:
    """``run.py report RUN_DIR ...``: Markdown "published vs reproduced" tables (no TensorFlow)."""
    import importlib

    parser = _Parser(prog="run.py report", description="Markdown tables: each task's published anchors beside "
                     "the runs' results.json (a plain run, a --set seeds=... aggregate, or a folder of seed-N runs; "
                     "plain runs that differ only in seed are merged into mean ± std).")
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--output", type=Path, default=None, help="write the Markdown here (else print it)")
    parser.add_argument("--metric", dest="metrics", action="append", default=[], metavar="KEY",
                        help="one more column: a key of metrics['model'] or of metrics itself (repeatable), e.g. "
                        "mse_ratio_vs_ridge_ar_window")
    options = parser.parse_args(argv)
    from common import report

    runs = []
    for folder in options.run_dirs:
        if not folder.is_dir():
            raise UsageError(f"{folder}: no such run folder")
        files = [folder / "results.json"]
        if not files[0].exists():
            files = sorted(folder.glob("seed-*/results.json"))
        if not files:
            raise UsageError(f"{folder}: no results.json (nor seed-*/results.json) in it")
        for file in files:
            results = _read_results(file)
            if results.get("task") not in tasks.TASK_NAMES:
                raise UsageError(f"{file}: unknown task {results.get('task')!r}; expected one of "
                                 f"{list(tasks.TASK_NAMES)}")
            if not isinstance(results.get("metrics"), dict) or "model" not in results["metrics"]:
                raise UsageError(f"{file}: no metrics in it (a run without the evaluate step?)")
            runs.append((str(file.parent), results))
    anchors = {}
    for name in sorted({results["task"] for _, results in runs}):
        try:  # the task's anchors module, not task.py: that one imports TensorFlow
            anchors[name] = tuple(importlib.import_module(f"tasks.{name}.anchors").ANCHORS)
        except ModuleNotFoundError:
            anchors[name] = ()
    text = report.reproduction_markdown(report.reproduction_rows(runs), anchors, tasks.TASK_NAMES, options.metrics)
    if options.output is None:
        print(text, end="")
    else:
        from common.io import atomic_write_text

        atomic_write_text(options.output, text)
        print(f"wrote {options.output}")
    return 0


def _gpu_bench(argv: list[str]) -> int:
    """``run.py gpu-bench``: training steps/s and beam-search sentences/s of every task's paper-sized model on
    synthetic arrays, under the current Keras backend (no TensorFlow needed: KERAS_BACKEND=jax on a GPU machine)."""
    from tasks import gpu_bench

    parser = _Parser(prog="run.py gpu-bench", description=_gpu_bench.__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="tiny presets, batch <= 8, 2 steps, float32 and mixed_float16: checks that it all runs")
    parser.add_argument("--tasks", default=",".join(tasks.TASK_NAMES), help="comma list (default: every task)")
    parser.add_argument("--precisions", default=",".join(gpu_bench.PRECISIONS),
                        help="comma list of Keras dtype policies to train under (float32 first: the ratios' base)")
    parser.add_argument("--output", type=Path, default=Path("gpu_bench.json"), help="results JSON (written atomically)")
    parser.add_argument("--table", nargs="+", type=Path, metavar="RESULTS.json", default=None,
                        help="measure nothing: print the Markdown table of a GPU run's results [and a CPU run's]")
    options = parser.parse_args(argv)
    if options.table:
        runs = [_read_results(file) for file in options.table[:2]]
        if any("tasks" not in run for run in runs):
            raise UsageError(f"--table {' '.join(map(str, options.table))}: expected run.py gpu-bench results files")
        print(gpu_bench.markdown(*runs), end="")
        return 0
    precisions = tuple(name for name in options.precisions.split(",") if name)
    if not precisions or precisions[0] != "float32" or not set(precisions) <= set(gpu_bench.PRECISIONS):
        raise UsageError(f"--precisions {options.precisions!r}: expected float32 first, then any of "
                         f"{list(gpu_bench.PRECISIONS[1:])}")
    names = tuple(name for name in options.tasks.split(",") if name)
    unknown = [name for name in names if name not in tasks.TASK_NAMES]
    if unknown or not names:
        raise UsageError(f"--tasks {options.tasks!r}: expected a comma list of {list(tasks.TASK_NAMES)}")
    from common.io import atomic_write_json

    # Written after every task, so a run cut short keeps the tasks it finished.
    results = gpu_bench.run(names, options.quick, precisions,
                            after_each=lambda so_far: atomic_write_json(options.output, so_far))
    print(gpu_bench.format_rows(results))
    print(f"wrote {options.output}")
    return 1 if any("error" in row for row in results["tasks"].values()) else 0


def _read_results(file: Path) -> dict:
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UsageError(f"{file}: not valid JSON: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{file}: cannot be read: {error}") from None
    if not isinstance(results, dict):
        raise UsageError(f"{file}: expected a JSON object (a run's results), got {type(results).__name__}")
    return results


def _closing_lines(task, results: dict, preset: str, workdir: Path) -> list[str]:
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


def _previous_results(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv in ([], ["-h"], ["--help"]):
            print(__doc__)
            return 0 if argv else EXIT_USAGE
        if argv[0] == "--check":
            print(_environment_check())
            return 0
        if argv[0] == "report":
            return _report(argv[1:])
        if argv[0] == "gpu-bench":
            return _gpu_bench(argv[1:])
        if argv[0] == "--list":
            for name in tasks.TASK_NAMES:
                print(f"{name.ljust(14)} {tasks.describe(name)}")
            return 0
        name, action, rest = _split_task_and_action(argv)
        if action in ("run", "bench") and ("-h" in rest or "--help" in rest):
            print(_task_help(name, action))  # without importing TensorFlow: it answers at once
            return 0
        _configure_logging()
        task_class = tasks.load_task(name)
        options = _parse_options(task_class, action, rest)
        if action == "predict":
            from common import export

            task = task_class(task_class.Config())
            task.input_kind = getattr(options, "input_kind", None)
            for line in export.predict(task, options.model, options.inputs):
                print(json.dumps(line, allow_nan=False))
            return 0
        if action == "score":
            task = task_class(task_class.Config())
            names = (*task_class.score_arguments, *task_class.score_flags)
            scores = task.score({k: getattr(options, k) for k in names})
            print(json.dumps(scores, allow_nan=False))
            return 0
        _run(task_class, options, action)
        return 0
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to resume training", file=sys.stderr)
        return 130
    except Exception as error:  # user-facing errors from configs, readers and tasks
        from common.config import ConfigError
        from common.errors import DataError, TaskError, TrainingDiverged

        if isinstance(error, (TrainingDiverged, SeedFailed)):
            print(f"error: {error}", file=sys.stderr)
            return 1

        if isinstance(error, (ConfigError, TaskError, DataError, FileNotFoundError, tasks.UnknownTaskError)):
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())
