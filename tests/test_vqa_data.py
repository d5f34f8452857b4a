"""The VQA v2/v1 reader (data/vqa.py) on fixtures and its errors; the synthetic question generator."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from common.metrics import vqa as vqa_metric
from data import DataError
from data import vqa as reader
from data.synthetic import questions as synthetic
from data.synthetic import scenes

FIXTURES = Path(__file__).parent / "fixtures" / "vqa"
TINY_JPEG_SIZE = 16


def _write(directory: Path, split="train2014", version=2, images=(1, 2), questions_per_image=2, name_style="2014"):
    """A small VQA dataset: JSON files with the official names and COCO-named JPEGs."""
    prefix_q = "v2_OpenEnded_mscoco_" if version == 2 else "OpenEnded_mscoco_"
    prefix_a = "v2_mscoco_" if version == 2 else "mscoco_"
    questions, annotations = [], []
    for image_id in images:
        file_name = f"COCO_{split}_{image_id:012d}.jpg" if name_style == "2014" else f"{image_id:012d}.jpg"
        image = scenes.draw_scene(scenes.random_scene(np.random.default_rng(image_id)), image_size=TINY_JPEG_SIZE)
        scenes.write_jpeg(image, directory / split / file_name)
        for k in range(questions_per_image):
            question_id = image_id * 1000 + k
            questions.append({"image_id": image_id, "question": f"is it {k}?", "question_id": question_id})
            annotations.append({
                "question_id": question_id, "image_id": image_id, "question_type": "is it", "answer_type": "yes/no",
                "multiple_choice_answer": "yes",
                "answers": [{"answer": "yes", "answer_confidence": "yes", "answer_id": i + 1} for i in range(10)],
            })  # fmt: skip
    questions_path = directory / f"{prefix_q}{split}_questions.json"
    annotations_path = directory / f"{prefix_a}{split}_annotations.json"
    questions_path.write_text(json.dumps({"data_subtype": split, "questions": questions}))
    annotations_path.write_text(json.dumps({"data_subtype": split, "annotations": annotations}))
    return questions_path, annotations_path


def test_reads_the_fixture_joined_with_coco_2017_names(tmp_path):
    # The fixture's images are COCO 2017 files (<id:012d>.jpg): stand-ins are written here, the
    # real photos are used by the real_data test.
    payload = json.loads((FIXTURES / "v2_OpenEnded_mscoco_val2017_questions.json").read_text())
    for image_id in {q["image_id"] for q in payload["questions"]}:
        image = scenes.draw_scene(scenes.random_scene(np.random.default_rng(0)), 16)
        scenes.write_jpeg(image, tmp_path / f"{image_id:012d}.jpg")
    splits = reader.read_directory(FIXTURES, image_folder=tmp_path)
    records = splits["val2017"]
    assert len(records) == 24 and len({r.image_id for r in records}) == 8
    first = records[0]
    assert first.question_id == 802000 and first.question == "what room is this?"
    assert first.answers == ("kitchen",) * 10 and first.answer_type == "other" and first.question_type == "what room is"
    assert first.image_path == tmp_path / "000000000802.jpg"
    assert {r.answer_type for r in records} == {"yes/no", "number", "other"}


def test_reads_v2_and_v1_names_and_both_splits(tmp_path):
    _write(tmp_path, "train2014", version=2)
    _write(tmp_path, "val2014", version=1, images=(7,))
    splits = reader.read_directory(tmp_path)
    assert sorted(splits) == ["train2014", "val2014"]
    assert len(splits["train2014"]) == 4 and len(splits["val2014"]) == 2
    assert splits["val2014"][0].image_path.name == "COCO_val2014_000000000007.jpg"
    assert [r.question_id for r in splits["train2014"]] == [1000, 1001, 2000, 2001]


def test_question_without_annotation(tmp_path):
    questions_path, annotations_path = _write(tmp_path)
    payload = json.loads(annotations_path.read_text())
    payload["annotations"] = payload["annotations"][1:]
    annotations_path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=r"1 questions of .* have no annotation \(question ids \[1000\]\)"):
        reader.read_directory(tmp_path)


def test_annotation_without_question(tmp_path):
    questions_path, _ = _write(tmp_path)
    payload = json.loads(questions_path.read_text())
    payload["questions"] = payload["questions"][:-1]
    questions_path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=r"1 annotations have no question .*\[2001\]"):
        reader.read_directory(tmp_path)


def test_missing_image_names_the_file(tmp_path):
    _write(tmp_path)
    (tmp_path / "train2014" / "COCO_train2014_000000000002.jpg").unlink()
    with pytest.raises(DataError, match=r"Image 2 is missing: neither .*COCO_train2014_000000000002\.jpg"):
        reader.read_directory(tmp_path)


def test_missing_image_folder(tmp_path):
    _write(tmp_path)
    for file in (tmp_path / "train2014").iterdir():
        file.unlink()
    (tmp_path / "train2014").rmdir()
    with pytest.raises(DataError, match="No image folder for split 'train2014'"):
        reader.read_directory(tmp_path)


def test_malformed_json_names_file_line_and_column(tmp_path):
    questions_path, _ = _write(tmp_path)
    questions_path.write_text('{"questions": [\n  {"question_id": 1,, }\n]}')
    with pytest.raises(DataError, match=r"train2014_questions\.json' is not valid JSON: .* at line 2, column"):
        reader.read_directory(tmp_path)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda p: p.pop("questions"), r"expected a JSON object with a list under 'questions'"),
        (lambda p: p["questions"][0].pop("image_id"), r"questions\[0\]: missing field 'image_id'"),
        (lambda p: p["questions"][1].update(question_id="7"),
         r"questions\[1\]: field 'question_id' should be int, found '7'"),
        (lambda p: p["questions"][1].update(question_id=1000), r"questions\[1\]: question_id 1000 appears twice"),
        (lambda p: p["questions"][0].update(question=None), r"field 'question' should be str"),
    ],
)
def test_bad_question_fields(tmp_path, mutate, message):
    questions_path, _ = _write(tmp_path)
    payload = json.loads(questions_path.read_text())
    mutate(payload)
    questions_path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=message):
        reader.read_directory(tmp_path)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda p: p["annotations"][0].update(answers=[]), r"annotations\[0\]: 'answers' is empty"),
        (lambda p: p["annotations"][0]["answers"][3].pop("answer"),
         r"annotations\[0\]\.answers\[3\]: missing field 'answer'"),
        (lambda p: p["annotations"][2].pop("answer_type"), r"annotations\[2\]: missing field 'answer_type'"),
        (lambda p: p["annotations"][0].update(image_id=2), r"question 1000 has image_id 2 but 1"),
    ],
)
def test_bad_annotation_fields(tmp_path, mutate, message):
    _, annotations_path = _write(tmp_path)
    payload = json.loads(annotations_path.read_text())
    mutate(payload)
    annotations_path.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=message):
        reader.read_directory(tmp_path)


def test_questions_without_any_annotation_file(tmp_path):
    _, annotations_path = _write(tmp_path, "test2015")
    annotations_path.unlink()
    with pytest.raises(DataError, match=r"have no annotation file beside them; expected .*test2015_annotations"):
        reader.read_directory(tmp_path)


def test_folder_without_questions(tmp_path):
    with pytest.raises(DataError, match="no VQA questions file"):
        reader.read_directory(tmp_path)
    with pytest.raises(DataError, match="not a folder"):
        reader.read_directory(tmp_path / "absent")


def test_read_results_and_its_errors(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps([{"question_id": 1, "answer": "yes"}, {"question_id": 2, "answer": "2"}]))
    assert reader.read_results(path) == {1: "yes", 2: "2"}
    path.write_text(json.dumps({"question_id": 1, "answer": "yes"}))
    with pytest.raises(DataError, match="expected the VQA results format, a JSON list"):
        reader.read_results(path)
    path.write_text(json.dumps([{"question_id": 1, "answer": "yes"}, {"question_id": 1, "answer": "no"}]))
    with pytest.raises(DataError, match=r"\[1\]: question_id 1 is answered twice"):
        reader.read_results(path)
    path.write_text(json.dumps([{"question_id": 1, "answer": 3}]))
    with pytest.raises(DataError, match=r"\[0\]: field 'answer' should be str, found 3"):
        reader.read_results(path)


# --- the synthetic generator ----------------------------------------------------------------------


def _oracle(question: str, scene: scenes.Scene) -> str:
    """An independent reading of each template against the scene's object list."""
    objects = scene.objects
    plural = {synthetic.plural(s): s for s in scenes.SHAPES}
    if match := re.fullmatch(r"is there an? (\w+) (\w+)\?", question):
        return "yes" if any((o.colour, o.shape) == match.groups() for o in objects) else "no"
    if match := re.fullmatch(r"are there any (\w+)\?", question):
        return "yes" if any(o.shape == plural[match[1]] for o in objects) else "no"
    if match := re.fullmatch(r"is the (\w+) (\w+)\?", question):
        (item,) = [o for o in objects if o.shape == match[1]]
        return "yes" if item.colour == match[2] else "no"
    if match := re.fullmatch(r"how many (\w+) objects are there\?", question):
        return str(sum(o.colour == match[1] for o in objects))
    if match := re.fullmatch(r"how many (\w+) are there\?", question):
        return str(sum(o.shape == plural[match[1]] for o in objects))
    if match := re.fullmatch(r"what colour is the (\w+)\?", question):
        (item,) = [o for o in objects if o.shape == match[1]]
        return item.colour
    if match := re.fullmatch(r"what shape is the (\w+) object\?", question):
        (item,) = [o for o in objects if o.colour == match[1]]
        return item.shape
    if match := re.fullmatch(r"what size is the (\w+) (\w+)\?", question):
        (item,) = [o for o in objects if (o.colour, o.shape) == match.groups()]
        return item.size
    if match := re.fullmatch(r"what shape is (left|right) of the (\w+)\?", question):
        (reference,) = [o for o in objects if o.shape == match[2]]
        sign = -1 if match[1] == "left" else 1
        candidates = [o for o in objects if sign * (o.x - reference.x) > 0.1]
        return min(candidates, key=lambda o: abs(o.x - reference.x)).shape
    raise AssertionError(f"no template matches {question!r}")


