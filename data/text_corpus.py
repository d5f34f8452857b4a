"""Plain-text corpora for language modelling: one UTF-8 file, a folder of them, or the Penn Treebank layout.

``read_corpus(path)`` accepts
  * a file: any UTF-8 text file (``input.txt`` of char-rnn, an essay, a caption file);
  * a folder holding ``ptb.train.txt``, ``ptb.valid.txt`` and ``ptb.test.txt`` (Mikolov's Penn Treebank
    language-modelling files, ``<unk>`` already in the data): the three official splits, kept as they are;
  * any other folder: every ``*.txt`` file under it (recursively, sorted by path), read in that order as
    one text; empty files are skipped and counted.

Records are lines (without the line break). ``split_by_position`` cuts one text into train /
validation / test by position at line boundaries, so no line is shared between splits and the test
text follows the training text as it would in use. Every problem is a DataError that names the
file (and line): bytes that are not UTF-8, an empty file, a missing PTB part, a line without the
tab-separated field asked for. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Sequence

from data import DataError

PTB_FILES = {"train": "ptb.train.txt", "validation": "ptb.valid.txt", "test": "ptb.test.txt"}


@dataclasses.dataclass
class Corpus:
    path: str
    format: str  # "ptb" (official splits in ``splits``) or "text" (one text in ``lines``)
    lines: list[str]  # "text": every line of every file, in reading order
    splits: dict[str, list[str]]  # "ptb": train / validation / test lines; empty for "text"
    statistics: dict[str, int | list[str]]  # files, lines, characters, empty files skipped ...


def read_lines(path: Path, tab_field: int | None = None) -> list[str]:
    """The lines of one UTF-8 text file (a byte-order mark and "\\r\\n" endings are accepted).

    tab_field: keep only this 0-based tab-separated field of each non-blank line (e.g. 1 for the captions
    of Flickr8k.token.txt, ``image#k<TAB>caption``); blank lines are then dropped.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{str(path)!r} is a folder; expected a UTF-8 text file")
    if not path.is_file():
        raise DataError(f"text file {str(path)!r} does not exist")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise DataError(f"{str(path)!r} is not UTF-8 text: line {line} (byte {error.start}) holds "
                        f"{raw[error.start:error.start + 4]!r}; expected UTF-8 (re-encode it, e.g. iconv -t utf-8)"
                        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise DataError(f"{str(path)!r} holds a NUL byte on line {line}: a binary file, not text")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final line break ends the last line; it does not start an empty one
    if tab_field is not None:
        kept = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) <= tab_field:
                raise DataError(f"{str(path)!r} line {number} has {len(fields)} tab-separated field(s); "
                                f"tab_field={tab_field} expects at least {tab_field + 1}")
            kept.append(fields[tab_field].strip())
        lines = kept
    if not any(line.strip() for line in lines):
        raise DataError(f"{str(path)!r} is empty (no non-blank line); expected UTF-8 text")
    return lines


def read_corpus(path: Path, tab_field: int | None = None) -> Corpus:
    path = Path(path)
    if not path.exists():
        raise DataError(f"text corpus {str(path)!r} does not exist; expected a UTF-8 .txt file or a folder of them")
    if path.is_file():
        lines = read_lines(path, tab_field)
        return Corpus(str(path), "text", lines, {}, _statistics([path], lines))
    present = {split: path / name for split, name in PTB_FILES.items() if (path / name).is_file()}
    if present:
        missing = [PTB_FILES[split] for split in PTB_FILES if split not in present]
        if missing:
            raise DataError(f"{str(path)!r} holds a Penn Treebank layout without {missing}; expected all of "
                            f"{list(PTB_FILES.values())}")
        splits = {split: read_lines(file, tab_field) for split, file in present.items()}
        everything = [line for lines in splits.values() for line in lines]
        return Corpus(str(path), "ptb", [], splits, _statistics(list(present.values()), everything))
    files = sorted(p for p in path.rglob("*.txt") if p.is_file())
    if not files:
        raise DataError(f"folder {str(path)!r} holds no .txt file; expected UTF-8 .txt files or the Penn Treebank "
                        f"files {list(PTB_FILES.values())}")
    lines, read, empty = [], [], []
    for file in files:
        try:
            lines += read_lines(file, tab_field)
            read.append(file)
        except DataError as error:
            if "is empty" not in str(error):
                raise
            empty.append(str(file.relative_to(path)))
    if not read:
        raise DataError(f"every .txt file under {str(path)!r} is empty ({len(empty)} files); expected text")
    return Corpus(str(path), "text", lines, {}, {**_statistics(read, lines), "empty_files_skipped": empty})


def _statistics(files: Sequence[Path], lines: Sequence[str]) -> dict[str, int | list[str]]:
    return {"files": len(files), "lines": len(lines), "characters": sum(len(line) + 1 for line in lines)}


def split_by_position(lines: Sequence[str], validation_fraction: float,
                      test_fraction: float) -> dict[str, list[str]]:
    """Train = the first lines, validation = the next, test = the last, cut at line boundaries so that
    the splits hold about these fractions of the characters; each split gets at least one line."""
    lines = list(lines)
    if len(lines) < 3:
        raise DataError(f"the text has {len(lines)} line(s); splitting it by position into train, validation and "
                        "test needs at least 3 lines")
    total = sum(len(line) + 1 for line in lines)
    cumulative, boundaries = 0, []
    targets = [total * (1 - validation_fraction - test_fraction), total * (1 - test_fraction)]
    for index, line in enumerate(lines):
        while len(boundaries) < 2 and cumulative >= targets[len(boundaries)]:
            boundaries.append(index)
        cumulative += len(line) + 1
    while len(boundaries) < 2:
        boundaries.append(len(lines))
    first = min(max(boundaries[0], 1), len(lines) - 2)
    second = min(max(boundaries[1], first + 1), len(lines) - 1)
    return {"train": lines[:first], "validation": lines[first:second], "test": lines[second:]}
