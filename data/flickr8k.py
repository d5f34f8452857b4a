"""Flickr8k: ``Flickr8k.token.txt`` + ``Flickr_8k.{train,dev,test}Images.txt`` + the image folder.

Token file lines are ``<image>.jpg#<k>\\t<caption>`` (k = 0..4). The split lists name one image per
line. The official token file has entries for an image (``2258277193_586949ec62.jpg.1``) that no
split list names; captions of images outside the three lists are ignored and counted.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from data import DataError
from data.coco_captions import CaptionedImage

logger = logging.getLogger(__name__)

TOKEN_FILE = "Flickr8k.token.txt"
SPLIT_FILES = {"train": "Flickr_8k.trainImages.txt", "validation": "Flickr_8k.devImages.txt",
               "test": "Flickr_8k.testImages.txt"}
# Folder names the image archive is known to unpack to, tried in order.
IMAGE_FOLDERS = ("Flicker8k_Dataset", "Flickr8k_Dataset", "Images", "images")
_LINE = re.compile(r"^(?P<image>[^\t#]+)#(?P<index>\d+)\t(?P<caption>.*)$")


def _read_lines(path: Path, what: str) -> list[str]:
    if not path.is_file():
        raise DataError(f"Flickr8k {what} {str(path)!r} does not exist")
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DataError(f"Flickr8k {what} {str(path)!r} is not UTF-8 text: {error}") from None


def read_token_file(path: str | os.PathLike) -> dict[str, list[str]]:
    """{image file name: [captions in file order]}; a malformed line is an error naming file:line."""
    path = Path(path)
    captions: dict[str, list[str]] = {}
    for number, line in enumerate(_read_lines(path, "token file"), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line.rstrip("\r"))
        if match is None:
            raise DataError(
                f"{str(path)!r} line {number}: expected '<image>.jpg#<k><TAB><caption>', got {line[:120]!r}"
            )
        caption = match["caption"].strip()
        if not caption:
            raise DataError(f"{str(path)!r} line {number}: empty caption for {match['image']}")
        captions.setdefault(match["image"], []).append(caption)
    if not captions:
        raise DataError(f"Flickr8k token file {str(path)!r} holds no captions")
    return captions


def read_split_list(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    names = [line.strip() for line in _read_lines(path, "split list") if line.strip()]
    for number, name in enumerate(names, start=1):
        if "\t" in name or " " in name:
            raise DataError(f"{str(path)!r} line {number}: expected one image file name per line, got {name!r}")
    if not names:
        raise DataError(f"Flickr8k split list {str(path)!r} is empty")
    return names


def find_image_folder(root: Path) -> Path:
    for name in IMAGE_FOLDERS:
        if (root / name).is_dir():
            return root / name
    return root


def read_flickr8k(
    text_dir: str | os.PathLike, image_dir: str | os.PathLike | None = None, require_images: bool = True
) -> dict[str, list[CaptionedImage]]:
    """{"train", "validation", "test"} → records, in the order of the official split lists.

    ``image_dir`` defaults to the first of IMAGE_FOLDERS under ``text_dir`` (else ``text_dir``).
    Raises DataError for a malformed line, a listed image without captions, or (when
    ``require_images``) a missing image file, naming it.
    """
    text_dir = Path(text_dir)
    image_dir = Path(image_dir) if image_dir is not None else find_image_folder(text_dir)
    captions = read_token_file(text_dir / TOKEN_FILE)
    splits: dict[str, list[CaptionedImage]] = {}
    listed: set[str] = set()
    for split, file_name in SPLIT_FILES.items():
        records = []
        for name in read_split_list(text_dir / file_name):
            if name not in captions:
                raise DataError(f"Image {name!r} listed in {str(text_dir / file_name)!r} has no caption in "
                                f"{TOKEN_FILE}")
            path = image_dir / name
            if require_images and not path.is_file():
                raise DataError(f"Image {str(path)!r} listed in {file_name} does not exist")
            records.append(CaptionedImage(image_id=name, path=str(path), captions=tuple(captions[name])))
            listed.add(name)
        splits[split] = records
    unlisted = [name for name in captions if name not in listed]
    if unlisted:
        logger.info("Flickr8k: ignored captions of %d images in no split list (e.g. %s)", len(unlisted), unlisted[:3])
    return splits