def test_generated_answers_are_right_and_cover_all_answer_types():
    rng = np.random.default_rng(3)
    answer_types, question_types = set(), set()
    for _ in range(300):
        scene = scenes.random_scene(rng, max_objects=4)
        item = synthetic.generate_question(scene, rng)
        assert item.answer == _oracle(item.question, scene), (item, scene)
        assert item.question.startswith(item.question_type) or item.question.startswith("is there an ")
        answer_types.add(item.answer_type)
        question_types.add(item.question_type)
    assert answer_types == {"yes/no", "number", "other"}
    assert {"is there a", "how many", "what colour is the", "what shape is"} <= question_types


def test_relation_question_on_a_known_scene():
    scene = scenes.Scene(
        objects=(
            scenes.SceneObject("circle", "red", "small", 0.5, 0.5),
            scenes.SceneObject("square", "blue", "small", 0.2, 0.2),
            scenes.SceneObject("cross", "green", "large", 0.8, 0.8),
            scenes.SceneObject("diamond", "green", "small", 0.35, 0.8),
        ),
        background="white",
    )
    assert synthetic._nearest_left_or_right(scene, scene.objects[0], "left of").shape == "diamond"
    assert synthetic._nearest_left_or_right(scene, scene.objects[0], "right of").shape == "cross"
    assert synthetic._nearest_left_or_right(scene, scene.objects[1], "left of") is None


