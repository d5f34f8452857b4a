"""Captioning data folders: which format a folder holds, and its train / validation / test records.

Four real formats are read (each by its own reader, all giving :class:`CaptionedImage` records):

  * COCO: ``annotations/captions_{train,val}20XX.json`` + ``train20XX/`` ``val20XX/`` image folders
    (the val file is split in half into validation and test unless ``captions_test*.json`` exists);
  * Karpathy split: a ``dataset_*.json`` in the folder, images under ``<folder>/<filepath>/<filename>``;
  * Flickr8k: ``Flickr8k.token.txt`` + ``Flickr_8k.{train,dev,test}Images.txt`` + the image folder;
  * tensorflow-datasets ``coco_captions/2014`` (Karpathy's splits) in a local tfds data dir: its JPEG
    bytes are written once to ``image_folder`` (data/tfds_sources.py), since the pipeline reads files.

The synthetic default (data/synthetic/captions.py) writes one dataset in all three formats;
``read_synthetic`` reads it with the COCO reader and proves that the other two readers agree.
"""

from __future__ import annotations

import os
from pathlib import Path

from data import DataError
from data.coco_captions import CaptionedImage, read_coco_captions
from data.flickr8k import TOKEN_FILE, read_flickr8k
from data.karpathy import read_karpathy_split

SPLITS = ("train", "validation", "test")
TFDS = "tfds_coco_captions"
FORMATS = ("coco", "flickr8k", "karpathy", TFDS)

Splits = dict[str, list[CaptionedImage]]


def coco_splits(folder: Path, require_images: bool = True) -> Splits:
    """COCO layout: annotations/captions_<name>.json with images in <folder>/<name>/ (or images/)."""
    annotation_dir = folder / "annotations"
    files = {path.stem[len("captions_"):]: path for path in sorted(annotation_dir.glob("captions_*.json"))}

    def pick(prefix: str) -> tuple[str, Path] | None:
        matches = [(name, path) for name, path in files.items() if name.startswith(prefix)]
        if len(matches) > 1:
            raise DataError(f"{str(annotation_dir)!r} holds several captions_{prefix}*.json files: "
                            f"{[str(p) for _, p in matches]}")
        return matches[0] if matches else None

    def image_dir(name: str) -> Path:
        for candidate in (folder / name, folder / "images"):
            if candidate.is_dir():
                return candidate
        return folder

    train, validation, test = pick("train"), pick("val"), pick("test")
    if train is None or validation is None:
        raise DataError(
            f"COCO folder {str(folder)!r}: expected annotations/captions_train*.json and "
            f"annotations/captions_val*.json, found {sorted(str(p.name) for p in files.values()) or 'none'}"
        )
    splits = {"train": read_coco_captions(train[1], image_dir(train[0]), require_images)}
    validation_records = read_coco_captions(validation[1], image_dir(validation[0]), require_images)
    if test is not None:
        splits["validation"] = validation_records
        splits["test"] = read_coco_captions(test[1], image_dir(test[0]), require_images)
    else:
        if len(validation_records) < 2:
            raise DataError(f"{str(validation[1])!r} has {len(validation_records)} image(s); at least 2 are "
                            "needed to split it into validation and test")
        # No official test captions: the first half of the val file (by image id) validates, the second tests.
        half = len(validation_records) // 2
        splits["validation"], splits["test"] = validation_records[:half], validation_records[half:]
    return splits


def detect_format(folder: Path) -> str:
    """"karpathy", "flickr8k", "coco" or TFDS, from the files in ``folder`` (in that order of precedence)."""
    from data import tfds_sources

    if sorted(folder.glob("dataset_*.json")):
        return "karpathy"
    if (folder / TOKEN_FILE).is_file():
        return "flickr8k"
    if sorted((folder / "annotations").glob("captions_*.json")):
        return "coco"
    if tfds_sources.find(folder, ("coco_captions",)):
        return TFDS
    raise DataError(
        f"--data-dir {str(folder)!r}: no captioning data recognised; expected a Karpathy dataset_*.json, "
        f"a Flickr8k {TOKEN_FILE}, COCO annotations/captions_*.json, or a tensorflow-datasets data dir with "
        "coco_captions/2014/VERSION/dataset_info.json"
    )


def read_splits(folder: str | os.PathLike, dataset: str = "auto", require_images: bool = True,
                image_folder: str | os.PathLike | None = None) -> tuple[str, Splits]:
    """(format, {split: records}) of a real or synthetic data folder; ``dataset`` = "auto" or one of FORMATS.

    ``image_folder``: where a tfds dataset's images are written (default ``folder/tfds_images``).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--data-dir {str(folder)!r} is not a folder; the captioning readers take a folder")
    if dataset != "auto" and dataset not in FORMATS:
        raise ValueError(f"dataset={dataset!r}; expected 'auto' or one of {list(FORMATS)}")
    kind = detect_format(folder) if dataset == "auto" else dataset
    if kind == "karpathy":
        split_files = sorted(folder.glob("dataset_*.json"))
        if not split_files:
            raise DataError(f"{str(folder)!r}: no Karpathy split file dataset_*.json")
        return kind, read_karpathy_split(split_files[0], folder, require_images)
    if kind == "flickr8k":
        return kind, read_flickr8k(folder, require_images=require_images)
    if kind == TFDS:
        from data import tfds_sources

        return kind, tfds_sources.read_coco_captions(folder, image_folder or folder / "tfds_images")
    return "coco", coco_splits(folder, require_images)


def cross_check(reference: Splits, other: Splits, reader: str) -> None:
    """One dataset written in two formats: both readers must give the same captions per image file."""
    for split in SPLITS:
        mine = {Path(r.path).name: r.captions for r in reference[split]}
        theirs = {Path(r.path).name: r.captions for r in other[split]}
        if mine != theirs:
            raise DataError(f"The {reader} reader disagrees with the COCO reader on the {split} split of "
                            "the synthetic data")


def read_synthetic(folder: str | os.PathLike) -> Splits:
    """The synthetic folder's splits, read as COCO and cross-checked against its Flickr8k and Karpathy files."""
    _, splits = read_splits(folder, "coco")
    cross_check(splits, read_splits(folder, "flickr8k")[1], "Flickr8k")
    cross_check(splits, read_splits(folder, "karpathy")[1], "Karpathy")
    return splits
