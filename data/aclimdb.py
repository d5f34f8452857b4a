"""Readers of the Large Movie Review Dataset (Maas et al. 2011) in its three common on-disk forms.

    read_reviews(path)                 picks the reader from what ``path`` is:
      aclImdb folder                   ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (the
                                       folder itself or its parent); ``unsup/`` is ignored
      aclImdb archive                  the same layout inside a ``.tar.gz`` / ``.tgz`` / ``.tar``
                                       (e.g. ``aclImdb_v1.tar.gz``), read without extracting it
      tensorflow-datasets data dir     ``imdb_reviews/plain_text/<version>/`` written by tfds
      Keras imdb.npz                   ``imdb.npz`` + ``imdb_word_index.json`` in the same folder;
                                       the texts are rebuilt from word indices, so they come back
                                       lower-cased and without punctuation (the npz is tokenised)

Every reader returns a :class:`ReviewCorpus` of plain :class:`Review` records (label 1 = positive,
0 = negative). aclImdb holds at most 30 reviews per movie, and its reviews of one movie are correlated,
so each review of an aclImdb folder or archive carries its movie as ``group``: the IMDb title of
``{split}/urls_{pos,neg}.txt`` (line N = the movie of the review with id N, the ``<id>`` of its file
name). Without those files (e.g. an archive repacked without them) the group is a block of
``ID_BLOCK`` consecutive ids taken from both label folders ("ids 0-249": positive and negative reviews
0-249): aclImdb numbers a movie's reviews consecutively within a folder (the urls files show it), so a
block keeps almost every movie whole, though the same movie's reviews in the other label folder may land
in another block. Each label folder holds half the reviews, so every block holds both labels equally and
a split by block is balanced; blocks of one folder would give validation splits of mostly one label (3 of
8 blocks positive: 37.5 %). ``notes`` says which grouping was used.
tensorflow-datasets and imdb.npz have neither, and their reviews have no group (None).

A missing ``test`` split is not an error (the shared real data has only ``train``): the corpus then has
no "test" key and ``notes`` says so. Every problem is a ``data.DataError`` whose
message names the file (and member, array or row) and what was expected.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pickle
import re
import tarfile
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

from data import DataError

SPLITS = ("train", "test")
LABELS = {"neg": 0, "pos": 1}
IGNORED_LABEL_FOLDERS = ("unsup",)  # unlabelled reviews of aclImdb/train
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
URLS_FILES = {label: f"urls_{label}.txt" for label in LABELS}  # per split folder: line N = movie of review id N
ID_BLOCK = 250  # consecutive ids, of both label folders, that stand in for movies when the urls files are missing
_FILE_NAME = re.compile(r"^(\d+)_(\d+)\.txt$")  # aclImdb's <id>_<rating>.txt
_TITLE = re.compile(r"/title/(tt\d+)")  # an IMDb movie page URL → its title id


@dataclasses.dataclass(frozen=True)
class Review:
    text: str
    label: int  # 1 = positive, 0 = negative
    source: str  # file path, "archive:member", or "imdb.npz:x_train[17]": where an error points
    # The movie reviewed ("tt0453418" from the urls files), a stand-in block of ids ("ids 250-499") when
    # they are missing, or None when the source has no ids (tfds, imdb.npz): a split by group keeps a
    # movie's reviews on one side.
    group: str | None = None


@dataclasses.dataclass
class ReviewCorpus:
    splits: dict[str, list[Review]]  # "train" always, "test" when the source has one
    source: str  # the path that was read
    format: str  # "aclImdb folder" | "aclImdb archive" | "tfds imdb_reviews" | "keras imdb.npz"
    notes: list[str] = dataclasses.field(default_factory=list)  # e.g. "no test split found"

    def sizes(self) -> dict[str, dict[str, int]]:
        return {
            name: {"reviews": len(reviews), "positive": sum(r.label for r in reviews)}
            for name, reviews in self.splits.items()
        }


def read_reviews(path: str | Path) -> ReviewCorpus:
    """Reads any of the supported forms; see the module docstring."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder; expected an aclImdb folder or archive, a tfds data "
                        f"dir with imdb_reviews, or imdb.npz")
    if path.is_file():
        if path.name.endswith(ARCHIVE_SUFFIXES):
            return read_aclimdb_archive(path)
        if path.suffix == ".npz":
            return read_keras_npz(path)
        raise DataError(f"{path}: unsupported file type; expected a .tar.gz/.tgz/.tar aclImdb archive or an imdb.npz")
    if (path / "imdb.npz").is_file():
        return read_keras_npz(path / "imdb.npz")
    if (path / "aclImdb").is_dir():
        return read_aclimdb_folder(path / "aclImdb")
    if any((path / split).is_dir() for split in SPLITS):
        return read_aclimdb_folder(path)
    if _find_tfds_version_dir(path) is not None:
        return read_tfds(path)
    archives = sorted(p for p in path.iterdir() if p.name.endswith(ARCHIVE_SUFFIXES) and "imdb" in p.name.lower())
    if len(archives) == 1:
        return read_aclimdb_archive(archives[0])
    raise DataError(
        f"{path}: found no IMDB reviews; expected aclImdb/ (train/pos, train/neg), train/ itself, a tfds data dir "
        f"holding imdb_reviews/, imdb.npz with imdb_word_index.json, or one aclImdb*.tar.gz archive"
    )


