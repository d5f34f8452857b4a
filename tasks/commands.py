"""The suite-wide commands that are not one task's run: ``report``, ``gpu-bench``, ``--check``, and the text of
``run.py TASK --help``; with the argument parser they share.

They know the registry (every task's name, config, anchors), so they live beside it in tasks/, as gpu_bench does;
running one task's steps knows no task and lives in common/runner.py. run.py parses a command line with these
parsers and calls the bodies below. Importing this module does not import TensorFlow, and nor do ``--check``,
``report`` or the task help: they answer at once on any machine. ``gpu-bench`` imports Keras only in its body
(under KERAS_BACKEND=jax it needs no TensorFlow).
"""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
from pathlib import Path

import tasks
from common import quiet
from common.config import BaseConfig
from common.errors import UsageError

# The Keras dtype policies gpu-bench trains under (tasks.gpu_bench.PRECISIONS is the same tuple; it imports Keras).
PRECISIONS = BaseConfig.CHOICES["precision"]


class HelpRequested(Exception):
    """``--help`` was asked for: carries the help text, so parsing prints nothing and never exits the process."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


class Parser(argparse.ArgumentParser):
    """argparse without side effects: a bad option is one UsageError (one ``error:`` line instead of argparse's
    usage dump and exit), and ``--help`` is a HelpRequested holding the text for the caller to print."""

    def error(self, message):
        raise UsageError(message)

    def print_help(self, file=None):
        raise HelpRequested(self.format_help())


# --- run.py --check -----------------------------------------------------------------------------------------------
def environment_check() -> str:
    """``run.py --check``: what a new install has and lacks, without importing TensorFlow."""
    import importlib.metadata
    import shutil

    lines = [f"python {sys.version.split()[0]} ({sys.executable})"]
    missing = []
    for package in ("tensorflow", "keras", "tensorflow-datasets", "pycocotools", "pycocoevalcap", "sacrebleu",
                    "scikit-learn", "nltk"):
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


# --- run.py TASK --help -------------------------------------------------------------------------------------------
def task_usage(name: str) -> list[str]:
    """The usage lines of one task: only the actions and options it has (no --download where it cannot fetch
    its data, bench and score only where the task implements them)."""
    facts = tasks.command_line(name)
    download = " [--download]" if facts.can_download else ""
    common_options = "[--preset NAME] [--data-dir PATH] [--workdir DIR] [--set KEY=VALUE ...]"
    kinds = " [--text | --file]" if facts.text_or_file_inputs else ""
    lines = [f"run.py {name} [run] {common_options} [--steps train,evaluate,export]{download}"]
    if facts.has_bench:
        lines.append(f"run.py {name} bench {common_options}{download}")
    lines.append(f"run.py {name} predict --model DIR [--json]{kinds} INPUT ...")
    if facts.score_arguments:
        flags = "".join(f" [--{flag.replace('_', '-')}]" for flag in facts.score_flags)
        lines.append(f"run.py {name} score " + " ".join(f"--{argument} FILE" for argument in facts.score_arguments)
                     + flags)
    return lines


def task_help(name: str) -> str:
    """``run.py TASK --help``: the usage, the options, the presets and every --set key with type, default, meaning."""
    import textwrap

    config = tasks.load_config(name)
    usage = []
    for index, line in enumerate(task_usage(name)):  # a long line goes on under its action's options
        words = re.findall(r"\[[^]]*]|\S+", line)  # an [--option VALUE] group is never split
        usage.append(("       " if index else "usage: ") + words[0])
        for word in words[1:]:
            if len(usage[-1]) + 1 + len(word) > 116:
                usage.append(" " * len(f"usage: run.py {name} {words[2]}"))
            usage[-1] += " " + word
    lines = [*usage, "",
             f"{name}: {tasks.describe(name)}", "",
             "options:",
             "  --preset NAME       a named set of --set values (below); default: default",
             "  --data-dir PATH     real data (file or folder); default: the synthetic data, written to WORKDIR/data",
             f"  --workdir DIR       where checkpoints, logs, results.json and the export go; default: runs/{name}",
             "  --set KEY=VALUE     change one config value (repeatable; keys below)",
             "  --steps LIST        a subset of train,evaluate,export (evaluate/export reuse WORKDIR's saved run)"]
    if tasks.command_line(name).can_download:
        lines.append("  --download          let the task fetch its public dataset (into --data-dir, else "
                     "WORKDIR/downloads)")
    lines += ["  --model DIR         predict: the folder written by the export step (WORKDIR/export)",
              "  --json              predict: one JSON object per input with every value in full (default: a short "
              "readable block)", "",
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


# --- run.py report ------------------------------------------------------------------------------------------------
def report_parser() -> Parser:
    parser = Parser(prog="run.py report", description="Markdown tables: each task's published anchors beside "
                    "the runs' results.json (a plain run, a --set seeds=... aggregate, or a folder of seed-N runs; "
                    "plain runs that differ only in seed are merged into mean ± std).")
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--output", type=Path, default=None, help="write the Markdown here (else print it)")
    parser.add_argument("--metric", dest="metrics", action="append", default=[], metavar="KEY",
                        help="one more column: a key of metrics['model'] or of metrics itself (repeatable), e.g. "
                        "mse_ratio_vs_ridge_ar_window")
    return parser


def report(options: argparse.Namespace) -> int:
    """``run.py report RUN_DIR ...``: Markdown "published vs reproduced" tables (no TensorFlow)."""
    from common import report as report_lib

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
            results = read_results(file)
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
    text = report_lib.reproduction_markdown(report_lib.reproduction_rows(runs), anchors, tasks.TASK_NAMES,
                                            options.metrics)
    if options.output is None:
        print(text, end="")
    else:
        from common.io import atomic_write_text

        atomic_write_text(options.output, text)
        print(f"wrote {options.output}")
    return 0


# --- run.py gpu-bench ---------------------------------------------------------------------------------------------
GPU_BENCH = ("training steps/s and beam-search sentences/s of every task's paper-sized model on synthetic arrays, "
             "under the current Keras backend (no TensorFlow needed: KERAS_BACKEND=jax on a GPU machine).")


def parse_gpu_bench(argv: list[str]) -> argparse.Namespace:
    """``run.py gpu-bench`` options, checked; ``precisions`` and ``tasks`` become tuples (unless --table)."""
    parser = Parser(prog="run.py gpu-bench", description=f"``run.py gpu-bench``: {GPU_BENCH}")
    parser.add_argument("--quick", action="store_true",
                        help="tiny presets, batch <= 8, 2 steps, float32 and mixed_float16: checks that it all runs")
    parser.add_argument("--tasks", default=",".join(tasks.TASK_NAMES), help="comma list (default: every task)")
    parser.add_argument("--precisions", default=",".join(PRECISIONS),
                        help="comma list of Keras dtype policies to train under (float32 first: the ratios' base)")
    parser.add_argument("--output", type=Path, default=Path("gpu_bench.json"), help="results JSON (written atomically)")
    parser.add_argument("--peer", choices=("torch",), default=None,
                        help="also train each paper model's PyTorch twin (nn.LSTM, cuDNN on CUDA, packed sequences "
                        "where Keras masks) on the same arrays: steps/s and examples/s side by side (skipped with a "
                        "message where PyTorch is not installed)")
    parser.add_argument("--table", nargs="+", type=Path, metavar="RESULTS.json", default=None,
                        help="measure nothing: print the Markdown table of a GPU run's results [and a CPU run's]")
    options = parser.parse_args(argv)
    if options.table:
        return options  # --table measures nothing: --tasks and --precisions do not apply
    precisions = tuple(name for name in options.precisions.split(",") if name)
    if not precisions or precisions[0] != "float32" or not set(precisions) <= set(PRECISIONS):
        raise UsageError(f"--precisions {options.precisions!r}: expected float32 first, then any of "
                         f"{list(PRECISIONS[1:])}")
    names = tuple(name for name in options.tasks.split(",") if name)
    unknown = [name for name in names if name not in tasks.TASK_NAMES]
    if unknown or not names:
        raise UsageError(f"--tasks {options.tasks!r}: expected a comma list of {list(tasks.TASK_NAMES)}")
    options.precisions, options.tasks = precisions, names
    return options


def gpu_bench(options: argparse.Namespace) -> int:
    """``run.py gpu-bench``: runs the bench (or prints --table's Markdown); exit 1 when a task's bench failed."""
    import os

    if getattr(options, "peer", None) and not options.table:
        # JAX takes 75% of the GPU's memory at its first op unless told not to; the PyTorch peer needs its share.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    from tasks import gpu_bench as bench

    if options.table:
        runs = [read_results(file) for file in options.table[:2]]
        if any("tasks" not in run for run in runs):
            raise UsageError(f"--table {' '.join(map(str, options.table))}: expected run.py gpu-bench results files")
        print(bench.markdown(*runs), end="")
        return 0
    from common.io import atomic_write_json

    # Written after every task, so a run cut short keeps the tasks it finished.
    results = bench.run(options.tasks, options.quick, options.precisions,
                        after_each=lambda so_far: atomic_write_json(options.output, so_far), peer=options.peer)
    print(bench.format_rows(results))
    print(f"wrote {options.output}")
    return 1 if any("error" in row for row in results["tasks"].values()) else 0


def read_results(file: Path) -> dict:
    """A results JSON file as a dict, or one UsageError naming the file and what is wrong with it."""
    try:
        results = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UsageError(f"{file}: not valid JSON: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{file}: cannot be read: {error}") from None
    if not isinstance(results, dict):
        raise UsageError(f"{file}: expected a JSON object (a run's results), got {type(results).__name__}")
    return results
