"""The official VQA accuracy (Antol et al. 2015; VQA v1/v2 evaluation script), quirks included.

Re-implemented from the algorithm of ``vqaEval.py`` in GT-Vision-Lab/VQA (PythonEvaluationTools):

1. Every human answer and the predicted answer: newlines and tabs become spaces, then ``strip()``.
2. Only when the 10 human answers of a question are NOT all identical (quirk kept), all of them and the
   prediction are normalised: ``process_punctuation`` then ``process_digit_article`` (lower case,
   number words → digits, articles dropped, contractions restored). When the 10 answers agree, the
   prediction must match them character for character ("Yes" scores 0 against 10 × "yes").
3. Accuracy of one question = the mean, over the 10 leave-one-out subsets of 9 human answers, of
   ``min(#answers in the subset equal to the prediction / 3, 1)``. (The script leaves out an answer
   by comparing answer dicts, which carry a unique ``answer_id``; here that is leave-one-out by index.)
4. Reported in percent: ``overall`` = mean over questions; ``perAnswerType`` / ``perQuestionType`` =
   mean over the questions of each type. The script rounds to 2 decimals; this module does not.

Other quirks of the script kept on purpose: the period regular expression ``(?!<=\\d)(\\.)(?!\\d)``
is a negative *look-ahead* for "<=digit" (not the look-behind it meant), and ``re.sub`` receives
``re.UNICODE`` (= 32) as its *count*, so at most 32 periods are removed; a punctuation mark that
has a space beside it somewhere in the answer is deleted rather than replaced by a space, and an
answer containing a digit-comma-digit ("1,000") has *every* punctuation mark deleted.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any, Iterable, Mapping, Sequence

CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've", "couldnt": "couldn't",
    "couldn'tve": "couldn't've", "couldnt've": "couldn't've", "didnt": "didn't", "doesnt": "doesn't",
    "dont": "don't", "hadnt": "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't",
    "havent": "haven't", "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's",
    "howd": "how'd", "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've", "itll": "it'll",
    "let's": "let's", "maam": "ma'am", "mightnt": "mightn't", "mightnt've": "mightn't've",
    "mightn'tve": "mightn't've", "mightve": "might've", "mustnt": "mustn't", "mustve": "must've",
    "neednt": "needn't", "notve": "not've", "oclock": "o'clock", "oughtnt": "oughtn't",
    "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", "shant": "shan't",
    "shed've": "she'd've", "she'dve": "she'd've", "she's": "she's", "shouldve": "should've",
    "shouldnt": "shouldn't", "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've",
    "somebody'd": "somebodyd", "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've", "therere": "there're",
    "theres": "there's", "theyd": "they'd", "theyd've": "they'd've", "they'dve": "they'd've",
    "theyll": "they'll", "theyre": "they're", "theyve": "they've", "twas": "'twas", "wasnt": "wasn't",
    "wed've": "we'd've", "we'dve": "we'd've", "weve": "we've", "werent": "weren't", "whatll": "what'll",
    "whatre": "what're", "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've", "who'dve": "who'd've",
    "wholl": "who'll", "whos": "who's", "whove": "who've", "whyll": "why'll", "whyre": "why're",
    "whys": "why's", "wont": "won't", "wouldve": "would've", "wouldnt": "wouldn't",
    "wouldnt've": "wouldn't've", "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll",
    "y'allll": "y'all'll", "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll", "youre": "you're",
    "youve": "you've",
}  # fmt: skip
# The script's "manualMap": number words up to ten become digits ("none" counts as zero).
NUMBER_WORDS: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}  # fmt: skip
ARTICLES: tuple[str, ...] = ("a", "an", "the")
PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!",
)  # fmt: skip
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")  # sic: see the module docstring
COMMA_STRIP = re.compile(r"(\d)(,)(\d)")
_SCRIPT_PERIOD_COUNT = int(re.UNICODE)  # the script passes re.UNICODE where re.sub expects count

ANSWERS_PER_QUESTION = 10


class QuestionIdMismatch(ValueError):
    """The predictions do not cover exactly the annotated questions (the official loadRes check)."""

    def __init__(self, missing: Sequence[int], extra: Sequence[int]):
        self.missing = sorted(missing)
        self.extra = sorted(extra)
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} annotated question ids have no prediction (e.g. {self.missing[:5]})")
        if self.extra:
            parts.append(f"{len(self.extra)} predicted question ids are not in the annotations (e.g. {self.extra[:5]})")
        super().__init__("; ".join(parts) + "; expected exactly one prediction per annotated question")


def process_punctuation(text: str) -> str:
    """The script's ``processPunctuation``: drops or spaces out punctuation, strips periods."""
    output = text
    for mark in PUNCTUATION:
        if (mark + " " in text or " " + mark in text) or COMMA_STRIP.search(text) is not None:
            output = output.replace(mark, "")
        else:
            output = output.replace(mark, " ")
    return PERIOD_STRIP.sub("", output, count=_SCRIPT_PERIOD_COUNT)


