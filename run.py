#!/usr/bin/env python
"""One command for every task of the suite.

    python run.py --list                      (the tasks)      python run.py --check   (what the install has)
    python run.py TASK --help                 (its commands, and every --set key with its type, default and meaning)
    python run.py TASK [run] [--preset tiny|default|paper] [--data-dir PATH] [--workdir DIR]
                             [--set key=value ...] [--steps train,evaluate,export] [--download]
    python run.py TASK predict --model DIR [--json] INPUT [INPUT ...]   (readable; --json: one JSON object each)
    python run.py TASK score --<file options the task names>
    python run.py TASK bench [--preset ...] [--data-dir PATH] [--workdir DIR]
    python run.py TASK [run] ... --set seeds=1,2,3   (the run once per seed into WORKDIR/seed-N/, then mean ± std)
    python run.py report RUN_DIR [RUN_DIR ...] [--metric KEY] [--output FILE.md]   (published vs reproduced)
    python run.py gpu-bench [--quick] [--tasks a,b] [--precisions p,q] [--peer torch] [--output FILE.json]

The full run writes WORKDIR/results.json (metrics, config, data facts, library versions, hardware,
devices, wall time per step) and prints a results table. Usage errors (unknown task, unknown or
ill-typed --set key, missing data path) print one line starting with "error:" and exit with 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# None of these imports TensorFlow: --help, --list, --check, report and parse_command answer at once.
import tasks  # noqa: E402
from common import quiet, runner  # noqa: E402
from tasks import commands  # noqa: E402
from common.config import BaseConfig, ConfigError  # noqa: E402
from common.sizes import check_sizes  # noqa: E402
from common.errors import DataError, RunFailed, TaskError, UsageError  # noqa: E402

ACTIONS = ("run", "predict", "score", "bench")
STEPS = runner.STEPS
EXIT_USAGE = 2


@dataclasses.dataclass(frozen=True)
class Command:
    """A checked command line: what ``parse_command`` returns and ``main`` carries out."""

    kind: str  # "help", "check", "list", "report", "gpu-bench", or a task's action: one of ACTIONS
    options: argparse.Namespace | None = None  # the parsed options (report, gpu-bench and the task actions)
    task: str | None = None  # the task's name (task actions)
    config: BaseConfig | None = None  # run / bench: the task's Config from --preset and every --set
    text: str = ""  # help: the text to print


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


def _parse_options(name: str, action: str, argv: list[str]) -> argparse.Namespace:
    """One task action's options; what the task offers comes from tasks.command_line (no TensorFlow)."""
    facts = tasks.command_line(name)
    parser = commands.Parser(prog=f"run.py {name} {action}", add_help=True)
    if action in ("run", "bench"):
        presets = sorted({"default", *tasks.load_config(name).PRESETS})
        parser.add_argument("--preset", default="default", choices=presets)
        parser.add_argument("--data-dir", type=Path, default=None, help="real data file/folder; default: synthetic")
        parser.add_argument("--workdir", type=Path, default=None, help=f"default: runs/{name}")
        parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--download", action="store_true",
                            help="let the task fetch its public dataset (into --data-dir, else WORKDIR/downloads)")
    if action == "run":
        parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of train,evaluate,export")
    if action == "predict":
        parser.add_argument("--model", type=Path, required=True, help="folder written by the export step")
        parser.add_argument("--json", action="store_true",
                            help="print one JSON object per input, every value in full (default: a readable block)")
        parser.add_argument("inputs", nargs="+", help="raw inputs (files or text, as the task says)")
        if facts.text_or_file_inputs:
            kinds = parser.add_mutually_exclusive_group()
            kinds.add_argument("--text", dest="input_kind", action="store_const", const="text",
                               help="every input is text, even one that looks like a path")
            kinds.add_argument("--file", dest="input_kind", action="store_const", const="file",
                               help="every input is a file path")
    if action == "score":
        for argument in facts.score_arguments:
            parser.add_argument(f"--{argument}", required=True, type=Path)
        for flag in facts.score_flags:
            parser.add_argument(f"--{flag.replace('_', '-')}", dest=flag, action="store_true")
        if not facts.score_arguments:
            raise UsageError(f"Task {name!r} has no official results format to score")
    return parser.parse_args(argv)


