"""What a user reads is portable (DESIGN rule 18): the README and every task's page name no machine path and
no development history, every ``python run.py ...`` line of their ```bash blocks is a command run.py accepts,
and every relative link points to a file (and heading) that exists. Seconds, no TensorFlow, no training."""

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import tasks
from conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "tasks").glob("*/README.md")), ROOT / "common" / "distributed.md"]
SHELL_BLOCKS = ("bash", "sh", "shell")  # fenced blocks whose lines are commands to run; ```text holds general forms

# A path of one machine: a home or scratch folder, or a drive letter; `~/...` and relative paths are portable.
MACHINE_PATH = re.compile(r"(?<![\w~.\-])/(?:work|tmp|home|root|Users|mnt|scratch|var|opt|private|data)/"
                          r"|\b[A-Za-z]:\\|\.\./shared/")
HISTORY = re.compile(
    r"\bissue\s+#?\d+|\(issue|\bcommit\s+[0-9a-f]{7,40}\b|\bthis session\b|\bsession's\b|\btyped rows\b"
    r"|task-shape change|\bre-?measured after\b|\bwithdrawn\b|\bpreviously\b|\bbefore this change\b"
    r"|low-priority job|\bdevelopment machine\b|\bthe history\b|\bwas fixed\b|\bno longer\b",
    re.IGNORECASE,
)
# A bare abbreviated or full git hash: 7-40 hex digits with at least one digit and one letter.
COMMIT_HASH = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")


