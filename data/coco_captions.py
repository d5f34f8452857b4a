"""COCO captions: ``captions_{train,val}20XX.json`` (read through pycocotools) + the image folder.

Format (https://cocodataset.org/#format-data): ``{"images": [{"id", "file_name", ...}],
"annotations": [{"id", "image_id", "caption"}], ...}``; usually five captions per image. Records
are plain :class:`CaptionedImage` tuples shared by the Flickr8k and Karpathy readers.

Results files (what a captioning model submits, scored by ``run.py captioning score``):
``[{"image_id": int, "caption": str}, ...]``, one entry per image; ``read_scoring_files`` reads one
together with the annotations it is scored against.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
from pathlib import Path

from data import DataError, read_json


@dataclasses.dataclass(frozen=True)
class CaptionedImage:
    image_id: int | str  # COCO id (int) or the Flickr8k file name (str)
    path: str  # image file path (may not exist when the reader was told images are not required)
    captions: tuple[str, ...]  # raw reference captions, as written in the file


def _not_a_folder(path: Path, what: str, expected: str) -> None:
    # read_json would say "does not exist" of a folder, which sends a user looking for a typo.
    if path.is_dir():
        raise DataError(f"{what} {str(path)!r} is a folder; expected {expected}")


def _load_json(path: Path, what: str) -> dict:
    _not_a_folder(path, what, "a COCO captions JSON file")
    payload = read_json(path, what)
    if not isinstance(payload, dict):
        raise DataError(f"{what} {str(path)!r}: expected a JSON object at the top level, "
                        f"got a {type(payload).__name__}")
    return payload


def _validate(payload: dict, path: Path) -> None:
    for key in ("images", "annotations"):
        if not isinstance(payload.get(key), list):
            raise DataError(f"COCO captions file {str(path)!r}: expected a list under {key!r} (COCO captions format)")
    for index, image in enumerate(payload["images"]):
        if not isinstance(image, dict) or "id" not in image or "file_name" not in image:
            raise DataError(f"COCO captions file {str(path)!r}: images[{index}] needs 'id' and 'file_name', "
                            f"got {image!r:.200}")
    for index, annotation in enumerate(payload["annotations"]):
        if not isinstance(annotation, dict) or "image_id" not in annotation or "caption" not in annotation:
            raise DataError(
                f"COCO captions file {str(path)!r}: annotations[{index}] needs 'image_id' and 'caption', "
                f"got {annotation!r:.200}"
            )
        if not isinstance(annotation["caption"], str) or not annotation["caption"].strip():
            raise DataError(f"COCO captions file {str(path)!r}: annotations[{index}] has an empty or "
                            "non-string caption")


def _load_coco(path: Path):
    """pycocotools.COCO on a validated file (pycocotools itself only asserts)."""
    from pycocotools.coco import COCO

    payload = _load_json(path, "COCO captions file")
    _validate(payload, path)
    payload.setdefault("info", {})
    payload.setdefault("licenses", [])
    for index, annotation in enumerate(payload["annotations"]):
        annotation.setdefault("id", index + 1)  # results-style files may lack ids; COCO indexes by them
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints "creating index..."
        coco = COCO()
        coco.dataset = payload
        coco.createIndex()
    known = set(coco.imgs)
    orphans = [a["image_id"] for a in payload["annotations"] if a["image_id"] not in known]
    if orphans:
        raise DataError(
            f"COCO captions file {str(path)!r}: {len(orphans)} captions refer to image ids missing from 'images', "
            f"e.g. {orphans[:5]}"
        )
    return coco


def read_caption_annotations(path: str | os.PathLike) -> dict[int, list[str]]:
    """{image_id: [captions]} of a COCO captions file, without touching images (for scoring)."""
    path = Path(path)
    coco = _load_coco(path)
    references = {image_id: [a["caption"] for a in coco.imgToAnns.get(image_id, [])] for image_id in coco.imgs}
    empty = [image_id for image_id, captions in references.items() if not captions]
    if empty:
        raise DataError(f"COCO captions file {str(path)!r}: {len(empty)} images have no caption, "
                        f"e.g. image ids {empty[:5]}")
    return references


def read_coco_captions(
    annotations_path: str | os.PathLike, image_dir: str | os.PathLike, require_images: bool = True
) -> list[CaptionedImage]:
    """Records of every image in a COCO captions file, sorted by image id.

    Raises DataError for malformed JSON, an image without any caption (naming its id and file), or —
    when ``require_images`` — an image file missing from ``image_dir`` (naming the path).
    """
    annotations_path = Path(annotations_path)
    image_dir = Path(image_dir)
    coco = _load_coco(annotations_path)
    if require_images and not image_dir.is_dir():
        raise DataError(f"Image folder {str(image_dir)!r} for {str(annotations_path)!r} does not exist")
    records = []
    for image_id in sorted(coco.imgs):
        image = coco.imgs[image_id]
        captions = tuple(a["caption"].strip() for a in coco.imgToAnns.get(image_id, []))
        if not captions:
            raise DataError(
                f"COCO captions file {str(annotations_path)!r}: image id {image_id} ({image['file_name']}) "
                "has no caption"
            )
        path = image_dir / image["file_name"]
        if require_images and not path.is_file():
            raise DataError(
                f"Image {str(path)!r} (id {image_id}) listed in {str(annotations_path)!r} does not exist"
            )
        records.append(CaptionedImage(image_id=image_id, path=str(path), captions=captions))
    if not records:
        raise DataError(f"COCO captions file {str(annotations_path)!r} lists no images")
    return records


def coco_captions_payload(records: list[CaptionedImage], description: str, image_size: int = 0) -> dict:
    """The COCO captions JSON object of ``records`` (image ids must be ints); used by writers and tests."""
    images, annotations = [], []
    for record in records:
        name = Path(record.path).name
        images.append({"id": int(record.image_id), "file_name": name, "height": image_size, "width": image_size})
        for caption in record.captions:
            annotations.append({"id": len(annotations) + 1, "image_id": int(record.image_id), "caption": caption})
    return {"info": {"description": description}, "licenses": [], "images": images, "annotations": annotations}


def read_results_file(path: str | os.PathLike) -> dict[int, str]:
    """Reads a COCO caption results file ``[{"image_id": int, "caption": str}, ...]`` → {image_id: caption}."""
    path = Path(path)
    _not_a_folder(path, "Predictions file", 'a COCO results JSON file ([{"image_id": int, "caption": str}, ...])')
    payload = read_json(path, "Predictions file")
    if not isinstance(payload, list):
        raise DataError(
            f"Predictions file {str(path)!r}: expected a JSON list of {{\"image_id\", \"caption\"}} objects "
            f"(COCO results format), got a {type(payload).__name__}"
        )
    results: dict[int, str] = {}
    for index, entry in enumerate(payload):
        if not isinstance(entry, dict) or "image_id" not in entry or "caption" not in entry:
            raise DataError(f"Predictions file {str(path)!r}, entry {index}: expected {{\"image_id\", \"caption\"}}, "
                            f"got {entry!r:.200}")
        if not isinstance(entry["caption"], str):
            raise DataError(f"Predictions file {str(path)!r}, entry {index}: caption must be a string, "
                            f"got {entry['caption']!r:.100}")
        image_id = entry["image_id"]
        if image_id in results:
            raise DataError(f"Predictions file {str(path)!r}, entry {index}: image_id {image_id!r} appears twice")
        results[image_id] = entry["caption"]
    if not results:
        raise DataError(f"Predictions file {str(path)!r} is an empty list")
    return results


def read_scoring_files(
    annotations: str | os.PathLike, predictions: str | os.PathLike
) -> tuple[dict[int, list[str]], dict[int, str]]:
    """(references, results) of a COCO captions file and a results file scored against it.

    Every predicted image id must be in the annotations (a DataError names the strays); images of the
    annotations without a prediction are returned as they are (only the predicted ids are scored, as
    coco-caption does; the ``score`` action refuses that unless --allow-missing).
    """
    references = read_caption_annotations(annotations)
    results = read_results_file(predictions)
    unknown = [image_id for image_id in results if image_id not in references]
    if unknown:
        raise DataError(
            f"Predictions file {str(predictions)!r} has {len(unknown)} image ids that are not in "
            f"{str(annotations)!r}, e.g. {unknown[:5]}"
        )
    return references, results