# --- one review given on the command line ----------------------------------------------------------

_MAX_PATH_CHARS = 4096  # a longer argument is review text, never a path (and is not looked up on disk)


def review_from_argument(argument: str, kind: str = "auto") -> str:
    """The review an argument of ``run.py sentiment predict`` names.

    kind "text": the argument is the review. "file": it is the path of a UTF-8 text file holding
    one review. "auto" (the default): a file if one exists at that path; an argument that looks
    like a path (one word ending in .txt, or holding a path separator) but names no file is an
    error rather than a review about a typo; anything else is the review's text (an empty one is returned
    as it is: the sentiment task refuses it, naming its position).
    """
    if kind == "text":
        return argument
    candidate = Path(argument) if len(argument) < _MAX_PATH_CHARS else None
    if candidate is None or not candidate.is_file():
        looks_like_a_path = (argument.strip() and not any(c.isspace() for c in argument.strip())
                             and (argument.lower().endswith(".txt") or "/" in argument or os.sep in argument))
        if kind == "file" or looks_like_a_path:
            raise DataError(f"{argument!r}: no such file; expected a UTF-8 text file with one review"
                            + ("" if kind == "file" else " (to classify this text as a review, pass --text)"))
        return argument
    data = candidate.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{candidate}: not valid UTF-8 (byte {error.start}); expected a UTF-8 text review") from None


# --- aclImdb folder and archive ---------------------------------------------------------------------


def _decode(data: bytes, where: str) -> str:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{where}: not valid UTF-8 (byte {error.start}: {error.reason}); expected a UTF-8 text review"
        ) from None
    if not text.strip():
        raise DataError(f"{where}: empty review ({len(data)} bytes, no text); expected the text of one review")
    return text.strip()


def _check_label_folder(name: str, where: str) -> None:
    if name not in LABELS and name not in IGNORED_LABEL_FOLDERS:
        raise DataError(
            f"{where}: unexpected label folder {name!r}; expected only {sorted(LABELS)} "
            f"(and {list(IGNORED_LABEL_FOLDERS)}, which is ignored)"
        )


def _read_urls(data: bytes, where: str) -> list[str]:
    """One IMDb title id per line of a ``urls_{pos,neg}.txt`` (line N = review id N)."""
    titles = []
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines()):
        match = _TITLE.search(line)
        if match is None:
            raise DataError(f"{where}: line {number + 1} is {line[:80]!r}; expected an IMDb movie URL such as "
                            f"http://www.imdb.com/title/tt0453418/usercomments")
        titles.append(match.group(1))
    return titles


