"""Seeded VQA data over shape scenes, written in the VQA v2 on-disk format (JSON + COCO-named JPEGs).

Each image is a random scene of ``data.synthetic.scenes`` (1-4 shapes); each question is drawn from
templates of the three official answer types, chosen with equal probability:

  yes/no  "is there a red circle?", "are there any squares?", "is the triangle blue?"
  number  "how many squares are there?", "how many green objects are there?"
  other   "what colour is the triangle?", "what shape is the red object?", "what size is the blue cross?",
          "what shape is left of the circle?" (the nearest shape clearly left of it)

The answer is a function of the image AND the question: the same question has different answers
on different images (yes/no positives and negatives are balanced, counts range 0-4) and the same
image answers different questions. Ten simulated annotators answer each question: each one gives
a wrong answer with a small probability (a neighbouring count, another colour/shape, the opposite
yes/no) and writes the answer in a varying form ("2", "two", "Two.", "Yes", "a circle"), which the
official normalisation maps back to one form, so the answers "sometimes disagree or vary in form".

Layout written under ``directory`` (the real VQA v2 names, so the real reader reads it):
  v2_OpenEnded_mscoco_<split>_questions.json, v2_mscoco_<split>_annotations.json,
  <split>/COCO_<split>_<image_id:012d>.jpg, scenes_<split>.json ({image_id: the scene's objects}, not
  part of the VQA format: used to pretrain the image encoder), generator.json (parameters; written last)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from common.io import atomic_write_json
from data.synthetic import scenes

ANSWER_TYPES = ("yes/no", "number", "other")
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six")
PLURALS = {"cross": "crosses"}  # the other shapes take an "s"
SPLITS = ("train2014", "val2014")  # the VQA v2 training and validation splits
GENERATOR_VERSION = 3  # bump when the output changes for the same parameters


@dataclasses.dataclass(frozen=True)
class SyntheticQuestion:
    question: str
    question_type: str  # the template's opening words, like VQA's question_type
    answer_type: str  # one of ANSWER_TYPES
    answer: str  # the correct answer in canonical form (lower case, digits)


def plural(shape: str) -> str:
    return PLURALS.get(shape, shape + "s")


def _choice(rng: np.random.Generator, items: Sequence[Any]) -> Any:
    return items[int(rng.integers(len(items)))]


def _unique(objects: Sequence[scenes.SceneObject], key: str) -> list[scenes.SceneObject]:
    """Objects whose ``key`` attribute (shape / colour) no other object of the scene shares."""
    values = [getattr(o, key) for o in objects]
    return [o for o in objects if values.count(getattr(o, key)) == 1]


def _yes_no(scene: scenes.Scene, rng: np.random.Generator) -> SyntheticQuestion:
    objects = scene.objects
    template = int(rng.integers(3))
    positive = bool(rng.integers(2))  # balance yes and no
    if template == 0:
        return _is_there(scene, rng, positive)
    if template == 1:
        present_shapes = sorted({o.shape for o in objects})
        absent_shapes = [s for s in scenes.SHAPES if s not in present_shapes]
        shape = _choice(rng, present_shapes if positive or not absent_shapes else absent_shapes)
        answer = "yes" if shape in present_shapes else "no"
        return SyntheticQuestion(f"are there any {plural(shape)}?", "are there any", "yes/no", answer)
    unique = _unique(objects, "shape")
    if not unique:  # every shape repeats: fall back to the first template
        return _is_there(scene, rng, positive)
    item = _choice(rng, unique)
    colour = item.colour if positive else _choice(rng, [c for c in scenes.COLOURS if c != item.colour])
    return SyntheticQuestion(f"is the {item.shape} {colour}?", "is the", "yes/no", "yes" if positive else "no")


def _is_there(scene: scenes.Scene, rng: np.random.Generator, positive: bool) -> SyntheticQuestion:
    present = {(o.colour, o.shape) for o in scene.objects}
    if positive:
        colour, shape = _choice(rng, sorted(present))
    else:
        colour, shape = _choice(rng, [(c, s) for c in scenes.COLOURS for s in scenes.SHAPES if (c, s) not in present])
    article = "an" if colour[0] in "aeiou" else "a"  # "an orange square"
    answer = "yes" if positive else "no"
    return SyntheticQuestion(f"is there {article} {colour} {shape}?", "is there a", "yes/no", answer)


def _number(scene: scenes.Scene, rng: np.random.Generator) -> SyntheticQuestion:
    """Counts of a shape or of a colour. The count is drawn uniformly among the distinct counts the
    scene offers (then a shape/colour with that count), so 2s and 3s are not drowned by 0s and 1s."""
    key, pool = ("shape", scenes.SHAPES) if rng.random() < 0.5 else ("colour", scenes.COLOURS)
    counts = {value: sum(getattr(o, key) == value for o in scene.objects) for value in pool}
    count = _choice(rng, sorted(set(counts.values())))
    value = _choice(rng, [v for v in pool if counts[v] == count])
    if key == "shape":
        return SyntheticQuestion(f"how many {plural(value)} are there?", "how many", "number", str(count))
    return SyntheticQuestion(f"how many {value} objects are there?", "how many", "number", str(count))


def _nearest_left_or_right(scene: scenes.Scene, reference: scenes.SceneObject, relation: str):
    candidates = [
        o for o in scene.objects if o is not reference and scenes.horizontal_relation(o, reference) == relation
    ]
    return min(candidates, key=lambda o: abs(o.x - reference.x)) if candidates else None


def _other(scene: scenes.Scene, rng: np.random.Generator) -> SyntheticQuestion:
    unique_shapes = _unique(scene.objects, "shape")
    unique_colours = _unique(scene.objects, "colour")
    options = []
    if unique_shapes:
        options.append("colour")
        options.append("relation")
    if unique_colours:
        options.append("shape")
        options.append("size")
    while options:
        kind = _choice(rng, options)
        if kind == "colour":
            item = _choice(rng, unique_shapes)
            return SyntheticQuestion(f"what colour is the {item.shape}?", "what colour is the", "other", item.colour)
        if kind == "shape":
            item = _choice(rng, unique_colours)
            question = f"what shape is the {item.colour} object?"
            return SyntheticQuestion(question, "what shape is the", "other", item.shape)
        if kind == "size":
            item = _choice(rng, unique_colours)
            question = f"what size is the {item.colour} {item.shape}?"
            return SyntheticQuestion(question, "what size is the", "other", item.size)
        reference = _choice(rng, unique_shapes)
        relation = _choice(rng, ("left of", "right of"))
        neighbour = _nearest_left_or_right(scene, reference, relation)
        if neighbour is not None:
            question = f"what shape is {relation} the {reference.shape}?"
            return SyntheticQuestion(question, "what shape is", "other", neighbour.shape)
        options.remove("relation")
    # Every shape and every colour repeats (e.g. two red circles): no "other" question has one answer.
    return _yes_no(scene, rng)


def generate_question(scene: scenes.Scene, rng: np.random.Generator) -> SyntheticQuestion:
    """One question about ``scene``; the answer type is uniform over yes/no, number, other."""
    answer_type = _choice(rng, ANSWER_TYPES)
    if answer_type == "yes/no":
        return _yes_no(scene, rng)
    if answer_type == "number":
        return _number(scene, rng)
    return _other(scene, rng)


def _wrong_answer(item: SyntheticQuestion, rng: np.random.Generator) -> str:
    if item.answer_type == "yes/no":
        return "no" if item.answer == "yes" else "yes"
    if item.answer_type == "number":
        value = int(item.answer)
        return str(value + 1 if value == 0 or rng.random() < 0.5 else value - 1)  # a miscount by one
    for pool in (scenes.COLOURS, scenes.SHAPES, scenes.SIZES):
        if item.answer in pool:
            return _choice(rng, [v for v in pool if v != item.answer])
    return item.answer


def _surface_form(answer: str, answer_type: str, rng: np.random.Generator) -> str:
    """A way a person might type ``answer``; the official normalisation maps it back."""
    if rng.random() < 0.7:
        return answer
    if answer_type == "number" and int(answer) < len(NUMBER_WORDS):
        answer = NUMBER_WORDS[int(answer)] if rng.random() < 0.6 else answer
    elif answer_type == "other" and answer in scenes.SHAPES and rng.random() < 0.4:
        answer = "a " + answer
    style = int(rng.integers(4))
    if style == 3:  # the word form alone ("two", "a circle"), or the answer unchanged
        return answer
    if style == 0:
        return answer[0].upper() + answer[1:]
    if style == 1:
        return answer + "."
    return answer[0].upper() + answer[1:] + "."


def human_answers(item: SyntheticQuestion, rng: np.random.Generator, error_rate: float, count: int = 10) -> list[str]:
    """``count`` simulated annotators: each wrong with probability ``error_rate``, in varying forms."""
    answers = []
    for _ in range(count):
        answer = _wrong_answer(item, rng) if rng.random() < error_rate else item.answer
        answers.append(_surface_form(answer, item.answer_type, rng))
    return answers


def _write_split(
    directory: Path, split: str, first_image_id: int, images: int, questions_per_image: int,
    image_size: int, max_objects: int, error_rate: float, rng: np.random.Generator,
) -> None:  # fmt: skip
    questions, annotations, scene_list = [], [], {}
    for offset in range(images):
        image_id = first_image_id + offset
        scene = scenes.random_scene(rng, max_objects=max_objects)
        scene_list[str(image_id)] = scene.to_dict()
        image_file = directory / split / f"COCO_{split}_{image_id:012d}.jpg"
        scenes.write_jpeg(scenes.draw_scene(scene, image_size=image_size), image_file)
        asked = set()
        for k in range(questions_per_image):
            item = generate_question(scene, rng)
            for _ in range(10):  # avoid asking the same question twice about one image
                if item.question not in asked:
                    break
                item = generate_question(scene, rng)
            asked.add(item.question)
            question_id = image_id * 1000 + k  # VQA v2 numbers questions the same way
            answers = human_answers(item, rng, error_rate)
            questions.append({"image_id": image_id, "question": item.question, "question_id": question_id})
            annotations.append({
                "question_type": item.question_type,
                "multiple_choice_answer": item.answer,
                "answers": [
                    {"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(answers)
                ],
                "image_id": image_id,
                "answer_type": item.answer_type,
                "question_id": question_id,
            })  # fmt: skip
    info = {"description": "Synthetic shape-scene VQA (rnn_suite data/synthetic/questions.py)", "version": "2.0"}
    license_ = {"name": "CC0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}
    atomic_write_json(
        directory / f"v2_OpenEnded_mscoco_{split}_questions.json",
        {"info": info, "task_type": "Open-Ended", "data_type": "mscoco", "license": license_,
         "data_subtype": split, "questions": questions},
    )  # fmt: skip
    atomic_write_json(
        directory / f"v2_mscoco_{split}_annotations.json",
        {"info": info, "license": license_, "data_subtype": split, "annotations": annotations},
    )
    # Not part of the VQA format: what each image shows, for pretraining the image encoder on object
    # attributes (the synthetic stand-in for ImageNet pretraining). Only the training split's is used.
    atomic_write_json(directory / f"scenes_{split}.json", scene_list)


def write_dataset(
    directory: Path,
    seed: int,
    train_images: int,
    validation_images: int,
    questions_per_image: int = 5,
    image_size: int = 64,
    max_objects: int = 4,
    error_rate: float = 0.1,
) -> bool:
    """Writes both splits under ``directory`` unless the same parameters are already there.

    Returns True when it wrote, False when it found the data already generated.
    """
    directory = Path(directory)
    parameters = {
        "version": GENERATOR_VERSION, "seed": seed, "train_images": train_images,
        "validation_images": validation_images, "questions_per_image": questions_per_image,
        "image_size": image_size, "max_objects": max_objects, "error_rate": error_rate,
    }  # fmt: skip
    marker = directory / "generator.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == parameters:
                return False
        except json.JSONDecodeError:
            pass  # a damaged marker: regenerate
        marker.unlink()
    rng = np.random.default_rng(seed)
    sizes = {SPLITS[0]: train_images, SPLITS[1]: validation_images}
    first_image_id = 1
    for split in SPLITS:
        # Images of a previous generation with other parameters must not linger.
        for old in (directory / split).glob("*.jpg") if (directory / split).is_dir() else ():
            old.unlink()
        _write_split(directory, split, first_image_id, sizes[split], questions_per_image, image_size, max_objects,
                     error_rate, rng)
        first_image_id += sizes[split]
    atomic_write_json(marker, parameters)  # last: its presence means the data is complete
    return True


def read_scenes(directory: Path, split: str) -> dict[int, scenes.Scene] | None:
    """{image_id: Scene} of a generated split, or None when the folder has no scene file (real data)."""
    path = Path(directory) / f"scenes_{split}.json"
    if not path.is_file():
        return None
    payload = json.loads(path.read_text())
    return {int(image_id): scenes.Scene.from_dict(objects) for image_id, objects in payload.items()}


def read_scene_files(directory: Path, splits: Iterable[str]) -> dict[int, scenes.Scene] | None:
    """{image_id: Scene} over the generated ``splits``, or None when one of them has no scene file
    (real data: nothing to pretrain an image encoder on)."""
    merged: dict[int, scenes.Scene] = {}
    for split in splits:
        found = read_scenes(directory, split)
        if found is None:
            return None
        merged.update(found)
    return merged


def attribute_targets(scene: scenes.Scene) -> np.ndarray:
    """Multi-hot float32 vector of what a scene shows, for pretraining an image encoder.

    [colour × shape present (30), shape × size (10), colour × size (12), colour in each image quarter
    (4 × 6), shape in each quarter (4 × 5), number of objects 1..6 one-hot (6)] = 102 values.
    """
    colours, shapes, sizes = scenes.COLOURS, scenes.SHAPES, scenes.SIZES
    pairs = np.zeros((len(colours), len(shapes)), np.float32)
    shape_size = np.zeros((len(shapes), len(sizes)), np.float32)
    colour_size = np.zeros((len(colours), len(sizes)), np.float32)
    colour_quarter = np.zeros((4, len(colours)), np.float32)
    shape_quarter = np.zeros((4, len(shapes)), np.float32)
    count = np.zeros(6, np.float32)
    for item in scene.objects:
        c, s, z = colours.index(item.colour), shapes.index(item.shape), sizes.index(item.size)
        quarter = 2 * int(item.y >= 0.5) + int(item.x >= 0.5)
        pairs[c, s] = shape_size[s, z] = colour_size[c, z] = 1.0
        colour_quarter[quarter, c] = shape_quarter[quarter, s] = 1.0
    count[min(len(scene.objects), 6) - 1] = 1.0
    return np.concatenate([a.ravel() for a in (pairs, shape_size, colour_size, colour_quarter, shape_quarter, count)])