def parse_command(argv: list[str]) -> Command:
    """Checks a whole command line as ``main`` would and returns it parsed, without importing TensorFlow, touching
    files or training. Raises what the real command raises for a bad one: UsageError (task, action, options,
    --steps), ConfigError (--preset and every --set against the task's Config; sizes against the machine) or
    TaskError (bench of a task without one). Paths (--data-dir, --model, RUN_DIR) are checked only when the command
    runs."""
    argv = list(argv)
    try:
        if argv in (["-h"], ["--help"]):
            return Command("help", text=__doc__ + "\n")
        if argv[:1] in (["--check"], ["--list"]):
            return Command(argv[0].lstrip("-"))
        if argv[:1] == ["report"]:
            return Command("report", commands.report_parser().parse_args(argv[1:]))
        if argv[:1] == ["gpu-bench"]:
            return Command("gpu-bench", commands.parse_gpu_bench(argv[1:]))
        name, action, rest = _split_task_and_action(argv)
        if action in ("run", "bench") and ("-h" in rest or "--help" in rest):
            return Command("help", text=commands.task_help(name) + "\n")
        options = _parse_options(name, action, rest)
    except commands.HelpRequested as request:  # report / gpu-bench / predict / score --help
        return Command("help", text=request.text)
    if action not in ("run", "bench"):
        return Command(action, options, task=name)
    facts = tasks.command_line(name)
    config = tasks.load_config(name).from_preset(options.preset, options.overrides)
    check_sizes(config)  # before anything is allocated: a size no machine holds is refused naming its key
    if config.seeds and action == "bench":
        raise UsageError("--set seeds=... repeats a run; bench measures one configuration (use --set seed=N)")
    if options.download and not facts.can_download:
        raise UsageError(f"Task {name!r} cannot download its dataset; pass --data-dir with local files")
    if action == "bench" and not facts.has_bench:
        raise TaskError(f"Task {name!r} has no benchmark yet")
    if action == "run":
        runner.parse_steps(options.steps)
    return Command(action, options, task=name, config=config)


def main(argv: list[str] | None = None) -> int:
    quiet.install()  # before TensorFlow loads (the steps import it): its CPU-machine start-up lines are noise
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(__doc__)
        return EXIT_USAGE
    try:
        command = parse_command(argv)
        if command.kind == "help":
            print(command.text, end="")
            return 0
        if command.kind == "check":
            print(commands.environment_check())
            return 0
        if command.kind == "list":
            for name in tasks.TASK_NAMES:
                print(f"{name.ljust(14)} {tasks.describe(name)}")
            return 0
        if command.kind == "report":
            return commands.report(command.options)
        if command.kind == "gpu-bench":
            return commands.gpu_bench(command.options)
        runner.configure_logging()
        task_class = tasks.load_task(command.task)
        if command.kind == "predict":
            runner.predict(task_class, command.options)
        elif command.kind == "score":
            runner.score(task_class, command.options)
        else:
            runner.run(task_class, command.options, command.kind, command.config)
        return 0
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to resume training", file=sys.stderr)
        return 130
    except RunFailed as error:  # diverged training, a failed seed or process of a job
        print(f"error: {error}", file=sys.stderr)
        return 1
    except (ConfigError, TaskError, DataError, FileNotFoundError, tasks.UnknownTaskError) as error:
        # User-facing errors from configs, readers and tasks: one line, no traceback.
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except PermissionError as error:  # a file or folder this user may not read or write, met during a step
        print(f"error: {error.filename!r}: {error.strerror}; expected a path this user may read and write",
              file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
