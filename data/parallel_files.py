"""Reader for line-aligned parallel files: the WMT / Multi30k / IWSLT layout.

A folder holds one file per split and language, ``<set>.<language>`` (optionally gzipped,
``<set>.<language>.gz``), one sentence per line, line *i* of ``train.en`` translating line *i* of
``train.fr``::

    multi30k/  train.en train.fr val.en val.fr test_2016_flickr.en test_2016_flickr.fr ...
    wmt14/     train.en train.de newstest2013.en newstest2013.de newstest2014.en newstest2014.de

The set's name says its split: ``train*`` is training; ``val*``, ``valid*``, ``validation*``, ``dev*``
and ``newsdev*`` validation; ``test*``, ``tst*`` and ``newstest*`` test. Where several sets claim a split
(newstest2013 and newstest2014), ``validation_set`` / ``test_set`` name the one to use; a missing
split is held out of train by the caller (data.pairs.complete_splits).

Explicit policies:
- the two files of a set must have the same number of lines: a mismatch is an error naming both
  files and both counts (one missing line shifts every later pair);
- lines end at ``\\n`` only (``\\r`` before it is dropped): U+2028 or U+0085 inside a sentence do not
  split it, as they would with ``str.splitlines`` and desynchronise the two sides;
- a line blank on both sides is skipped (``blank_lines``); blank on one side only is an error naming
  the line (a sentence without its translation is damage, not data);
- duplicates are kept: in these corpora a repeated pair is a genuine repeat, and official test sets
  are read exactly as published.
"""

from __future__ import annotations

import gzip
import itertools
import re
from pathlib import Path
from typing import Any, Iterator

from data import DataError
from data.pairs import Corpus, Pair, pick_languages, reservoir_sample

# A language code: "en", "fra", "pt_br", "zh-Hans". Common 2–4 letter file extensions are not languages.
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})?$")
_NOT_LANGUAGES = {"txt", "tsv", "csv", "md", "py", "sh", "zip", "tgz", "tar", "bz2", "xz", "xml", "sgm", "log",
                  "pdf", "gz", "json", "yml", "cfg", "ini", "html", "htm", "bak", "tmp", "old", "sgml"}
# The first run of letters of a set's name → its split.
_ROLES = {"train": "train", "val": "validation", "valid": "validation", "validation": "validation",
          "dev": "validation", "newsdev": "validation", "test": "test", "tst": "test", "newstest": "test"}


def role(name: str) -> str | None:
    """"train" / "validation" / "test" for a set name such as ``newstest2014``; None for others."""
    match = re.match(r"[a-z]+", name.lower())
    return _ROLES.get(match.group(0)) if match else None


def scan(folder: Path) -> dict[str, dict[str, Path]]:
    """{set name: {language: file}} of the ``<set>.<language>[.gz]`` files directly in ``folder``."""
    sets: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        base = path.name[:-3] if path.name.endswith(".gz") else path.name
        name, dot, language = base.rpartition(".")
        if not dot or not name or not _LANGUAGE.match(language) or language.lower() in _NOT_LANGUAGES:
            continue
        if language in sets.setdefault(name, {}):
            raise DataError(f"{folder}: both {sets[name][language].name} and {path.name} hold set {name!r} in "
                            f"{language!r}; expected one file per set and language")
        sets[name][language] = path
    return sets


def is_parallel_folder(folder: Path) -> bool:
    """True when ``folder`` holds a training set (``train*.<language>``) in at least two languages."""
    return any(role(name) == "train" and len(files) >= 2 for name, files in scan(folder).items())


def _open(path: Path):
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8-sig", newline="\n")
        return open(path, encoding="utf-8-sig", newline="\n")
    except OSError as error:
        raise DataError(f"Cannot open {path}: {error}") from None


