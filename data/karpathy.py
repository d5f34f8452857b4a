"""Karpathy's split files (``dataset_coco.json``, ``dataset_flickr8k.json``, ``dataset_flickr30k.json``).

Format (from Karpathy & Fei-Fei 2015, neuraltalk2): ``{"dataset": name, "images": [{"filepath"
(COCO only: "train2014"/"val2014"), "filename", "split": "train"|"val"|"test"|"restval", "imgid",
"cocoid" (COCO only), "sentences": [{"raw", "tokens", ...}]}]}``. The standard protocol (5,000
val and 5,000 test images for COCO) trains on "train" + "restval".
"""

from __future__ import annotations

import os
from pathlib import Path

from data import DataError, read_json
from data.coco_captions import CaptionedImage

SPLIT_NAMES = {"train": "train", "restval": "train", "val": "validation", "test": "test"}


def read_karpathy_split(
    path: str | os.PathLike, image_root: str | os.PathLike, require_images: bool = True
) -> dict[str, list[CaptionedImage]]:
    """{"train", "validation", "test"} → records; image path = image_root / filepath / filename."""
    path = Path(path)
    image_root = Path(image_root)
    payload = read_json(path, "Karpathy split file")
    if not isinstance(payload, dict) or not isinstance(payload.get("images"), list):
        raise DataError(f"Karpathy split file {str(path)!r}: expected an object with an 'images' list")
    splits: dict[str, list[CaptionedImage]] = {"train": [], "validation": [], "test": []}
    for index, image in enumerate(payload["images"]):
        where = f"Karpathy split file {str(path)!r}, images[{index}]"
        if not isinstance(image, dict) or "filename" not in image or "split" not in image:
            raise DataError(f"{where}: expected 'filename', 'split' and 'sentences', got {image!r:.200}")
        if image["split"] not in SPLIT_NAMES:
            raise DataError(f"{where} ({image['filename']}): split {image['split']!r}; "
                            f"expected one of {sorted(SPLIT_NAMES)}")
        sentences = image.get("sentences")
        if not isinstance(sentences, list) or not sentences:
            raise DataError(f"{where}: image {image['filename']!r} has no caption (empty 'sentences')")
        captions = []
        for sentence in sentences:
            raw = sentence.get("raw") if isinstance(sentence, dict) else None
            if not isinstance(raw, str) or not raw.strip():
                tokens = sentence.get("tokens") if isinstance(sentence, dict) else None
                if not tokens:
                    raise DataError(f"{where}: a sentence of {image['filename']!r} has neither 'raw' text nor 'tokens'")
                raw = " ".join(tokens)
            captions.append(raw.strip())
        image_path = image_root / image.get("filepath", "") / image["filename"]
        if require_images and not image_path.is_file():
            raise DataError(f"Image {str(image_path)!r} listed in {str(path)!r} does not exist")
        image_id = image.get("cocoid", image.get("imgid", image["filename"]))
        record = CaptionedImage(image_id=image_id, path=str(image_path), captions=tuple(captions))
        splits[SPLIT_NAMES[image["split"]]].append(record)
    empty = [name for name, records in splits.items() if not records]
    if empty:
        raise DataError(f"Karpathy split file {str(path)!r} has no images in split(s) {empty}")
    return splits
