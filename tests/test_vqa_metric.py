"""Known-answer tests of the official VQA accuracy (common/metrics/vqa.py).

The expected values are worked out by hand from the evaluation script's algorithm (vqaEval.py of
GT-Vision-Lab/VQA): accuracy = mean over the 10 leave-one-out subsets of min(#matches / 3, 1).
"""

from __future__ import annotations

import pytest

from common.metrics import vqa


@pytest.mark.parametrize(
    "answer, expected",
    [("yes", 1.0), ("no", 0.6), ("maybe", 0.0), ("No", 0.6), ("no.", 0.6), (" no\n", 0.6)],
)
def test_eight_yes_two_no(answer, expected):
    humans = ["yes"] * 8 + ["no"] * 2
    assert vqa.question_accuracy(answer, humans) == pytest.approx(expected)


@pytest.mark.parametrize(
    "matches, expected",
    # m matches: m subsets keep m-1, 10-m keep m.  1: 9·(1/3)/10; 2: (8·2/3 + 2·1/3)/10; 3: (7 + 3·2/3)/10.
    [(0, 0.0), (1, 0.3), (2, 0.6), (3, 0.9), (4, 1.0), (10, 1.0)],
)
def test_leave_one_out_by_number_of_matches(matches, expected):
    humans = ["red"] * matches + ["blue"] * (10 - matches)
    assert vqa.question_accuracy("red", humans) == pytest.approx(expected)


def test_identical_answers_are_not_normalised_quirk():
    # The script normalises only when the 10 answers are not all the same string.
    assert vqa.question_accuracy("yes", ["yes"] * 10) == 1.0
    assert vqa.question_accuracy("Yes", ["yes"] * 10) == 0.0
    assert vqa.question_accuracy("two", ["2"] * 10) == 0.0
    # One differing answer switches normalisation on for all of them and for the prediction.
    assert vqa.question_accuracy("Yes", ["yes"] * 9 + ["Yes."]) == 1.0


def test_forms_of_one_number_pool_together():
    humans = ["2"] * 3 + ["two"] * 3 + ["Two."] * 2 + ["3"] * 2
    for answer in ("2", "two", "Two", "TWO!", "the two"):
        assert vqa.question_accuracy(answer, humans) == 1.0, answer
    assert vqa.question_accuracy("three", humans) == pytest.approx(0.6)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("hello, world", "hello world"),  # "," next to a space: removed
        ("1,000", "1000"),  # a digit-comma-digit anywhere: every mark removed
        ("black/white", "black white"),  # otherwise a mark becomes a space
        ("a-b, c", "a b c"),  # per mark: "-" has no space beside it (space), "," has (removed)
        ("1,000-2", "10002"),  # quirk: a digit-comma-digit makes every mark vanish, "-" included
        ("3.5", "3.5"),  # a period before a digit stays
        ("end.", "end"),
        ("what?!", "what  "),
    ],
)
def test_process_punctuation(text, expected):
    assert vqa.process_punctuation(text) == expected


def test_period_strip_count_quirk():
    # re.sub receives re.UNICODE (32) as its count: only the first 32 periods go.
    assert vqa.process_punctuation("x." * 40).count(".") == 8


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Two dogs", "2 dogs"),
        ("an apple", "apple"),
        ("none", "0"),
        ("dont know", "don't know"),
        ("ten   cats", "10 cats"),
        ("eleven", "eleven"),  # the script maps zero..ten only
    ],
)
def test_process_digit_article(text, expected):
    assert vqa.process_digit_article(text) == expected


def test_normalize_answer():
    assert vqa.normalize_answer("  Two.\t") == "2"
    assert vqa.normalize_answer("A Circle") == "circle"


def test_soft_scores():
    assert vqa.soft_scores(["yes"] * 8 + ["no"] * 2) == pytest.approx({"yes": 1.0, "no": 0.6})
    assert vqa.soft_scores(["2"] * 5 + ["two"] * 4 + ["Three"]) == pytest.approx({"2": 1.0, "3": 0.3})


def test_corpus_accuracy_per_type():
    annotations = {
        1: {"answers": ["yes"] * 8 + ["no"] * 2, "answer_type": "yes/no", "question_type": "is the"},
        2: {"answers": ["2"] * 10, "answer_type": "number", "question_type": "how many"},
        3: {"answers": ["red"] * 10, "answer_type": "other", "question_type": "what colour is the"},
        4: {"answers": ["no"] * 10, "answer_type": "yes/no", "question_type": "is there a"},
    }
    predictions = {1: "no", 2: "2", 3: "blue", 4: "no"}
    result = vqa.vqa_accuracy(predictions, annotations)
    assert result["overall"] == pytest.approx((60 + 100 + 0 + 100) / 4)
    assert result["perAnswerType"] == pytest.approx({"number": 100.0, "other": 0.0, "yes/no": 80.0})
    assert result["perQuestionType"] == pytest.approx(
        {"how many": 100.0, "is the": 60.0, "is there a": 100.0, "what colour is the": 0.0}
    )


def test_unrounded():
    annotation = {"answers": ["a b"] * 3 + ["c"] * 7, "answer_type": "other", "question_type": "t"}
    annotations = {k: annotation for k in (1, 2, 3)}
    result = vqa.vqa_accuracy({1: "c", 2: "c", 3: "zzz"}, annotations)
    assert result["overall"] == pytest.approx(200 / 3)
    assert result["overall"] != round(result["overall"], 2)


def test_mismatching_question_ids_name_how_many_and_which():
    annotations = {k: {"answers": ["x"] * 10, "answer_type": "other", "question_type": "t"} for k in range(1, 9)}
    predictions = {k: "x" for k in range(3, 9)} | {100: "x"}
    with pytest.raises(vqa.QuestionIdMismatch) as caught:
        vqa.vqa_accuracy(predictions, annotations)
    message = str(caught.value)
    assert "2 annotated question ids have no prediction (e.g. [1, 2])" in message
    assert "1 predicted question ids are not in the annotations (e.g. [100])" in message


def test_empty_inputs_are_errors():
    with pytest.raises(ValueError, match="at least one human answer"):
        vqa.question_accuracy("yes", [])
    with pytest.raises(ValueError, match="at least one annotated question"):
        vqa.vqa_accuracy({}, {})
