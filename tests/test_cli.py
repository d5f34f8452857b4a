"""run.py: listing, help and usage text, parse_command, predict's readable output, and one clear error line with
exit code 2 for every usage error."""

import json
import subprocess
import sys

import pytest

import run
import tasks
from common import runner
from common.config import ConfigError
from common.errors import TaskError, UsageError
from conftest import ROOT, run_cli


def test_list_names_every_task_with_a_description():
    result = run_cli("--list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(tasks.TASK_NAMES)
    assert all(len(line.split()) > 3 for line in lines)


@pytest.mark.parametrize(
    "arguments, fragment",
    [
        (("nope",), "Unknown task 'nope'"),
        (("acceleration", "dance"), "Unknown action 'dance'"),
        (("acceleration", "--set", "epochs=ten"), "--set epochs='ten': expected an integer"),
        (("acceleration", "--set", "colour=red"), "Unknown config key 'colour'"),
        (("acceleration", "--preset", "huge"), "invalid choice: 'huge'"),
        (("acceleration", "--data-dir", "/no/such/file.npz"), "does not exist"),
        (("acceleration", "--steps", "train,deploy"), "--steps 'train,deploy'"),
        (("acceleration", "score"), "no official results format"),
        (("acceleration", "--download"), "cannot download its dataset"),
        (("acceleration", "--set", "seeds=a,b"), "--set seeds='a,b': expected comma-separated int values"),
        (("acceleration", "bench", "--set", "seeds=1,2"), "bench measures one configuration"),
        (("sentiment", "bench"), "Task 'sentiment' has no benchmark yet"),
        (("report",), "the following arguments are required: RUN_DIR"),
    ],
)
def test_usage_errors_print_one_line_and_exit_2(arguments, fragment, tmp_path):
    needs_workdir = "--set" in arguments or "--steps" in arguments
    result = run_cli(*arguments, "--workdir", str(tmp_path)) if needs_workdir else run_cli(*arguments)
    assert result.returncode == 2, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and fragment in error_lines[0], result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_task_help_lists_every_config_key_and_preset_without_importing_tensorflow(name):
    import subprocess
    import sys

    from conftest import ROOT

    script = ("import sys, runpy; sys.argv = ['run.py', sys.argv[1], '--help']\n"
              "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit as e:\n"
              "    assert e.code == 0, e.code\n"
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'help imported TensorFlow'\n")
    result = subprocess.run([sys.executable, "-c", script, name], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    config = tasks.load_config(name)
    for key, kind, default, meaning in config.describe_fields():
        assert f"  {key} ({kind}, default {default!r})" in result.stdout
    assert all(f"  {preset}" in result.stdout for preset in ("default", "tiny", "paper"))
    assert "smoke" not in result.stderr and "Traceback" not in result.stderr


def test_check_works_without_java_and_says_what_needs_it(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    # A PATH without java, as on a laptop without a JRE. The interpreter is called by its own path: a copy or
    # link of it elsewhere would leave a virtual environment behind (its packages are found from that path).
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {**os.environ, "PATH": str(empty_bin)}
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--check"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "java: not found" in result.stdout and "captioning" in result.stdout and "apt-get" in result.stdout
    assert "tensorflow 2." in result.stdout and "MISSING" not in result.stdout


def test_pyproject_console_script_is_the_run_py_entry_and_extras_exist():
    import tomllib

    from conftest import ROOT

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"rnn-suite": "run:main"}
    assert {"gpu", "test"} <= set(project["project"]["optional-dependencies"])
    assert project["tool"]["setuptools"]["dynamic"]["dependencies"] == {"file": ["requirements.txt"]}
    import subprocess
    import sys

    # What the console script does (run.main filters this process's stderr, so in a child).
    result = subprocess.run([sys.executable, "-c", "import sys, run; sys.exit(run.main(['--list']))"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "acceleration" in result.stdout, result.stderr


# --- the help and usage text --------------------------------------------------------------------------------------
def test_help_is_for_users_and_lists_every_form():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    assert "common.task" not in result.stdout and "Nothing here knows" not in result.stdout
    assert result.stdout.rstrip().endswith('print one line starting with "error:" and exit with 2.')
    for form in ("--list", "--check", "TASK --help", "predict --model DIR [--json]", "score", "bench", "report RUN_DIR",
                 "gpu-bench", "seeds=1,2,3"):
        assert form in result.stdout, form


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_task_usage_offers_only_what_the_task_has(name):
    result = run_cli(name, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    usage = result.stdout.split("\n\n")[0]
    facts = tasks.command_line(name)
    assert usage.startswith(f"usage: run.py {name} [run] ") and "[--steps train,evaluate,export]" in usage
    assert ("[--download]" in usage) == facts.can_download
    assert (f"run.py {name} bench " in usage) == facts.has_bench
    assert (f"run.py {name} score " in usage) == bool(facts.score_arguments)
    assert all(f"--{argument} FILE" in usage for argument in facts.score_arguments)
    assert f"run.py {name} predict --model DIR [--json]" in usage
    assert ("[--text | --file]" in usage) == facts.text_or_file_inputs
    assert all(len(line) <= 120 for line in usage.splitlines()), usage
    assert ("  --download " in result.stdout) == facts.can_download  # the options list agrees with the usage


@pytest.mark.parametrize("name", tasks.TASK_NAMES)
def test_the_light_command_line_facts_agree_with_the_task_class(name):
    """tasks.command_line answers without importing TensorFlow; the Task class is what actually runs."""
    from common.task import Task

    task_class, facts = tasks.load_task(name), tasks.command_line(name)
    assert facts.can_download == task_class.can_download
    assert facts.text_or_file_inputs == task_class.text_or_file_inputs
    assert facts.score_arguments == task_class.score_arguments and facts.score_flags == task_class.score_flags
    assert facts.has_bench == (task_class.bench is not Task.bench)


# --- parse_command: a whole command line checked without running it --------------------------------------------
def test_parse_command_returns_a_good_command_parsed():
    command = run.parse_command(["translation", "--preset", "tiny", "--set", "epochs=2", "--set", "beam_width=3",
                                 "--steps", "train,evaluate", "--data-dir", "/not/here/fra.txt", "--download"])
    assert (command.kind, command.task) == ("run", "translation")
    assert command.config.epochs == 2 and command.config.beam_width == 3 and command.options.download
    assert command.options.steps == "train,evaluate" and str(command.options.data_dir) == "/not/here/fra.txt"
    predict = run.parse_command(["sentiment", "predict", "--model", "/not/here", "--text", "--json", "a b"])
    assert predict.kind == "predict" and predict.options.json and predict.options.input_kind == "text"
    assert predict.options.inputs == ["a b"]
    score = run.parse_command(["vqa", "score", "--questions", "q.json", "--annotations", "a.json", "--predictions",
                               "p.json", "--allow-missing"])
    assert score.kind == "score" and score.options.allow_missing
    assert run.parse_command(["report", "runs/a", "--metric", "rmse"]).options.metrics == ["rmse"]
    bench = run.parse_command(["gpu-bench", "--quick", "--tasks", "vqa,translation"])
    assert bench.options.tasks == ("vqa", "translation") and bench.options.precisions[0] == "float32"
    assert run.parse_command(["acceleration", "bench", "--preset", "tiny"]).config.epochs >= 1
    assert [run.parse_command([word]).kind for word in ("--list", "--check", "--help")] == ["list", "check", "help"]
    assert run.parse_command(["vqa", "--help"]).text.startswith("usage: run.py vqa [run]")
    assert "--model MODEL" in run.parse_command(["vqa", "predict", "--help"]).text  # argparse's help, not printed


@pytest.mark.parametrize(
    "argv, error, fragment",
    [
        (["nope"], UsageError, "Unknown task 'nope'"),
        (["sentiment", "--set", "colour=red"], ConfigError, "Unknown config key 'colour'"),
        (["sentiment", "--set", "epochs=ten"], ConfigError, "--set epochs='ten': expected an integer"),
        (["sentiment", "--steps", "train,deploy"], UsageError, "--steps 'train,deploy'"),
        (["sentiment", "--steps", ""], UsageError, "--steps ''"),
        (["acceleration", "--download"], UsageError, "cannot download its dataset"),
        (["sentiment", "bench"], TaskError, "has no benchmark yet"),
        (["acceleration", "score"], UsageError, "no official results format"),
        (["captioning", "score", "--annotations", "a.json"], UsageError, "required: --predictions"),
        (["captioning", "predict", "x.jpg"], UsageError, "required: --model"),
        (["gpu-bench", "--precisions", "mixed_float16"], UsageError, "expected float32 first"),
        (["report"], UsageError, "RUN_DIR"),
        ([], UsageError, "expected a task name first"),
    ],
)
def test_parse_command_raises_what_the_real_command_raises(argv, error, fragment):
    with pytest.raises(error) as raised:
        run.parse_command(argv)
    assert fragment in str(raised.value)


def test_parse_command_imports_no_tensorflow_and_touches_no_file(tmp_path):
    commands = [["captioning", "--preset", "tiny", "--workdir", str(tmp_path / "w"), "--set", "epochs=1"],
                ["vqa", "predict", "--model", str(tmp_path / "m"), "a.jpg", "what?"],
                ["report", str(tmp_path / "r"), "--output", str(tmp_path / "out.md")],
                ["gpu-bench", "--output", str(tmp_path / "g.json")], ["language_model", "--help"]]
    script = ("import json, sys, run\n"
              "for argv in json.loads(sys.argv[1]): run.parse_command(argv)\n"
              "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'parse_command imported TF'\n")
    result = subprocess.run([sys.executable, "-c", script, json.dumps(commands)], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert not any(tmp_path.iterdir()), "parse_command wrote a file"


# --- predict: readable by default, --json for programs --------------------------------------------------------
def test_format_prediction_rounds_shortens_and_keeps_strings():
    text = runner.format_prediction({"input": "probe.npy", "next_samples": [0.0123456, -0.045678, 1e-7, 3.0] * 25,
                                     "warning": "far from the training scale"})
    assert text.splitlines() == [
        "input: probe.npy",
        "  next_samples: 100 values, first 5: 0.01235 -0.04568 1e-07 3 0.01235 ... (use --json for all)",
        "  warning: far from the training scale",
    ]
    text = runner.format_prediction({"prompt": "", "text": "one\ntwo", "score": None, "count": 3, "ok": True,
                                     "pair": [1.23456, 2], "answers": ["yes", "no"]})
    assert text.splitlines() == ['prompt: ""', "  text: one", "      two", "  score: none", "  count: 3", "  ok: true",
                                 "  pair: 1.235 2", '  answers: ["yes", "no"]']


def test_predict_prints_readable_blocks_and_json_on_request(tiny_run):
    workdir = tiny_run("acceleration")
    command = json.loads((workdir / "results.json").read_text())["export"]["predict_example"]
    readable = run_cli(*command[1:])
    assert readable.returncode == 0, readable.stderr[-2000:]
    assert "next_samples: 100 values, first 5: " in readable.stdout and "(use --json for all)" in readable.stdout
    machine = run_cli(*command[1:], "--json")
    assert machine.returncode == 0, machine.stderr[-2000:]
    lines = [json.loads(line) for line in machine.stdout.strip().splitlines()]
    assert len(lines) == readable.stdout.count("next_samples:") and len(lines[0]["next_samples"]) == 100


def test_a_data_dir_that_is_a_link_loop_is_named_as_such(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    good = tmp_path / "good.npy"
    good.write_bytes(b"")
    for data_dir, expected in ((loop, f"--data-dir {str(loop)!r} is a symbolic-link loop"),
                               (f"{good},{loop}", f"{str(loop)!r} is a symbolic-link loop")):
        result = run_cli("acceleration", "--data-dir", str(data_dir), "--workdir", str(tmp_path / "w"))
        assert result.returncode == 2 and expected in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "w").exists()


def test_a_workdir_that_cannot_be_written_is_one_error_line(tmp_path, monkeypatch, capsys):
    # As root every folder is writable, so the refusal is simulated where the operating system would say it.
    from pathlib import Path

    def refuse(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    code = run.main(["acceleration", "--preset", "tiny", "--workdir", str(tmp_path / "locked" / "run")])
    message = capsys.readouterr().err
    assert code == 2 and "cannot be written (Permission denied" in message and "Traceback" not in message
    assert not (tmp_path / "locked").exists()
