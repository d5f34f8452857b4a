"""Reader for tab-separated sentence-pair files (Tatoeba / manythings.org layout).

Each line is ``first\\tsecond`` or ``first\\tsecond\\tattribution`` (e.g. ``fra-eng/fra.txt``:
English, French, then the Tatoeba attribution). ``direction`` picks which column is the source:
"first-to-second" (English → French for those files) or "second-to-first".

Explicit policies, counted in the returned statistics:
- a line with fewer than 2 or more than 3 tab-separated fields is an error naming the line;
- every line must have the column count of the first (2, or 3 with the attribution): in a 3-column
  file a line that lost one tab would otherwise pair "source target" with the attribution;
- a blank line is skipped (counted as ``blank_lines``);
- a pair with an empty side (after stripping spaces) is skipped (``empty_side``), with a logged warning naming
  the file, the count and the first such line; a file whose every pair has an empty side is an error;
- an exact duplicate of an earlier (source, target) pair is dropped (``duplicates``);
- the same source with different targets is kept: several references of one source sentence.

A folder may be given instead of a file: the one ``*.txt`` pair file in it is read.

``read_corpus`` is the translation task's one entry point: it recognises a tab-separated file (this
module), a folder of line-aligned parallel files (``train.en`` + ``train.fr``, data/parallel_files.py)
or a tensorflow-datasets data dir (``ted_hrlr_translate``, ``wmt14_translate``, data/tfds_sources.py),
and returns a :class:`Corpus`: the training pairs and, where the source defines them, its official
validation and test pairs. ``complete_splits`` holds out by source sentence whatever split is missing.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from pathlib import Path
from typing import Any, Iterable, Sequence, TypeVar

from data import DataError

Item = TypeVar("Item")

logger = logging.getLogger(__name__)

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
    empty_sides = {"source": 0, "target": 0}  # pairs skipped for an empty source / target, for the warning
    first_empty_line: int | None = None
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
                source, target = (first, second) if direction == "first-to-second" else (second, first)
                if not source or not target:
                    statistics["empty_side"] += 1
                    empty_sides["source" if not source else "target"] += 1
                    first_empty_line = first_empty_line or number
                    continue
                if (source, target) in seen:
                    statistics["duplicates"] += 1
                    continue
                seen.add((source, target))
                pairs.append(Pair(source, target))
        except UnicodeDecodeError as error:
            raise DataError(f"{file}: not UTF-8 text ({error}); expected a UTF-8 tab-separated pair file") from None
    read = statistics["lines"] - statistics["blank_lines"]
    if statistics["empty_side"]:
        sides = ", ".join(f"{count} with an empty {side}" for side, count in empty_sides.items() if count)
        if statistics["empty_side"] == read:
            raise DataError(f"{file}: every one of its {read} pairs has an empty side ({sides}; first at line "
                            f"{first_empty_line}); expected 'source<TAB>target' with text on both sides")
        logger.warning("%s: skipped %d of %d pairs (%.1f%%) with an empty side (%s; first at line %d)", file,
                       statistics["empty_side"], read, 100.0 * statistics["empty_side"] / read, sides, first_empty_line)
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


# --- every translation source: a Corpus with the source's own splits ---------------------------------


@dataclasses.dataclass
class Corpus:
    """Sentence pairs of one source. ``splits`` holds "train" always, and "validation" / "test" where
    the source defines them (official splits); ``complete_splits`` supplies the missing ones."""

    splits: dict[str, list[Pair]]
    path: str  # the file or folder read
    format: str  # "tab-separated pairs" | "parallel files" | "tfds NAME/CONFIG/VERSION"
    languages: tuple[str, str] | None  # (source, target) codes; None where the files do not name them
    statistics: dict[str, Any]  # reading statistics: the file's, or one dict per split read


@dataclasses.dataclass
class Splits:
    train: list[Pair]
    validation: list[Pair]
    test: list[Pair]
    facts: dict[str, Any]  # where each held-out split came from, and how many test sources training saw


def read_corpus(path: Path, *, direction: str = "first-to-second", source_language: str | None = None,
                target_language: str | None = None, validation_set: str | None = None, test_set: str | None = None,
                tfds_dataset: str | None = None, max_pairs: int | None = None, seed: int = 0) -> Corpus:
    """The translation source at ``path``, recognised from its files (see the module docstring).

    ``max_pairs`` caps the training pairs (a seeded choice, made before any split is held out of them);
    official validation and test splits are always read whole.
    """
    from data import parallel_files, tfds_sources

    path = Path(path)
    if direction not in DIRECTIONS:
        raise DataError(f"direction={direction!r}; expected one of {list(DIRECTIONS)}")
    if path.is_dir() and tfds_sources.find(path, tfds_sources.TRANSLATION_DATASETS):
        kind = "tfds"
    elif path.is_dir() and parallel_files.is_parallel_folder(path):
        kind = "parallel"
    else:
        kind = "tab"
    # A setting that does not apply to the source found would be silently ignored: say so instead.
    inapplicable = {"tab": {"source_language": source_language, "target_language": target_language,
                            "validation_set": validation_set, "test_set": test_set, "tfds_dataset": tfds_dataset},
                    "parallel": {"tfds_dataset": tfds_dataset},
                    "tfds": {"validation_set": validation_set, "test_set": test_set}}[kind]
    given = sorted(key for key, value in inapplicable.items() if value is not None)
    if given:
        found = {"tab": "a tab-separated pair file", "parallel": "line-aligned parallel files",
                 "tfds": "a tensorflow-datasets data dir"}[kind]
        raise DataError(f"{path}: holds {found}, to which {given} do not apply; unset them, or point --data-dir "
                        "at the source they are meant for")
    if kind == "tfds":
        return tfds_sources.read_translation(path, tfds_dataset, direction=direction, source_language=source_language,
                                             target_language=target_language, max_pairs=max_pairs, seed=seed)
    if kind == "parallel":
        return parallel_files.read_parallel_folder(path, direction=direction, source_language=source_language,
                                                   target_language=target_language, validation_set=validation_set,
                                                   test_set=test_set, max_pairs=max_pairs, seed=seed)
    pair_file = read_pairs(path, direction)
    records = pair_file.pairs
    if max_pairs is not None and len(records) > max_pairs:
        chosen = sorted(random.Random(seed).sample(range(len(records)), max_pairs))
        records = [records[i] for i in chosen]
    return Corpus(splits={"train": records}, path=pair_file.path, format="tab-separated pairs", languages=None,
                  statistics=pair_file.statistics)


def pick_languages(available: Sequence[str], source: str | None, target: str | None, direction: str,
                   where: str) -> tuple[str, str]:
    """(source, target) among the language codes ``available``, in the order the data gives them.

    An unset language is "the other one": with neither set, the data must hold exactly two
    languages, and ``direction`` says whether the first or the second is the source.
    """
    available = list(available)
    for name, value in (("source_language", source), ("target_language", target)):
        if value is not None and value not in available:
            raise DataError(f"{where}: {name}={value!r}, but the languages present are {available}; "
                            "expected one of them")
    if source is not None and source == target:
        raise DataError(f"{where}: source_language and target_language are both {source!r}; expected two "
                        "different languages")
    if source is not None and target is not None:
        return source, target
    others = [language for language in available if language not in (source, target)]
    if source is None and target is None:
        if len(available) != 2:
            raise DataError(f"{where}: holds {len(available)} languages {available}; choose the pair with "
                            "--set source_language=CODE --set target_language=CODE")
        first, second = available
        return (first, second) if direction == "first-to-second" else (second, first)
    if len(others) != 1:
        missing = "target_language" if target is None else "source_language"
        raise DataError(f"{where}: holds the languages {available}; with {len(others)} candidates left, "
                        f"set {missing} too")
    return (source, others[0]) if target is None else (others[0], target)


def reservoir_sample(items: Iterable[Item], limit: int | None, seed: int) -> list[Item]:
    """At most ``limit`` items, a seeded uniform choice made in one pass (memory for ``limit`` items
    only: WMT14 fr-en has 40 million pairs), in their original order. ``limit`` None = all."""
    if limit is None:
        return list(items)
    generator = random.Random(seed)
    chosen: list[tuple[int, Item]] = []
    for index, item in enumerate(items):
        if index < limit:
            chosen.append((index, item))
        else:  # Algorithm R: item i replaces a random slot with probability limit / (i + 1)
            slot = generator.randrange(index + 1)
            if slot < limit:
                chosen[slot] = (index, item)
    chosen.sort(key=lambda entry: entry[0])
    return [item for _, item in chosen]


def hold_out_by_source(pairs: list[Pair], fraction: float, seed: int, what: str) -> tuple[list[Pair], list[Pair]]:
    """(kept, held out): a seeded ``fraction`` of the distinct sources (case-insensitive) with all their pairs."""
    keys = sorted({pair.source.casefold() for pair in pairs})
    random.Random(seed).shuffle(keys)
    count = max(1, round(len(keys) * fraction))
    if count >= len(keys):
        raise DataError(f"Only {len(keys)} distinct source sentences in the training split: too few to hold "
                        f"{count} out as the {what} split and train on the rest")
    held = set(keys[:count])
    return ([pair for pair in pairs if pair.source.casefold() not in held],
            [pair for pair in pairs if pair.source.casefold() in held])


def complete_splits(corpus: Corpus, validation_fraction: float, test_fraction: float, seed: int) -> Splits:
    """Train / validation / test: the source's official splits where it has them; a missing split is held
    out of the training pairs by source sentence (``split_by_source`` when both are missing)."""
    train = corpus.splits["train"]
    validation, test = corpus.splits.get("validation"), corpus.splits.get("test")
    held = "held out of train by source sentence"
    origin = {"validation": "official" if validation is not None else held,
              "test": "official" if test is not None else held}
    if validation is None and test is None:
        train, validation, test = split_by_source(train, validation_fraction, test_fraction, seed)
    elif validation is None:
        train, validation = hold_out_by_source(train, validation_fraction, seed, "validation")
    elif test is None:
        train, test = hold_out_by_source(train, test_fraction, seed, "test")
    facts: dict[str, Any] = {"splits_from": origin}
    if origin["test"] == "official":  # official test sets may repeat training sentences: say how many
        seen = {pair.source.casefold() for pair in train}
        facts["test_sources_seen_in_training"] = len({p.source for p in test if p.source.casefold() in seen})
    return Splits(train=train, validation=validation, test=test, facts=facts)
