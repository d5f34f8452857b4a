"""tensorflow-datasets sources: read from a tfds data dir already on disk; fetched only on --download.

    translation  ted_hrlr_translate/<pair>   TED talks (Qi et al. 2018), e.g. pt_to_en: 51,785 / 1,193 / 1,803 pairs
                 wmt14_translate/<pair>      WMT 2014 (cs-en, de-en, fr-en, hi-en, ru-en): fr-en has ~40 M
                                             training pairs; validation newsdev2014 + newstest2013, test newstest2014
    captioning   coco_captions/2014          COCO 2014 in Karpathy's splits: train + restval (113,287 images),
                                             val (5,000), test (5,000); --download fetches ~40 GB of COCO zips

A tfds data dir holds ``NAME/CONFIG/VERSION/{dataset_info.json, features.json, NAME-SPLIT.tfrecord-*}``;
``find`` accepts the data dir itself or any folder down to one version folder. The examples are
TFRecords of serialised tf.train.Examples, so these readers (alone with data/aclimdb.read_tfds) import
tensorflow-datasets and TensorFlow, lazily: importing this module costs nothing.

Nothing here touches the network except ``download``, which the tasks call only when the user
passed --download.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

from data import DataError, read_json
from data.coco_captions import CaptionedImage
from data.pairs import Corpus, Pair, pick_languages, reservoir_sample

TRANSLATION_DATASETS = ("ted_hrlr_translate", "wmt14_translate")
DEFAULT_TRANSLATION = "ted_hrlr_translate/pt_to_en"  # what translation --download fetches unless told otherwise
COCO_CAPTIONS = "coco_captions/2014"
# tfds split names → the tasks' splits. Karpathy's protocol trains on "train" + "restval" (as data/karpathy.py).
_TRANSLATION_SPLITS = {"train": "train", "validation": "validation", "test": "test"}
_CAPTION_SPLITS = {"train": "train", "restval": "train", "val": "validation", "test": "test"}
_BATCH = 4096  # translation examples parsed per TensorFlow call


@dataclasses.dataclass(frozen=True)
class TfdsDataset:
    folder: Path  # .../NAME/CONFIG/VERSION, the folder holding dataset_info.json
    name: str
    config: str | None
    version: str

    @property
    def full_name(self) -> str:
        return f"{self.name}/{self.config}" if self.config else self.name


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in version.split("."))


def find(path: Path, names: Sequence[str]) -> list[TfdsDataset]:
    """The newest version of each NAME/CONFIG among ``names`` at ``path`` (a data dir, a NAME,
    CONFIG or VERSION folder). Fixed depths, no recursive walk: a data dir's downloads/ holds the
    extracted archives (120,000 COCO images), which must not be listed."""
    path = Path(path)
    if not path.is_dir():
        return []
    newest: dict[tuple[str, str | None], TfdsDataset] = {}
    for pattern in ("dataset_info.json", "*/dataset_info.json", "*/*/dataset_info.json", "*/*/*/dataset_info.json"):
        for info_file in sorted(path.glob(pattern)):
            if "downloads" in info_file.relative_to(path).parts:
                continue
            try:
                info = read_json(info_file, "tfds dataset_info.json")
            except DataError:
                continue  # a damaged info file: builder_from_directory would fail on it with a clearer message
            if not isinstance(info, dict) or info.get("name") not in names:
                continue
            found = TfdsDataset(folder=info_file.parent, name=info["name"], config=info.get("configName") or None,
                                version=str(info.get("version", info_file.parent.name)))
            key = (found.name, found.config)
            if key not in newest or _version_key(found.version) > _version_key(newest[key].version):
                newest[key] = found
    return sorted(newest.values(), key=lambda d: d.full_name)


def choose(path: Path, names: Sequence[str], wanted: str | None, what: str) -> TfdsDataset:
    """The one dataset of ``names`` at ``path`` (``wanted`` = NAME or NAME/CONFIG picks among several)."""
    found = find(path, names)
    if wanted is not None:
        found = [d for d in found if wanted in (d.full_name, d.name)]
    if not found:
        wanted_text = repr(wanted) if wanted else f"one of {list(names)}"
        raise DataError(f"{path}: no tfds {what} dataset {wanted_text} (expected NAME/CONFIG/VERSION/"
                        f"dataset_info.json written by tensorflow-datasets; present: "
                        f"{[d.full_name for d in find(path, names)] or 'none'})")
    if len(found) > 1:
        raise DataError(f"{path}: holds several tfds {what} datasets {[d.full_name for d in found]}; choose one "
                        "with --set tfds_dataset=NAME/CONFIG")
    return found[0]


def _builder(dataset: TfdsDataset):
    import tensorflow_datasets as tfds

    try:
        return tfds.builder_from_directory(str(dataset.folder))
    except Exception as error:  # tfds raises many types for a broken folder
        raise DataError(f"{dataset.folder}: not a readable tfds dataset ({type(error).__name__}: {error})") from None


def _examples(builder, split: str, where: str, batch: int | None = None, decoders=None) -> Iterator[dict]:
    """NumPy examples of one split in file order (batched when ``batch``); read errors are DataErrors."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    try:
        dataset = builder.as_dataset(split=split, shuffle_files=False, decoders=decoders)
        if batch:
            dataset = dataset.batch(batch)
        yield from tfds.as_numpy(dataset)
    except (tf.errors.OpError, OSError, ValueError) as error:  # damaged or missing TFRecord shards
        raise DataError(f"{where}: cannot read split {split!r} ({type(error).__name__}: "
                        f"{str(error).splitlines()[0][:300]})") from None


