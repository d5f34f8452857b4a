"""run.py: listing, and one clear error line with exit code 2 for every usage error."""

import pytest

import tasks
from conftest import run_cli


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

    bin_dir = tmp_path / "bin"  # a PATH with python but no java, as on a laptop without a JRE
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": str(bin_dir)}
    result = subprocess.run([str(bin_dir / "python"), str(ROOT / "run.py"), "--check"], capture_output=True,
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

    # What the console script does (importing run.py filters this process's stderr, so in a child).
    result = subprocess.run([sys.executable, "-c", "import sys, run; sys.exit(run.main(['--list']))"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "acceleration" in result.stdout, result.stderr
