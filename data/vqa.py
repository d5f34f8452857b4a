"""VQA v2 / v1 reader: questions JSON + annotations JSON + a COCO image folder → VQARecord list.

File names of the official releases (https://visualqa.org/download.html), for a split such as
``train2014`` / ``val2014``:

    v2_OpenEnded_mscoco_<split>_questions.json    v2_mscoco_<split>_annotations.json     (VQA v2)
    OpenEnded_mscoco_<split>_questions.json       mscoco_<split>_annotations.json        (VQA v1)

The questions file is ``{"data_subtype": split, "questions": [{"question_id", "image_id", "question"}]}``;
the annotations file is ``{"annotations": [{"question_id", "image_id", "question_type", "answer_type",
"multiple_choice_answer", "answers": [{"answer", "answer_confidence", "answer_id"} × 10]}]}``.
Images are COCO files named ``COCO_<split>_<image_id:012d>.jpg`` (COCO 2014) or ``<image_id:012d>.jpg``
(COCO 2017), looked up in the image folder given, else in ``<dir>/<split>``, ``<dir>/images/<split>``
or ``<dir>/Images/mscoco/<split>``. Every problem raises ``data.DataError`` naming the file and field.

``assign_splits`` turns the splits read into train / validation / test (by image, seeded) and, when
the test split is carved out of a single split, writes it in the VQA format (``write_test_files``)
so that ``run.py vqa score`` can re-score a results file against it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from common.io import atomic_write_json
from data import DataError, read_json

logger = logging.getLogger(__name__)

QUESTION_FILE_PATTERNS = ("v2_OpenEnded_mscoco_{split}_questions.json", "OpenEnded_mscoco_{split}_questions.json")
ANNOTATION_FILE_PATTERNS = ("v2_mscoco_{split}_annotations.json", "mscoco_{split}_annotations.json")
IMAGE_NAME_PATTERNS = ("COCO_{split}_{image_id:012d}.jpg", "{image_id:012d}.jpg")
IMAGE_FOLDER_PATTERNS = ("{split}", "images/{split}", "Images/mscoco/{split}", "Images/{split}")
_SUBFOLDERS = ("", "Questions", "Annotations", "questions", "annotations")  # where the JSON files may sit


@dataclasses.dataclass(frozen=True)
class VQARecord:
    question_id: int
    image_id: int
    question: str
    answers: tuple[str, ...]  # the human answers as written (10 in VQA v1/v2)
    answer_type: str  # "yes/no" | "number" | "other"
    question_type: str  # the question's first words, e.g. "how many", "what color is the"
    multiple_choice_answer: str  # the most frequent human answer
    image_path: Path


def _load_json(path: Path) -> Any:
    return read_json(path, "VQA file")


def _field(entry: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected a JSON object, found {type(entry).__name__}")
    if key not in entry:
        raise DataError(f"{where}: missing field {key!r} (has {sorted(entry)})")
    value = entry[key]
    # bool is an int in Python, but a JSON true is not a question id.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        expected = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise DataError(f"{where}: field {key!r} should be {expected}, found {value!r}")
    return value


def _list_field(payload: Any, key: str, path: Path) -> list:
    if not isinstance(payload, dict) or not isinstance(payload.get(key), list):
        found = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise DataError(f"{path}: expected a JSON object with a list under {key!r}, found {found}")
    return payload[key]


def read_questions(path: Path) -> tuple[str | None, dict[int, dict[str, Any]]]:
    """Returns (data_subtype or None, {question_id: {"image_id", "question"}})."""
    path = Path(path)
    payload = _load_json(path)
    questions: dict[int, dict[str, Any]] = {}
    for index, entry in enumerate(_list_field(payload, "questions", path)):
        where = f"{path}: questions[{index}]"
        question_id = _field(entry, "question_id", int, where)
        if question_id in questions:
            raise DataError(f"{where}: question_id {question_id} appears twice")
        questions[question_id] = {
            "image_id": _field(entry, "image_id", int, where),
            "question": _field(entry, "question", str, where),
        }
    subtype = payload.get("data_subtype")
    return (subtype if isinstance(subtype, str) else None), questions


def read_annotations(path: Path) -> dict[int, dict[str, Any]]:
    """Returns {question_id: {"image_id", "answers", "answer_type", "question_type", "multiple_choice_answer"}}."""
    path = Path(path)
    payload = _load_json(path)
    annotations: dict[int, dict[str, Any]] = {}
    for index, entry in enumerate(_list_field(payload, "annotations", path)):
        where = f"{path}: annotations[{index}]"
        question_id = _field(entry, "question_id", int, where)
        if question_id in annotations:
            raise DataError(f"{where}: question_id {question_id} appears twice")
        answers = _field(entry, "answers", list, where)
        if not answers:
            raise DataError(f"{where}: 'answers' is empty; expected the human answers (10 in VQA v1/v2)")
        texts = tuple(_field(answer, "answer", str, f"{where}.answers[{k}]") for k, answer in enumerate(answers))
        annotations[question_id] = {
            "image_id": _field(entry, "image_id", int, where),
            "answers": texts,
            "answer_type": _field(entry, "answer_type", str, where),
            "question_type": _field(entry, "question_type", str, where),
            "multiple_choice_answer": entry.get("multiple_choice_answer")
            if isinstance(entry.get("multiple_choice_answer"), str)
            else max(set(texts), key=texts.count),
        }
    return annotations


def find_split_files(directory: Path, split: str) -> tuple[Path, Path | None] | None:
    """(questions, annotations or None) paths of ``split`` under ``directory`` (v2 names first), or None."""
    directory = Path(directory)
    for question_pattern, annotation_pattern in zip(QUESTION_FILE_PATTERNS, ANNOTATION_FILE_PATTERNS):
        for sub_q in _SUBFOLDERS:
            questions = directory / sub_q / question_pattern.format(split=split)
            if not questions.is_file():
                continue
            for sub_a in _SUBFOLDERS:
                annotations = directory / sub_a / annotation_pattern.format(split=split)
                if annotations.is_file():
                    return questions, annotations
            return questions, None  # e.g. test2015: questions only
    return None


def find_splits(directory: Path) -> list[str]:
    """Names of the splits that have a questions file under ``directory`` (sorted)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a folder; expected a folder with VQA questions/annotations JSON files")
    splits = set()
    for sub in _SUBFOLDERS:
        folder = directory / sub
        if not folder.is_dir():
            continue
        for path in folder.glob("*_questions.json"):
            name = path.name
            for prefix in ("v2_OpenEnded_mscoco_", "OpenEnded_mscoco_"):
                if name.startswith(prefix):
                    splits.add(name[len(prefix) : -len("_questions.json")])
                    break
    return sorted(splits)