def _with_groups(
    found: dict[str, dict[str, list[Review]]], urls: dict[tuple[str, str], tuple[list[str], str]], source: Path
) -> list[str]:
    """Sets each aclImdb review's ``group`` (its movie, from ``urls[(split, label)]`` = (titles, where)), or a
    block of ids when a split has no urls files; returns notes saying which."""
    notes = []
    for split, labels in found.items():
        have_urls = all((split, label) in urls for label in labels)
        if not have_urls:
            notes.append(f"no {split}/urls_pos.txt and urls_neg.txt in {source}: reviews grouped by blocks of "
                         f"{ID_BLOCK} consecutive ids of both label folders instead of by movie")
        for label, reviews in labels.items():
            grouped = []
            for review in reviews:
                name = review.source.replace("\\", "/").rsplit("/", 1)[-1]
                match = _FILE_NAME.match(name)
                if match is None:
                    grouped.append(review)  # not an <id>_<rating>.txt name: no id, no group
                    continue
                review_id = int(match.group(1))
                if have_urls:
                    titles, where = urls[(split, label)]
                    if review_id >= len(titles):
                        raise DataError(f"{where}: has {len(titles)} lines but {review.source} has id {review_id}; "
                                        f"expected a line (a movie URL) for every review id")
                    group = titles[review_id]
                else:
                    start = review_id // ID_BLOCK * ID_BLOCK
                    group = f"ids {start}-{start + ID_BLOCK - 1}"  # both labels: see the module docstring
                grouped.append(dataclasses.replace(review, group=group))
            labels[label] = grouped
    return notes


def _finish(found: dict[str, dict[str, list[Review]]], source: Path, form: str,
            group_notes: list[str] = ()) -> ReviewCorpus:
    """Checks that train exists with both labels, and that every split present has both labels."""
    if "train" not in found:
        present = sorted(found) or "none"
        raise DataError(f"{source}: no train split (splits found: {present}); expected train/pos and train/neg")
    notes = list(group_notes)
    splits: dict[str, list[Review]] = {}
    for split in SPLITS:
        if split not in found:
            notes.append(f"no {split} split found in {source}; only {sorted(found)}")
            continue
        for label in LABELS:
            if not found[split].get(label):
                raise DataError(
                    f"{source}: split {split!r} has no reviews in {split}/{label}/; expected *.txt files there"
                )
        # Sorted by source so the order does not depend on the file system or the archive's order.
        splits[split] = sorted((r for reviews in found[split].values() for r in reviews), key=lambda r: r.source)
    return ReviewCorpus(splits=splits, source=str(source), format=form, notes=notes)


def read_aclimdb_folder(root: str | Path) -> ReviewCorpus:
    """Reads ``root/{train,test}/{pos,neg}/*.txt``; ``root`` is the ``aclImdb`` folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder; expected the aclImdb folder with train/ (and test/)")
    found: dict[str, dict[str, list[Review]]] = {}
    urls: dict[tuple[str, str], tuple[list[str], str]] = {}
    for split in SPLITS:
        split_dir = root / split
        if not split_dir.is_dir():
            continue
        found[split] = {}
        for label, name in URLS_FILES.items():
            if (split_dir / name).is_file():
                urls[(split, label)] = (_read_urls((split_dir / name).read_bytes(), str(split_dir / name)),
                                        str(split_dir / name))
        # Other files at this level (labeledBow.feat in the official archive) are not reviews.
        for label_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            _check_label_folder(label_dir.name, str(label_dir))
            if label_dir.name not in LABELS:
                continue
            found[split][label_dir.name] = [
                Review(text=_decode(file.read_bytes(), str(file)), label=LABELS[label_dir.name], source=str(file))
                for file in sorted(label_dir.glob("*.txt"))
            ]
    notes = _with_groups(found, urls, root)
    return _finish(found, root, "aclImdb folder", notes)


def _archive_parts(name: str) -> list[str] | None:
    """``[split, label, file]`` for ``[./][.../]aclImdb/split/label/file`` or ``split/label/file``."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if "aclImdb" in parts:
        parts = parts[parts.index("aclImdb") + 1 :]
    if len(parts) >= 1 and parts[0] in SPLITS:
        return parts
    return None