def _name(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _blocks(text: str):
    """(info string, first line number, lines) of every fenced code block."""
    blocks, current = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        match = FENCE.match(line)
        if current is None and match:
            current = (match.group(3).lower(), number + 1, [], match.group(2))
        elif current is not None and line.strip().startswith(current[3]) and not line.strip()[len(current[3]):]:
            blocks.append(current[:3])
            current = None
        elif current is not None:
            current[2].append(line)
    assert current is None, f"a code block opened at line {current[1] - 1} is never closed"
    return blocks


def _prose(text: str, inline_code: bool = False) -> str:
    """The page without its fenced blocks and (unless ``inline_code``) inline code: where links are links."""
    kept, inside = [], None
    for line in text.splitlines():
        match = FENCE.match(line)
        if inside is None and match:
            inside = match.group(2)
        elif inside is not None and line.strip() == inside:
            inside = None
        elif inside is None:
            kept.append(line if inline_code else re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def _commands(page: Path):
    """(line number, argv after run.py) of every ``python run.py`` command in the page's shell blocks; a line
    ending in a backslash continues on the next, and ``&&``/``;``/``|``/``&`` separate commands."""
    found = []
    for info, first, lines in _blocks(page.read_text(encoding="utf-8")):
        if info not in SHELL_BLOCKS:
            continue
        joined, start = "", None
        for offset, line in enumerate(lines):
            start = first + offset if not joined else start
            joined += line.rstrip()[:-1] + " " if line.rstrip().endswith("\\") else line
            if line.rstrip().endswith("\\"):
                continue
            words, joined = shlex.split(joined, comments=True), ""
            command: list[str] = []
            for word in [*words, ";"]:
                if word not in ("&&", "||", ";", "|", "&"):
                    command.append(word)
                    continue
                while command and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", command[0]):
                    command.pop(0)  # KERAS_BACKEND=jax python run.py ...
                if len(command) >= 2 and command[0] in ("python", "python3") and Path(command[1]).name == "run.py":
                    found.append((start, command[2:]))
                command = []
        assert not joined, f"{_name(page)}: a shell block ends in a line continuation"
    return found


COMMANDS = [(_name(page), line, argv) for page in PAGES for line, argv in _commands(page)]


def test_every_task_has_a_page_linked_from_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in tasks.TASK_NAMES:
        assert (ROOT / "tasks" / name / "README.md").is_file(), f"tasks/{name}/README.md is missing"
        assert f"(tasks/{name}/README.md)" in readme, f"README.md does not link to tasks/{name}/README.md"


def test_the_readme_is_a_short_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the front door keeps to 200 (details: task pages)"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_no_machine_path_and_no_development_history(page):
    problems = []
    for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
        for pattern, what in ((MACHINE_PATH, "a machine path"), (HISTORY, "development history"),
                              (COMMIT_HASH, "a commit hash")):
            match = pattern.search(line)
            if match:
                problems.append(f"{_name(page)}:{number}: {what} {match.group(0)!r}: {line.strip()[:120]}")
    assert not problems, "\n".join(problems)


def test_ci_runs_exactly_the_readme_install_and_test_lines():
    """.ci/run runs the README's "Install" and "Test" command lines as they are, in the same order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    wanted = []
    for section in ("Install", "Test"):
        body = re.search(rf"^## {section}\n(.*?)(?=^## |\Z)", readme, re.MULTILINE | re.DOTALL)
        assert body, f"README.md has no '## {section}' section"
        blocks = [lines for info, _, lines in _blocks(body.group(1)) if info in SHELL_BLOCKS]
        assert blocks, f"README.md's '## {section}' section has no ```bash block"
        wanted += [line.strip() for lines in blocks for line in lines if line.strip()]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()]
    positions = []
    for line in wanted:
        assert line in ci, f".ci/run does not run the README line {line!r}"
        positions.append(ci.index(line))
    assert positions == sorted(positions), ".ci/run runs the README's install and test lines in another order"


def test_every_page_has_commands_to_check():
    pages_with_commands = {page for page, _, _ in COMMANDS}
    assert pages_with_commands == {_name(page) for page in PAGES}, "a page without a ```bash block of run.py lines"


@pytest.fixture(scope="module")
def parsed():
    """Every command through run.parse_command in one child process (no TensorFlow may be imported)."""
    script = (
        "import json, sys\n"
        "import run\n"
        "answers = []\n"
        "for argv in json.load(sys.stdin):\n"
        "    try:\n"
        "        run.parse_command(argv)\n"
        "        answers.append(None)\n"
        "    except BaseException as error:  # argparse exits; run.py raises its usage errors\n"
        "        answers.append(f'{type(error).__name__}: {error}')\n"
        "assert 'tensorflow' not in sys.modules, 'parse_command imported TensorFlow'\n"
        "print(json.dumps(answers))\n"
    )
    environment = {"RNN_SUITE_RAW_STDERR": "1"}
    import os

    # The last command is a known-bad one: the check is not vacuous while parse_command rejects it.
    commands = [argv for _, _, argv in COMMANDS] + [["acceleration", "--set", "no_such_key=1"]]
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, input=json.dumps(commands),
                            capture_output=True, text=True, timeout=120, env={**os.environ, **environment})
    assert result.returncode == 0, result.stderr[-3000:]
    answers = json.loads(result.stdout.strip().splitlines()[-1])
    assert answers[-1] and "no_such_key" in answers[-1], f"a bad command was accepted: {answers[-1]}"
    return answers[:-1]


@pytest.mark.parametrize("index", range(len(COMMANDS)),
                         ids=[f"{page}:{line}" for page, line, _ in COMMANDS])
def test_every_documented_command_parses(parsed, index):
    page, line, argv = COMMANDS[index]
    assert parsed[index] is None, f"{page}:{line}: python run.py {shlex.join(argv)}\n  → {parsed[index]}"


def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower-case, punctuation dropped (an inline code span keeps its text), spaces →
    hyphens, repeats numbered."""
    seen: dict[str, int] = {}
    anchors = set()
    for line in _prose(page.read_text(encoding="utf-8"), inline_code=True).splitlines():
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_relative_links_point_to_files_and_headings_that_exist(page):
    problems = []
    for target in LINK.findall(_prose(page.read_text(encoding="utf-8"))):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            problems.append(f"{_name(page)}: link {target!r}: no such file")
        elif not destination.resolve().is_relative_to(ROOT):
            problems.append(f"{_name(page)}: link {target!r} leaves the repository")
        elif anchor and destination.suffix == ".md" and anchor not in _anchors(destination):
            problems.append(f"{_name(page)}: link {target!r}: no heading with that anchor in {destination.name}")
    assert not problems, "\n".join(problems)


# --- the checks themselves ----------------------------------------------------------------------------------------
def test_the_checks_catch_what_they_are_for(tmp_path):
    assert MACHINE_PATH.search("--data-dir /work/shared/data/x.npz") and MACHINE_PATH.search("in /tmp/run")
    assert MACHINE_PATH.search("../shared/data/cwru") and MACHINE_PATH.search("C:\\Users\\me")
    assert not MACHINE_PATH.search("https://ai.stanford.edu/~amaas/data/sentiment/ and ~/tensorflow_datasets")
    assert not MACHINE_PATH.search("runs/acceleration/data/signal.npz")
    assert HISTORY.search("(issue 12)") and HISTORY.search("commit aa5555d") and HISTORY.search("with this session's")
    assert COMMIT_HASH.search("see efcdf37 for it") and not COMMIT_HASH.search("2026 1797 decade added 1e-3")
    page = tmp_path / "README.md"
    page.write_text("# Top\n## Speed and scale\n### Real prose with `--preset text`\n"
                    "```bash\npython run.py vqa \\\n  --preset tiny  # smoke\n"
                    "X=1 python run.py --check && python run.py report a b\npip install x\n```\n"
                    "```text\npython run.py TASK\n```\n[a](README.md#speed-and-scale) `[b](nope.md)`\n")
    assert _commands(page) == [(5, ["vqa", "--preset", "tiny"]), (7, ["--check"]), (7, ["report", "a", "b"])]
    assert _anchors(page) == {"top", "speed-and-scale", "real-prose-with---preset-text"}
    assert LINK.findall(_prose(page.read_text())) == ["README.md#speed-and-scale"]