def find_image_folder(directory: Path, split: str) -> Path:
    for pattern in IMAGE_FOLDER_PATTERNS:
        folder = Path(directory) / pattern.format(split=split)
        if folder.is_dir():
            return folder
    tried = [str(Path(directory) / p.format(split=split)) for p in IMAGE_FOLDER_PATTERNS]
    raise DataError(f"No image folder for split {split!r}; tried {tried} (set image_dir to the COCO image folder)")


def image_path(image_folder: Path, split: str, image_id: int) -> Path:
    """The COCO file of ``image_id``: COCO_<split>_<id:012d>.jpg, else <id:012d>.jpg."""
    candidates = [Path(image_folder) / p.format(split=split, image_id=image_id) for p in IMAGE_NAME_PATTERNS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise DataError(f"Image {image_id} is missing: neither {candidates[0]} nor {candidates[1].name} exists")


def read_split(
    questions_path: Path, annotations_path: Path, image_folder: Path, split: str | None = None
) -> list[VQARecord]:
    """Joins questions, annotations and image files of one split; records sorted by question id.

    Raises DataError for a question without annotation (or the reverse), an annotation whose
    image_id differs from its question's, and a missing image file.
    """
    subtype, questions = read_questions(questions_path)
    annotations = read_annotations(annotations_path)
    split = split or subtype
    if split is None:
        raise DataError(f"{questions_path}: no 'data_subtype' field; pass the split name (e.g. 'val2014')")
    unanswered = sorted(set(questions) - set(annotations))
    if unanswered:
        raise DataError(
            f"{annotations_path}: {len(unanswered)} questions of {questions_path.name} have no annotation "
            f"(question ids {unanswered[:5]}{' ...' if len(unanswered) > 5 else ''}); expected one per question"
        )
    orphans = sorted(set(annotations) - set(questions))
    if orphans:
        raise DataError(
            f"{annotations_path}: {len(orphans)} annotations have no question in {questions_path.name} "
            f"(question ids {orphans[:5]}{' ...' if len(orphans) > 5 else ''}); are the two files of the same split?"
        )
    paths: dict[int, Path] = {}
    records = []
    for question_id in sorted(questions):
        question, annotation = questions[question_id], annotations[question_id]
        if question["image_id"] != annotation["image_id"]:
            raise DataError(
                f"{annotations_path}: question {question_id} has image_id {annotation['image_id']} but "
                f"{question['image_id']} in {questions_path.name}"
            )
        image_id = question["image_id"]
        if image_id not in paths:
            paths[image_id] = image_path(image_folder, split, image_id)
        records.append(
            VQARecord(
                question_id=question_id,
                image_id=image_id,
                question=question["question"],
                answers=annotation["answers"],
                answer_type=annotation["answer_type"],
                question_type=annotation["question_type"],
                multiple_choice_answer=annotation["multiple_choice_answer"],
                image_path=paths[image_id],
            )
        )
    if not records:
        raise DataError(f"{questions_path}: no questions; expected at least one")
    return records


def read_directory(directory: Path, image_folder: Path | None = None) -> dict[str, list[VQARecord]]:
    """Every annotated split under ``directory``: {split: records}. Splits without annotations
    (test2015) are skipped; a folder where no split has annotations is an error."""
    directory = Path(directory)
    splits = find_splits(directory)
    if not splits:
        raise DataError(
            f"{directory}: no VQA questions file; expected e.g. {QUESTION_FILE_PATTERNS[0].format(split='train2014')}"
        )
    result = {}
    unannotated = []
    for split in splits:
        questions, annotations = find_split_files(directory, split)
        if annotations is None:
            unannotated.append(questions.name)
            continue
        folder = Path(image_folder) if image_folder else find_image_folder(directory, split)
        result[split] = read_split(questions, annotations, folder, split)
    if not result:
        raise DataError(
            f"{directory}: the questions files {unannotated} have no annotation file beside them; expected "
            f"e.g. {ANNOTATION_FILE_PATTERNS[0].format(split=splits[0])} (answers are needed to train and score)"
        )
    return result


def read_results(path: Path) -> dict[int, str]:
    """An official results file ``[{"question_id": int, "answer": str}, ...]`` → {question_id: answer}."""
    path = Path(path)
    payload = _load_json(path)
    if not isinstance(payload, list):
        raise DataError(
            f"{path}: expected the VQA results format, a JSON list of {{\"question_id\", \"answer\"}} objects; "
            f"found a {type(payload).__name__}"
        )
    results: dict[int, str] = {}
    for index, entry in enumerate(payload):
        where = f"{path}: [{index}]"
        question_id = _field(entry, "question_id", int, where)
        if question_id in results:
            raise DataError(f"{where}: question_id {question_id} is answered twice; expected one answer per question")
        results[question_id] = _field(entry, "answer", str, where)
    return results


# --- splits ------------------------------------------------------------------------------------------


def split_by_image(records: Sequence[VQARecord], fraction: float, seed: int) -> tuple[list[VQARecord], list[VQARecord]]:
    """(rest, held_out): a random ``fraction`` of the IMAGES (all their questions) goes to held_out."""
    image_ids = sorted({r.image_id for r in records})
    rng = np.random.default_rng(seed)
    rng.shuffle(image_ids)
    count = max(1, int(round(fraction * len(image_ids)))) if len(image_ids) > 1 else 0
    held = set(image_ids[:count])
    return [r for r in records if r.image_id not in held], [r for r in records if r.image_id in held]


def write_test_files(records: Sequence[VQARecord], split: str, folder: Path) -> dict[str, str]:
    """The test records in the VQA v2 format (questions + annotations JSON) under ``folder``, so that a
    results file on them can be re-scored; returns {"split", "questions", "annotations"} (paths as text)."""
    folder = Path(folder)
    questions = folder / f"v2_OpenEnded_mscoco_{split}-test_questions.json"
    annotations = folder / f"v2_mscoco_{split}-test_annotations.json"
    atomic_write_json(questions, {"data_subtype": split, "questions": [
        {"image_id": r.image_id, "question": r.question, "question_id": r.question_id} for r in records]})  # fmt: skip
    atomic_write_json(annotations, {"data_subtype": split, "annotations": [
        {"question_id": r.question_id, "image_id": r.image_id, "question_type": r.question_type,
         "answer_type": r.answer_type, "multiple_choice_answer": r.multiple_choice_answer,
         "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k, a in enumerate(r.answers)]}
        for r in records]})  # fmt: skip
    return {"split": f"{split} (test part)", "questions": str(questions), "annotations": str(annotations)}


def assign_splits(
    splits: dict[str, list[VQARecord]], source: Path, workdir: Path, validation_fraction: float,
    test_fraction: float, seed: int,
) -> tuple[list[VQARecord], list[VQARecord], list[VQARecord], dict[str, str]]:  # fmt: skip
    """(train, validation, test records, the test split's {"split", "questions", "annotations"} files).

    Two or more splits (train2014 + val2014): the train* split gives train and validation (a
    ``validation_fraction`` of its images), the val* split (else the other one) is the test split, as
    in VQA practice. A single split is divided by image into train / validation / test, and its test
    part is written under ``workdir`` in the VQA format.
    """
    names = sorted(splits)
    if len(names) == 1:
        (test_name,) = names
        rest, test = split_by_image(splits[test_name], test_fraction, seed)
        train, validation = split_by_image(rest, validation_fraction / (1 - test_fraction), seed + 1)
        logger.info("One split (%s): divided by image into train/validation/test", test_name)
    else:
        train_names = [n for n in names if n.startswith("train")]
        if not train_names:
            raise DataError(
                f"{source}: found splits {names} but none named train*; expected e.g. train2014 + val2014"
            )
        train_name = train_names[0]
        others = [n for n in names if n != train_name]
        test_name = next((n for n in others if n.startswith("val")), others[0])
        if len(names) > 2:
            ignored = [n for n in others if n != test_name]
            logger.warning("Using %s (train) and %s (test); ignoring %s", train_name, test_name, ignored)
        train, validation = split_by_image(splits[train_name], validation_fraction, seed)
        test = splits[test_name]
    for label, records in (("train", train), ("validation", validation), ("test", test)):
        if not records:
            total = sum(map(len, splits.values()))
            raise DataError(f"{source}: the {label} split is empty; expected more images (have {total} questions)")
    if len(names) == 1:
        test_files = write_test_files(test, test_name, workdir)
    else:
        questions_path, annotations_path = find_split_files(source, test_name)
        test_files = {"split": test_name, "questions": str(questions_path), "annotations": str(annotations_path)}
    return train, validation, test, test_files


def read_scoring_files(questions_path: Path, annotations_path: Path, predictions_path: Path):
    """(predictions {question_id: answer}, annotations of ``read_annotations``) for re-scoring a results
    file; DataError when the questions and annotations files do not describe the same questions."""
    _, questions = read_questions(questions_path)
    annotations = read_annotations(annotations_path)
    if set(questions) != set(annotations):
        unanswered = sorted(set(questions) - set(annotations))
        orphans = sorted(set(annotations) - set(questions))
        raise DataError(
            f"--questions {questions_path} and --annotations {annotations_path} do not describe the same "
            f"questions: {len(unanswered)} questions without annotation (e.g. {unanswered[:5]}), "
            f"{len(orphans)} annotations without question (e.g. {orphans[:5]})"
        )
    return read_results(predictions_path), annotations
