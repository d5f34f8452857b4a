"""``run.py vqa score``: a results file in the official format scored with the official VQA accuracy.

    python run.py vqa score --questions Q.json --annotations A.json --predictions RESULTS.json [--allow-missing]

Reading and checking the three files is data/vqa.py's; the accuracy is common/metrics/vqa.py's. Here: what a
results file must answer (every annotated question, or with --allow-missing at least one) and the errors that
say what it got.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.errors import TaskError
from common.metrics import vqa as vqa_metric
from data import vqa as vqa_reader


def score_files(questions_path: Path, annotations_path: Path, predictions_path: Path,
                allow_missing: bool = False) -> dict[str, Any]:
    """{"overall", "perAnswerType", "perQuestionType"} in %, plus "questions_without_prediction" for partial
    results scored with ``allow_missing`` on the questions they answer."""
    predictions, annotations = vqa_reader.read_scoring_files(questions_path, annotations_path, predictions_path)
    if not set(predictions) & set(annotations):  # zero questions scored is no score, with --allow-missing too
        example = f" (question ids e.g. {sorted(predictions)[:5]})" if predictions else ""
        raise TaskError(f"--predictions {predictions_path}: no prediction matches any question: read "
                        f"{len(predictions)} predictions{example} and {len(annotations)} annotated questions "
                        f"(--annotations {annotations_path}); expected predictions whose question_id is one of "
                        f"the annotated questions")
    missing = sorted(set(annotations) - set(predictions))
    partial = bool(missing) and allow_missing
    if partial:
        # Partial results scored on what they answer, as the official script would if given the subset.
        annotations = {q: a for q, a in annotations.items() if q in predictions}
    try:
        scores = vqa_metric.vqa_accuracy(predictions, annotations)
    except vqa_metric.QuestionIdMismatch as error:
        hint = " (or pass --allow-missing to score partial results)" if error.missing else ""
        raise TaskError(f"--predictions {predictions_path}: {error}{hint}") from None
    return {**scores, "questions_without_prediction": len(missing)} if partial else scores