def process_digit_article(text: str) -> str:
    """The script's ``processDigitArticle``: lower case, number words → digits, no articles, contractions."""
    words = []
    for word in text.lower().split():
        word = NUMBER_WORDS.get(word, word)
        if word not in ARTICLES:
            words.append(word)
    return " ".join(CONTRACTIONS.get(word, word) for word in words)


def _clean(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def normalize_answer(text: str) -> str:
    """Full normalisation (whitespace, punctuation, digits, articles): the form used for vocabularies."""
    return process_digit_article(process_punctuation(_clean(text)))


def question_accuracy(answer: str, human_answers: Sequence[str]) -> float:
    """Official accuracy in [0, 1] of ``answer`` for one question with its (10) human answers."""
    if not human_answers:
        raise ValueError("question_accuracy needs at least one human answer, received none")
    humans = [_clean(a) for a in human_answers]
    prediction = _clean(answer)
    if len(set(humans)) > 1:  # quirk: normalise only when the humans disagree in form or content
        humans = [process_digit_article(process_punctuation(a)) for a in humans]
        prediction = process_digit_article(process_punctuation(prediction))
    matches = sum(1 for a in humans if a == prediction)
    total = 0.0
    for human in humans:  # leave this one out: the others hold `matches` minus one if it matched
        others_matching = matches - (1 if human == prediction else 0)
        total += min(1.0, others_matching / 3.0)
    return total / len(humans)


def soft_scores(human_answers: Sequence[str]) -> dict[str, float]:
    """{normalised answer: official accuracy of answering it} for every distinct human answer.

    Used as soft training targets. The answers are always fully normalised here (so "2", "two" and
    "Two." pool into "2"), which is what the metric does whenever the humans disagree.
    """
    normalised = [normalize_answer(a) for a in human_answers]
    counts: dict[str, int] = defaultdict(int)
    for answer in normalised:
        counts[answer] += 1
    size = len(normalised)
    scores = {}
    for answer, count in counts.items():
        # `count` subsets drop a matching answer (count-1 remain), the other size-count keep all.
        scores[answer] = (count * min(1.0, (count - 1) / 3.0) + (size - count) * min(1.0, count / 3.0)) / size
    return scores


def check_question_ids(predicted_ids: Iterable[int], annotated_ids: Iterable[int]) -> None:
    """Raises QuestionIdMismatch unless both id sets are equal (the script asserts the same)."""
    predicted, annotated = set(predicted_ids), set(annotated_ids)
    if predicted != annotated:
        raise QuestionIdMismatch(missing=list(annotated - predicted), extra=list(predicted - annotated))


def vqa_accuracy(predictions: Mapping[int, str], annotations: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """The script's accuracy dict, in percent and unrounded.

    predictions: {question_id: answer}. annotations: {question_id: {"answers": [10 strings],
    "answer_type": str, "question_type": str}}. The id sets must be equal.
    Returns {"overall": float, "perAnswerType": {type: float}, "perQuestionType": {type: float}}.
    """
    check_question_ids(predictions, annotations)
    if not annotations:
        raise ValueError("vqa_accuracy needs at least one annotated question, received none")
    total = 0.0
    by_answer_type: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    by_question_type: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for question_id, annotation in annotations.items():
        accuracy = question_accuracy(predictions[question_id], annotation["answers"])
        total += accuracy
        keys = ((by_answer_type, annotation["answer_type"]), (by_question_type, annotation["question_type"]))
        for table, key in keys:
            table[key][0] += accuracy
            table[key][1] += 1
    return {
        "overall": 100.0 * total / len(annotations),
        "perAnswerType": {k: 100.0 * s / n for k, (s, n) in sorted(by_answer_type.items())},
        "perQuestionType": {k: 100.0 * s / n for k, (s, n) in sorted(by_question_type.items())},
    }