def download(name: str, data_dir: str | os.PathLike) -> Path:
    """Downloads and prepares the tfds dataset ``name`` (NAME/CONFIG) into ``data_dir``; needs network.

    Called only when the user asked for it (run.py --download). A dataset already prepared there is
    not fetched again. Returns ``data_dir``, which the readers then read like any local tfds data dir.
    """
    import tensorflow_datasets as tfds

    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        builder = tfds.builder(name, data_dir=str(data_dir))
    except Exception as error:  # unknown name or config
        raise DataError(f"tensorflow-datasets cannot build {name!r} ({type(error).__name__}: {error}); expected "
                        f"e.g. {DEFAULT_TRANSLATION!r} or {COCO_CAPTIONS!r}") from None
    try:
        builder.download_and_prepare()
    except Exception as error:  # network, checksum and manual-download failures come in many types
        raise DataError(f"Downloading {name} into {data_dir} failed ({type(error).__name__}: {error}); fetch the "
                        "files yourself and pass the folder with --data-dir") from None
    return data_dir


# --- translation --------------------------------------------------------------------------------------


def _string_batches(builder, split: str, keys: Sequence[str], where: str) -> Iterator[dict]:
    """{key: bytes array} batches of the string features ``keys``: the TFRecord shards parsed
    ``_BATCH`` examples per call (tf.io.parse_example), ~15x faster than tfds' per-example decoding
    (WMT14 fr-en: minutes, not an hour). Other file formats go through ``as_dataset``."""
    import tensorflow as tf
    from tensorflow_datasets.core import file_adapters

    serialized = builder.info.features.get_serialized_info()
    plain = all(getattr(serialized.get(key), "shape", None) == () and serialized[key].dtype == tf.string
                for key in keys)
    if builder.info.file_format != file_adapters.FileFormat.TFRECORD or not plain:
        yield from _examples(builder, split, where, batch=_BATCH)
        return
    spec = {key: tf.io.FixedLenFeature([], tf.string) for key in keys}
    files = [str(path) for path in builder.info.splits[split].filepaths]
    dataset = tf.data.TFRecordDataset(files).batch(_BATCH).map(lambda records: tf.io.parse_example(records, spec))
    try:
        for batch in dataset.as_numpy_iterator():
            yield batch
    except (tf.errors.OpError, OSError) as error:  # damaged or missing TFRecord shards
        raise DataError(f"{where}: cannot read split {split!r} ({type(error).__name__}: "
                        f"{str(error).splitlines()[0][:300]})") from None


def _pairs(builder, split: str, source: str, target: str, where: str, statistics: dict[str, int]) -> Iterator[Pair]:
    # Unlike parallel files, a published dataset with an empty or one-sided example cannot be fixed by
    # the user: such examples are skipped and counted rather than refused.
    statistics.update(examples=0, blank_pairs=0, empty_side=0)
    for batch in _string_batches(builder, split, (source, target), where):
        for source_bytes, target_bytes in zip(batch[source], batch[target]):
            statistics["examples"] += 1
            first, second = source_bytes.decode("utf-8").strip(), target_bytes.decode("utf-8").strip()
            if first and second:
                yield Pair(first, second)
            else:
                statistics["blank_pairs" if not first and not second else "empty_side"] += 1