def read_aligned(source_file: Path, target_file: Path, statistics: dict[str, int]) -> Iterator[Pair]:
    """Yields the (source line, target line) pairs of two line-aligned files, stripped, counting
    ``lines`` and ``blank_lines`` in ``statistics`` (see the module docstring for the policies)."""
    statistics.update(lines=0, blank_lines=0)
    with _open(source_file) as sources, _open(target_file) as targets:
        number = 0
        try:
            for number, (source, target) in enumerate(itertools.zip_longest(sources, targets), start=1):
                if source is None or target is None:
                    # Count the rest of the longer file so the message gives both totals.
                    longer = targets if source is None else sources
                    total = number + sum(1 for _ in longer)
                    counts = (number - 1, total) if source is None else (total, number - 1)
                    raise DataError(f"{source_file} has {counts[0]:,} lines but {target_file} has {counts[1]:,}; "
                                    "expected the same number (line-aligned parallel files: line i of one "
                                    "translates line i of the other)")
                statistics["lines"] += 1
                source, target = source.rstrip("\n").rstrip("\r").strip(), target.rstrip("\n").rstrip("\r").strip()
                if not source and not target:
                    statistics["blank_lines"] += 1
                    continue
                if not source or not target:
                    blank, other, text = ((source_file, target_file, target) if not source
                                          else (target_file, source_file, source))
                    raise DataError(f"{blank}:{number}: blank line, but line {number} of {other} is {text[:60]!r}; "
                                    "expected a sentence on both sides (or both lines blank)")
                yield Pair(source, target)
        except UnicodeDecodeError as error:
            raise DataError(f"{source_file} / {target_file}, near line {number + 1}: not UTF-8 text ({error}); "
                            "expected UTF-8 parallel files") from None
        except (OSError, EOFError) as error:  # a damaged .gz file
            raise DataError(f"{source_file} / {target_file}, near line {number + 1}: unreadable ({error})") from None


def read_parallel_folder(folder: Path, *, direction: str = "first-to-second", source_language: str | None = None,
                         target_language: str | None = None, validation_set: str | None = None,
                         test_set: str | None = None, max_pairs: int | None = None, seed: int = 0) -> Corpus:
    """The folder's training set and, where present, its official validation and test sets.

    Languages: ``source_language`` / ``target_language``; unset = the only two languages of the
    training set, in alphabetical order, ``direction`` picking which is the source. ``max_pairs`` caps
    the training pairs (seeded reservoir choice, file order kept).
    """
    folder = Path(folder)
    sets = scan(folder)
    training = [name for name, files in sets.items() if role(name) == "train" and len(files) >= 2]
    if len(training) != 1:
        raise DataError(f"{folder}: {len(training)} training sets {training}; expected exactly one set of "
                        "train*.<language> files (e.g. train.en + train.fr)")
    source, target = pick_languages(sorted(sets[training[0]]), source_language, target_language, direction,
                                    f"{folder}/{training[0]}.*")
    both = [name for name, files in sets.items() if source in files and target in files]
    chosen = {"train": training[0]}
    for split, wanted in (("validation", validation_set), ("test", test_set)):
        if wanted is not None:
            if wanted not in both:
                raise DataError(f"{folder}: {split}_set={wanted!r}, but the sets in both {source!r} and {target!r} "
                                f"are {both}; expected one of them")
            if wanted in chosen.values():
                raise DataError(f"{folder}: set {wanted!r} cannot be both the {split} split and another split")
            chosen[split] = wanted
            continue
        candidates = [name for name in both if role(name) == split and name not in chosen.values()
                      and name not in (validation_set, test_set)]
        if len(candidates) > 1:
            raise DataError(f"{folder}: several {split} sets {candidates} in {source!r} and {target!r}; choose one "
                            f"with --set {split}_set=NAME")
        if candidates:
            chosen[split] = candidates[0]
    splits: dict[str, list[Pair]] = {}
    statistics: dict[str, Any] = {}
    for split, name in chosen.items():
        counts: dict[str, Any] = {"files": [sets[name][source].name, sets[name][target].name]}
        pairs = read_aligned(sets[name][source], sets[name][target], counts)
        splits[split] = reservoir_sample(pairs, max_pairs if split == "train" else None, seed)
        if not splits[split]:
            raise DataError(f"{folder}: set {name!r} has no sentence pairs (all {counts['lines']} lines blank)")
        counts["pairs"] = len(splits[split])
        statistics[split] = counts
    return Corpus(splits=splits, path=str(folder), format="parallel files", languages=(source, target),
                  statistics=statistics)