def test_human_answers_vary_in_form_but_normalise_to_the_answer():
    rng = np.random.default_rng(0)
    item = synthetic.SyntheticQuestion("how many circles are there?", "how many", "number", "2")
    seen = set()
    for _ in range(50):
        answers = synthetic.human_answers(item, rng, error_rate=0.0)
        assert len(answers) == 10
        seen.update(answers)
        assert {vqa_metric.normalize_answer(a) for a in answers} == {"2"}
    assert {"2", "two", "Two."} <= seen
    noisy = [a for _ in range(50) for a in synthetic.human_answers(item, rng, error_rate=0.3)]
    assert {vqa_metric.normalize_answer(a) for a in noisy} == {"1", "2", "3"}


def test_write_dataset_is_seeded_readable_and_answers_depend_on_image_and_question(tmp_path):
    kwargs = dict(seed=5, train_images=30, validation_images=6, questions_per_image=4, image_size=32)
    assert synthetic.write_dataset(tmp_path / "a", **kwargs)
    assert not synthetic.write_dataset(tmp_path / "a", **kwargs)  # same parameters: reused
    synthetic.write_dataset(tmp_path / "b", **kwargs)
    for name in ("v2_OpenEnded_mscoco_train2014_questions.json", "v2_mscoco_val2014_annotations.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    splits = reader.read_directory(tmp_path / "a")
    train = splits["train2014"]
    assert len(train) == 120 and len(splits["val2014"]) == 24
    assert all(len(r.answers) == 10 for r in train)
    # The same question text gets different answers on different images ...
    by_question: dict[str, set] = {}
    for record in train:
        by_question.setdefault(record.question, set()).add(record.multiple_choice_answer)
    assert any(len(answers) > 1 for answers in by_question.values())
    # ... and one image answers its questions differently.
    by_image: dict[int, set] = {}
    for record in train:
        by_image.setdefault(record.image_id, set()).add(record.multiple_choice_answer)
    assert any(len(answers) > 1 for answers in by_image.values())
    # The canonical answer scores high under the official metric although the humans vary.
    accuracy = np.mean([vqa_metric.question_accuracy(r.multiple_choice_answer, r.answers) for r in train])
    assert accuracy > 0.95
    assert any(len(set(r.answers)) > 1 for r in train)
    # Other parameters regenerate.
    assert synthetic.write_dataset(tmp_path / "a", **{**kwargs, "seed": 6})


def test_attribute_targets_of_a_known_scene_and_scene_files(tmp_path):
    scene = scenes.Scene(
        objects=(
            scenes.SceneObject("circle", "red", "small", 0.2, 0.2),  # top-left quarter
            scenes.SceneObject("cross", "blue", "large", 0.8, 0.7),  # bottom-right quarter
        ),
        background="grey",
    )
    targets = synthetic.attribute_targets(scene)
    assert targets.shape == (102,) and targets.sum() == 2 * 5 + 1  # 5 facts per object + the count
    colour, shape = scenes.COLOURS.index("red"), scenes.SHAPES.index("circle")
    assert targets[colour * len(scenes.SHAPES) + shape] == 1.0
    assert targets[-6:].tolist() == [0, 1, 0, 0, 0, 0]  # two objects
    quarters = targets[52:76].reshape(4, len(scenes.COLOURS))  # colour per quarter (after 30 + 10 + 12)
    assert quarters[0, colour] == 1.0 and quarters[3, scenes.COLOURS.index("blue")] == 1.0 and quarters.sum() == 2
    synthetic.write_dataset(tmp_path, seed=1, train_images=3, validation_images=1, questions_per_image=1, image_size=16)
    found = synthetic.read_scenes(tmp_path, "train2014")
    assert sorted(found) == [1, 2, 3] and all(isinstance(s, scenes.Scene) for s in found.values())
    assert synthetic.read_scenes(tmp_path, "test2015") is None
    both = synthetic.read_scene_files(tmp_path, ["train2014", "val2014"])
    assert sorted(both) == [1, 2, 3, 4]
    assert synthetic.read_scene_files(tmp_path, ["train2014", "test2015"]) is None  # real data: no scene files


def _records(count: int, questions_per_image: int = 3) -> list:
    return [
        reader.VQARecord(question_id=k, image_id=k // questions_per_image, question="is it?", answers=("yes",) * 10,
                         answer_type="yes/no", question_type="is it", multiple_choice_answer="yes",
                         image_path=Path(f"/images/{k // questions_per_image}.jpg"))
        for k in range(count)
    ]  # fmt: skip


def test_split_by_image_keeps_images_whole():
    rest, held = reader.split_by_image(_records(60), 0.25, seed=0)
    assert len(held) == 15 and len(rest) == 45
    assert not {r.image_id for r in rest} & {r.image_id for r in held}
    assert reader.split_by_image(_records(60), 0.25, seed=0) == (rest, held)  # seeded


def test_assign_splits_one_split_writes_its_test_part_and_two_splits_use_the_val_split(tmp_path):
    only = {"val2017": _records(60)}
    train, validation, test, files = reader.assign_splits(only, tmp_path, tmp_path, 0.1, 0.2, seed=1)
    assert (len(train), len(validation), len(test)) == (42, 6, 12)  # 14 / 2 / 4 images of 3 questions
    assert len({r.image_id for r in train + validation + test}) == 20
    assert files["split"] == "val2017 (test part)"
    _, written = reader.read_questions(Path(files["questions"]))
    annotations = reader.read_annotations(Path(files["annotations"]))
    assert sorted(written) == sorted(annotations) == sorted(r.question_id for r in test)
    assert annotations[test[0].question_id]["answers"] == test[0].answers

    _write(tmp_path / "two", "train2014", images=range(1, 11))
    _write(tmp_path / "two", "val2014", images=(20, 21))
    splits = reader.read_directory(tmp_path / "two")
    train, validation, test, files = reader.assign_splits(splits, tmp_path / "two", tmp_path, 0.1, 0.2, seed=1)
    assert {r.image_id for r in test} == {20, 21} and len(validation) == 2 and len(train) == 18
    assert files == {"split": "val2014",
                     "questions": str(tmp_path / "two" / "v2_OpenEnded_mscoco_val2014_questions.json"),
                     "annotations": str(tmp_path / "two" / "v2_mscoco_val2014_annotations.json")}  # fmt: skip
    with pytest.raises(DataError, match=r"found splits \['test2015', 'val2014'\] but none named train\*"):
        reader.assign_splits({"val2014": test, "test2015": test}, tmp_path, tmp_path, 0.1, 0.2, seed=1)
    with pytest.raises(DataError, match="the validation split is empty"):
        reader.assign_splits({"train2014": _records(3), "val2014": test}, tmp_path, tmp_path, 0.1, 0.2, seed=1)


def test_read_scoring_files_names_questions_without_annotation(tmp_path):
    questions, annotations = _write(tmp_path, images=(1, 2))
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"question_id": 1000, "answer": "yes"}]))
    predictions, read = reader.read_scoring_files(questions, annotations, results)
    assert predictions == {1000: "yes"} and sorted(read) == [1000, 1001, 2000, 2001]
    payload = json.loads(questions.read_text())
    payload["questions"] = payload["questions"][1:]
    questions.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=r"0 questions without annotation \(e\.g\. \[\]\), "
                                         r"1 annotations without question \(e\.g\. \[1000\]\)"):  # fmt: skip
        reader.read_scoring_files(questions, annotations, results)