def read_aclimdb_archive(path: str | Path) -> ReviewCorpus:
    """Reads the aclImdb layout straight from a tar archive (gzip or not), in one pass."""
    path = Path(path)
    found: dict[str, dict[str, list[Review]]] = {}
    urls: dict[tuple[str, str], tuple[list[str], str]] = {}
    try:
        archive = tarfile.open(path, mode="r:*")
    except (tarfile.TarError, OSError) as error:
        raise DataError(
            f"{path}: cannot open as a tar archive ({error}); expected aclImdb_v1.tar.gz-style archive"
        ) from None
    with archive:
        try:
            for member in archive:
                parts = _archive_parts(member.name)
                if parts is None:
                    continue
                split = parts[0]
                found.setdefault(split, {})
                if len(parts) < 2:
                    continue
                if len(parts) == 2 and not member.isdir():
                    label = next((label for label, name in URLS_FILES.items() if parts[1] == name), None)
                    if label is not None and member.isfile():
                        where = f"{path}:{member.name}"
                        urls[(split, label)] = (_read_urls(archive.extractfile(member).read(), where), where)
                    continue  # other split-level files such as labeledBow.feat
                label = parts[1]
                where = f"{path}:{member.name}"
                _check_label_folder(label, where)
                if label not in LABELS or len(parts) != 3 or not member.isfile() or not parts[2].endswith(".txt"):
                    continue
                data = archive.extractfile(member).read()
                found[split].setdefault(label, []).append(
                    Review(text=_decode(data, where), label=LABELS[label], source=where)
                )
        except (tarfile.TarError, EOFError, OSError) as error:
            raise DataError(f"{path}: damaged archive ({error}); expected a complete tar archive") from None
    notes = _with_groups({split: labels for split, labels in found.items() if labels}, urls, path)
    return _finish(found, path, "aclImdb archive", notes)


# --- tensorflow-datasets imdb_reviews ---------------------------------------------------------------


def _find_tfds_version_dir(path: Path) -> Path | None:
    """The newest ``imdb_reviews/<config>/<version>/`` folder under ``path`` (or ``path`` itself)."""
    candidates = [p.parent for p in [path / "dataset_info.json"] if p.is_file()]
    candidates += [p.parent for p in path.glob("**/imdb_reviews/*/*/dataset_info.json")]
    candidates += [p.parent for p in path.glob("*/*/dataset_info.json") if path.name == "imdb_reviews"]
    candidates += [p.parent for p in path.glob("*/dataset_info.json") if path.parent.name == "imdb_reviews"]
    if not candidates:
        return None

    def version(folder: Path) -> tuple[int, ...]:
        return tuple(int(x) if x.isdigit() else 0 for x in folder.name.split("."))

    return max(set(candidates), key=version)


def download_tfds_imdb(data_dir: str | Path) -> Path:
    """Downloads and prepares tensorflow-datasets' imdb_reviews into ``data_dir`` (needs network).

    Called only when the user asked for it (run.py --download). Returns ``data_dir``, which
    ``read_tfds`` then reads like any local tfds data dir.
    """
    import tensorflow_datasets as tfds

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        tfds.builder("imdb_reviews/plain_text", data_dir=str(data_dir)).download_and_prepare()
    except Exception as error:  # network and checksum failures come in many types
        raise DataError(
            f"Downloading imdb_reviews into {data_dir} failed ({type(error).__name__}: {error}); "
            "download aclImdb_v1.tar.gz yourself and pass it with --data-dir"
        ) from None
    return data_dir


def read_tfds(path: str | Path) -> ReviewCorpus:
    """Reads a tensorflow-datasets ``imdb_reviews`` data dir that is already on disk (no download).

    tfds stores the reviews as TFRecord files of serialised examples, so this reader (alone among
    the readers) imports tensorflow-datasets and TensorFlow, lazily.
    """
    path = Path(path)
    version_dir = _find_tfds_version_dir(path)
    if version_dir is None:
        raise DataError(f"{path}: no tfds imdb_reviews dataset (no imdb_reviews/<config>/<version>/dataset_info.json)")
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder_from_directory(str(version_dir))
    except Exception as error:  # tfds raises many types for a broken folder
        raise DataError(f"{version_dir}: not a readable tfds dataset ({type(error).__name__}: {error})") from None
    features = builder.info.features
    if "text" not in features or "label" not in features:
        raise DataError(f"{version_dir}: features {sorted(features)}; expected 'text' and 'label' (imdb_reviews)")
    names = list(features["label"].names)
    if sorted(names) != sorted(LABELS):
        raise DataError(f"{version_dir}: label names {names}; expected {sorted(LABELS)}")
    found: dict[str, dict[str, list[Review]]] = {}
    for split in SPLITS:
        if split not in builder.info.splits:
            continue
        found[split] = {label: [] for label in LABELS}
        dataset = builder.as_dataset(split=split, shuffle_files=False)
        for index, example in enumerate(tfds.as_numpy(dataset)):
            label = names[int(example["label"])]
            where = f"{version_dir}:{split}[{index}]"
            found[split][label].append(Review(text=_decode(example["text"], where), label=LABELS[label], source=where))
    return _finish(found, version_dir, "tfds imdb_reviews")


