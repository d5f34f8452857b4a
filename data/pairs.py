"""Reader for tab-separated sentence-pair files (Tatoeba / manythings.org layout).

Each line is ``first\\tsecond`` or ``first\\tsecond\\tattribution`` (e.g. ``fra-eng/fra.txt``:
English, French, then the Tatoeba attribution). ``direction`` picks which column is the source:
"first-to-second" (English → French for those files) or "second-to-first".

Explicit policies, counted in the returned statistics:
- a line with fewer than 2 or more than 3 tab-separated fields is an error naming the line;
- every line must have the column count of the first (2, or 3 with the attribution): in a 3-column
  file a line that lost one tab would otherwise pair "source target" with the attribution;
- a blank line is skipped (counted as ``blank_lines``);
- a pair with an empty side (after stripping spaces) is skipped (``empty_side``);
- an exact duplicate of an earlier (source, target) pair is dropped (``duplicates``);
- the same source with different targets is kept: several references of one source sentence.

A folder may be given instead of a file: the one ``*.txt`` pair file in it is read. Reading a
tensorflow-datasets data folder (optional in the issue) is not implemented yet.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from data import DataError

DIRECTIONS = ("first-to-second", "second-to-first")


@dataclasses.dataclass(frozen=True)
class Pair:
    source: str
    target: str


@dataclasses.dataclass
class PairFile:
    pairs: list[Pair]
    path: str
    statistics: dict[str, int]


def find_pair_file(path: Path) -> Path:
    """``path`` itself when it is a file, else the single ``*.txt`` file in the folder."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"Pair file {str(path)!r} does not exist; expected a tab-separated .txt file or its folder")
    candidates = sorted(p for p in path.glob("*.txt") if p.name.lower() not in {"readme.txt", "_about.txt"})
    if len(candidates) != 1:
        raise DataError(
            f"Folder {str(path)!r} holds {len(candidates)} candidate pair files {[p.name for p in candidates]}; "
            "expected exactly one tab-separated .txt file (or give the file itself)"
        )
    return candidates[0]


def read_pairs(path: Path, direction: str = "first-to-second") -> PairFile:
    """Reads every pair of the file as (source, target) strings, stripped of surrounding spaces."""
    if direction not in DIRECTIONS:
        raise DataError(f"direction={direction!r}; expected one of {list(DIRECTIONS)}")
    file = find_pair_file(path)
    statistics = {"lines": 0, "blank_lines": 0, "empty_side": 0, "duplicates": 0}
    seen: set[tuple[str, str]] = set()
    pairs: list[Pair] = []
    layout: tuple[int, int] | None = None  # (fields per line, the line that set it)
    try:
        handle = open(file, encoding="utf-8-sig", newline="")
    except OSError as error:
        raise DataError(f"Cannot open pair file {str(file)!r}: {error}") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                statistics["lines"] += 1
                line = line.rstrip("\r\n")
                if not line.strip():
                    statistics["blank_lines"] += 1
                    continue
                fields = line.split("\t")
                if not 2 <= len(fields) <= 3:
                    raise DataError(
                        f"{file}:{number}: found {len(fields)} tab-separated field(s) in {line[:80]!r}; "
                        "expected 'source<TAB>target' with an optional third attribution field"
                    )
                if layout is None:
                    layout = (len(fields), number)
                elif len(fields) != layout[0]:
                    raise DataError(
                        f"{file}:{number}: found {len(fields)} tab-separated fields in {line[:80]!r}, but the file's "
                        f"layout (line {layout[1]}) has {layout[0]}; a missing or extra tab would pair the wrong "
                        "columns: fix the line"
                    )
                first, second = fields[0].strip(), fields[1].strip()
                if not first or not second:
                    statistics["empty_side"] += 1
                    continue
                source, target = (first, second) if direction == "first-to-second" else (second, first)
                if (source, target) in seen:
                    statistics["duplicates"] += 1
                    continue
                seen.add((source, target))
                pairs.append(Pair(source, target))
        except UnicodeDecodeError as error:
            raise DataError(f"{file}: not UTF-8 text ({error}); expected a UTF-8 tab-separated pair file") from None
    if not pairs:
        raise DataError(f"{file}: no usable sentence pairs (statistics: {statistics})")
    statistics["pairs"] = len(pairs)
    statistics["unique_sources"] = len({pair.source for pair in pairs})
    return PairFile(pairs=pairs, path=str(file), statistics=statistics)


def write_pairs(path: Path, pairs: list[tuple[str, str]], attribution: str | None = None) -> None:
    """Writes pairs in the same layout (used by the synthetic generator); atomically."""
    from common.io import atomic_write_text

    lines = []
    for source, target in pairs:
        if "\t" in source or "\t" in target or "\n" in source or "\n" in target:
            raise DataError(f"Cannot write pair {(source, target)!r}: tabs/newlines are not allowed inside a side")
        lines.append(f"{source}\t{target}" + (f"\t{attribution}" if attribution else ""))
    atomic_write_text(path, "\n".join(lines) + "\n")


def split_by_source(
    pairs: list[Pair], validation_fraction: float, test_fraction: float, seed: int
) -> tuple[list[Pair], list[Pair], list[Pair]]:
    """Seeded train / validation / test split of the distinct source sentences.

    All pairs of one source sentence (compared case-insensitively) land in the same split, so no
    validation or test source is seen in training. Each split keeps the file's order.
    """
    import random

    keys = sorted({pair.source.casefold() for pair in pairs})
    random.Random(seed).shuffle(keys)
    test_count = max(1, round(len(keys) * test_fraction))
    validation_count = max(1, round(len(keys) * validation_fraction))
    if test_count + validation_count >= len(keys):
        raise DataError(
            f"Only {len(keys)} distinct source sentences: too few for validation ({validation_count}) and test "
            f"({test_count}) splits plus training; expected at least {test_count + validation_count + 1}"
        )
    split_of = {key: "test" for key in keys[:test_count]}
    split_of.update({key: "validation" for key in keys[test_count : test_count + validation_count]})
    splits: dict[str, list[Pair]] = {"train": [], "validation": [], "test": []}
    for pair in pairs:
        splits[split_of.get(pair.source.casefold(), "train")].append(pair)
    return splits["train"], splits["validation"], splits["test"]


def group_references(pairs: list[Pair]) -> tuple[list[str], list[list[str]]]:
    """Distinct sources (file order) and, for each, all its target sentences (the references)."""
    references: dict[str, list[str]] = {}
    for pair in pairs:
        references.setdefault(pair.source, []).append(pair.target)
    return list(references), list(references.values())