def read_translation(path: str | os.PathLike, wanted: str | None = None, *, direction: str = "first-to-second",
                     source_language: str | None = None, target_language: str | None = None,
                     max_pairs: int | None = None, seed: int = 0) -> Corpus:
    """A ted_hrlr_translate / wmt14_translate dataset on disk → Corpus with its official splits.

    Languages: unset = the dataset's own pair in its supervised order (pt → en for pt_to_en), which
    ``direction`` "second-to-first" reverses. ``max_pairs`` caps the training pairs (seeded reservoir).
    """
    dataset = choose(Path(path), TRANSLATION_DATASETS, wanted, "translation")
    builder = _builder(dataset)
    languages = list(getattr(builder.info.features, "languages", None) or [])
    if len(languages) < 2:
        raise DataError(f"{dataset.folder}: features {builder.info.features!r}; expected a tfds Translation "
                        "feature with two or more languages")
    supervised = list(builder.info.supervised_keys or ())
    ordered = supervised if sorted(supervised) == sorted(languages) else sorted(languages)
    source, target = pick_languages(ordered, source_language, target_language, direction, str(dataset.folder))
    splits: dict[str, list[Pair]] = {}
    statistics: dict[str, Any] = {}
    for split in builder.info.splits:
        if split not in _TRANSLATION_SPLITS:
            continue
        counts: dict[str, Any] = {}
        pairs = _pairs(builder, split, source, target, f"{dataset.folder}", counts)
        splits[_TRANSLATION_SPLITS[split]] = reservoir_sample(pairs, max_pairs if split == "train" else None, seed)
        counts["pairs"] = len(splits[_TRANSLATION_SPLITS[split]])
        statistics[split] = counts
    if not splits.get("train"):
        raise DataError(f"{dataset.folder}: no training pairs (splits {list(builder.info.splits)}, read: "
                        f"{statistics}); expected a non-empty 'train' split")
    for split in [name for name, pairs in splits.items() if not pairs]:
        raise DataError(f"{dataset.folder}: split {split!r} has no usable sentence pairs ({statistics})")
    return Corpus(splits=splits, path=str(dataset.folder), format=f"tfds {dataset.full_name}/{dataset.version}",
                  languages=(source, target), statistics=statistics)


# --- captioning ---------------------------------------------------------------------------------------


def _save_image(target: Path, data: bytes) -> None:
    """Writes an image once: a file of the same size from an earlier run is kept (re-runs are cheap)."""
    if target.is_file() and target.stat().st_size == len(data):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.part")
    partial.write_bytes(data)
    os.replace(partial, target)  # a killed run leaves no truncated image behind a real name


def read_coco_captions(path: str | os.PathLike, image_folder: str | os.PathLike) -> dict[str, list[CaptionedImage]]:
    """tfds coco_captions on disk → {"train", "validation", "test"} records.

    The captioning pipeline reads images by file path (and caches CNN features per file), so the
    JPEG bytes stored in the TFRecords are written once under ``image_folder/SPLIT/FILENAME``
    (COCO 2014: about 19 GB); a later run reuses them.
    """
    from common import progress

    dataset = choose(Path(path), ("coco_captions",), None, "captioning")
    builder = _builder(dataset)
    features = builder.info.features
    expected = {"image", "image/filename", "image/id", "captions"}
    if not expected <= set(features.keys()):
        raise DataError(f"{dataset.folder}: features {sorted(features.keys())}; expected {sorted(expected)} "
                        "(tfds coco_captions)")
    import tensorflow_datasets as tfds

    image_folder = Path(image_folder)
    splits: dict[str, list[CaptionedImage]] = {"train": [], "validation": [], "test": []}
    for split, info in builder.info.splits.items():
        if split not in _CAPTION_SPLITS:
            continue
        examples = _examples(builder, split, str(dataset.folder), decoders={"image": tfds.decode.SkipDecoding()})
        stage = f"reading tfds coco_captions split {split!r} (images to {image_folder / split})"
        for index, example in enumerate(progress.track(examples, info.num_examples, stage, unit="images")):
            filename = Path(example["image/filename"].decode("utf-8")).name  # no folders: stay in image_folder
            where = f"{dataset.folder}:{split}[{index}]"
            captions = tuple(t for t in (raw.decode("utf-8").strip() for raw in example["captions"]["text"]) if t)
            if not filename or not captions:
                raise DataError(f"{where}: image {filename!r} with {len(captions)} captions; expected a file name "
                                "and at least one non-empty caption")
            target = image_folder / split / filename
            _save_image(target, example["image"])
            splits[_CAPTION_SPLITS[split]].append(
                CaptionedImage(image_id=int(example["image/id"]), path=str(target), captions=captions))
    empty = [split for split, records in splits.items() if not records]
    if empty:
        raise DataError(f"{dataset.folder}: no images in split(s) {empty} (tfds splits: "
                        f"{list(builder.info.splits)}); expected train, val and test")
    return splits