# --- Keras imdb.npz -----------------------------------------------------------------------------------


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """imdb.npz stores ragged sequences as object arrays (a pickle); allow only NumPy's array globals.

    ``np.load(allow_pickle=True)`` would run whatever a tampered file asks for.
    """

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from an .npz file")


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if not name.endswith(".npy"):
                    continue
                buffer = io.BytesIO(archive.read(name))
                try:
                    arrays[name[:-4]] = np.lib.format.read_array(buffer, allow_pickle=False)
                except ValueError:  # an object array: skip the header, then unpickle with restrictions
                    buffer.seek(0)
                    major, _ = np.lib.format.read_magic(buffer)
                    if major == 1:
                        np.lib.format.read_array_header_1_0(buffer)
                    else:
                        np.lib.format.read_array_header_2_0(buffer)
                    arrays[name[:-4]] = _ArrayOnlyUnpickler(buffer).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, OSError) as error:
        raise DataError(f"{path}: not a readable .npz archive ({error})") from None
    return arrays


def read_keras_npz(path: str | Path, word_index_path: str | Path | None = None) -> ReviewCorpus:
    """Reads Keras' ``imdb.npz`` (x_train, y_train, x_test, y_test) and rebuilds the texts.

    The sequences hold word ranks as in ``imdb_word_index.json`` (1 = "the"), without the offsets
    that ``keras.datasets.imdb.load_data`` adds, so the text is the words joined by spaces.
    """
    path = Path(path)
    word_index_path = Path(word_index_path) if word_index_path else path.with_name("imdb_word_index.json")
    if not word_index_path.is_file():
        raise DataError(f"{path}: the word index {word_index_path} is missing; expected imdb_word_index.json beside "
                        f"imdb.npz (Keras downloads both)")
    try:
        word_index = json.loads(word_index_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{word_index_path}: not a JSON object of word -> index ({error})") from None
    if not isinstance(word_index, dict) or not all(isinstance(v, int) for v in word_index.values()):
        raise DataError(f"{word_index_path}: expected a JSON object mapping words to integer indices")
    words = {index: word for word, index in word_index.items()}
    arrays = _load_npz(path)
    found: dict[str, dict[str, list[Review]]] = {}
    for split in SPLITS:
        x_key, y_key = f"x_{split}", f"y_{split}"
        if x_key not in arrays and y_key not in arrays:
            continue
        if x_key not in arrays or y_key not in arrays:
            raise DataError(f"{path}: has only one of {x_key}/{y_key} (arrays: {sorted(arrays)}); expected both")
        sequences, labels = arrays[x_key], np.asarray(arrays[y_key])
        if len(sequences) != len(labels):
            raise DataError(f"{path}: {x_key} has {len(sequences)} reviews but {y_key} {len(labels)} labels")
        found[split] = {label: [] for label in LABELS}
        names = {value: name for name, value in LABELS.items()}
        for row, (sequence, label) in enumerate(zip(sequences, labels)):
            where = f"{path}:{x_key}[{row}]"
            value = label.item() if hasattr(label, "item") else label
            if value not in (0, 1):
                raise DataError(f"{path}:{y_key}[{row}]: label {value!r}; expected 0 (negative) or 1 (positive)")
            text = " ".join(_words(sequence, words, where))
            if not text:
                raise DataError(f"{where}: empty review; expected a non-empty sequence of word indices")
            found[split][names[int(label)]].append(Review(text=text, label=int(label), source=where))
    if not found:
        raise DataError(f"{path}: arrays {sorted(arrays)}; expected x_train, y_train (and x_test, y_test)")
    corpus = _finish(found, path, "keras imdb.npz")
    corpus.notes.append("texts rebuilt from word indices: lower-case, no punctuation")
    return corpus


def _words(sequence: Iterable, words: dict[int, str], where: str) -> list[str]:
    out = []
    for position, index in enumerate(sequence):
        word = words.get(int(index))
        if word is None:
            raise DataError(f"{where}: word index {int(index)} at position {position} is not in the word index; "
                            f"expected indices of imdb_word_index.json (raw imdb.npz, without load_data's offsets)")
        out.append(word)
    return out
