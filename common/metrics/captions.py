"""Caption metrics with the official COCO protocol (pycocoevalcap 1.2), and an explicit approximate fallback.

Official protocol (what published COCO / Flickr numbers use, via coco-caption):
  * every reference and prediction goes through the Stanford PTB tokenizer (Java; lowercases and
    drops punctuation),
  * BLEU-1..4: corpus BLEU whose brevity penalty uses the reference length closest to each
    hypothesis ("closest"), with coco-caption's tiny smoothing constants,
  * METEOR 1.5 (Java jar, ``-l en -norm``), ROUGE-L (β = 1.2), CIDEr-D (the ``Cider`` class of
    pycocoevalcap: σ = 6 length penalty, clipped counts, ×10, IDF from the evaluated references).
Keys are the official names: ``Bleu_1`` .. ``Bleu_4``, ``METEOR``, ``ROUGE_L``, ``CIDEr``.

Approximate protocol (``protocol="approximate"``, for machines without Java): a Python
tokenizer mimicking the PTB one on plain English, BLEU from ``nltk.translate.bleu_score.corpus_bleu``
(also closest reference length, no smoothing), ROUGE-L and CIDEr-D from pycocoevalcap's pure-Python
scorers, and no METEOR. Its numbers are labelled as not comparable with published results; a test
measures how far they are from the official ones.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import warnings
from typing import Any, Hashable, Mapping

from common import progress
from common.errors import TaskError  # run.py prints it as one error line

OFFICIAL_KEYS: tuple[str, ...] = ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr")
PROTOCOLS: tuple[str, ...] = ("official", "approximate")

# The punctuation coco-caption removes after PTB tokenisation (pycocoevalcap/tokenizer/ptbtokenizer.py).
_PTB_PUNCTUATION = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
                    "...", ";"}
# PTB-like: "don't" → "do n't", "man's" → "man 's", punctuation split off (and then dropped).
_TOKEN = re.compile(r"[a-z0-9]+?(?=n't\b)|n't\b|'[a-z]+|[a-z0-9]+|[^\sa-z0-9]")


class CaptionMetricsError(TaskError):
    """The official scorer cannot run (no Java) or the inputs cannot be scored."""


def java_available() -> bool:
    return shutil.which("java") is not None


def simple_tokenize(caption: str) -> str:
    """Lowercase, split words from punctuation, drop the punctuation coco-caption drops."""
    text = caption.lower().replace("\n", " ")
    tokens = [t for t in _TOKEN.findall(text) if t not in _PTB_PUNCTUATION and not re.fullmatch(r"[^\w]", t)]
    return " ".join(tokens)


def _check_inputs(references: Mapping[Hashable, list[str]], predictions: Mapping[Hashable, str]) -> None:
    if not predictions:
        raise CaptionMetricsError("no predictions to score")
    missing = [key for key in predictions if key not in references]
    if missing:
        raise CaptionMetricsError(f"{len(missing)} predicted image ids have no references, e.g. {missing[:5]}")
    empty = [key for key in predictions if not references[key]]
    if empty:
        raise CaptionMetricsError(f"{len(empty)} images have an empty reference list, e.g. {empty[:5]}")


def score_captions(
    references: Mapping[Hashable, list[str]],
    predictions: Mapping[Hashable, str],
    protocol: str = "official",
    meteor: bool = True,
) -> dict[str, Any]:
    """Corpus caption metrics of ``predictions`` (id → one caption) against ``references`` (id → captions).

    Only the predicted ids are scored (as coco-caption does with ``params['image_id']``). Returns the
    official keys as floats in [0, 1] (CIDEr in [0, 10]) plus ``protocol`` and ``images``.
    """
    return score_caption_sets(references, {"scores": predictions}, protocol, meteor)["scores"]


_METEOR = None  # one METEOR 1.5 Java process per Python process: it takes 10-30 s to start


def _meteor():
    global _METEOR
    if _METEOR is None:
        from pycocoevalcap.meteor.meteor import Meteor

        with progress.stage("starting METEOR 1.5 (Java)"):
            _METEOR = Meteor()
    return _METEOR


def score_caption_sets(
    references: Mapping[Hashable, list[str]],
    prediction_sets: Mapping[str, Mapping[Hashable, str]],
    protocol: str = "official",
    meteor: bool = True,
) -> dict[str, dict[str, Any]]:
    """``score_captions`` for several prediction sets (a model and its baselines) with one tokenizer
    run and one METEOR process. Returns {set name: scores}."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol={protocol!r}; expected one of {list(PROTOCOLS)}")
    require_java(protocol)
    for predictions in prediction_sets.values():
        _check_inputs(references, predictions)
    return _score_sets(references, prediction_sets, protocol, meteor)


def require_java(protocol: str) -> None:
    """Fails (a TaskError) when the official protocol is asked for and no Java runtime is on PATH;
    the captioning task calls it before training, so a run never trains and then cannot score."""
    if protocol == "official" and not java_available():
        raise CaptionMetricsError(
            "The official COCO caption metrics need a Java runtime (PTB tokenizer, METEOR 1.5), and "
            "'java' is not on PATH. Install one (e.g. `apt-get install default-jre-headless`), or pass "
            "--set metrics=approximate for nltk BLEU without METEOR (numbers not comparable with papers)."
        )


def _score_sets(references: Mapping[Hashable, list[str]], prediction_sets: Mapping[str, Mapping[Hashable, str]],
                protocol: str, meteor: bool) -> dict[str, dict[str, Any]]:
    # Every set is tokenised in one batch: keys (set index, image index), in a fixed order.
    gts_raw, res_raw = {}, {}
    for set_index, predictions in enumerate(prediction_sets.values()):
        for index, key in enumerate(predictions):
            gts_raw[(set_index, index)] = [{"caption": c} for c in references[key]]
            res_raw[(set_index, index)] = [{"caption": predictions[key]}]
    if protocol == "official":
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

        captions = sum(len(v) for v in gts_raw.values()) + len(res_raw)
        with progress.stage(f"PTB tokenizer (Java): {captions:,} captions"), contextlib.redirect_stdout(io.StringIO()):
            tokenizer = PTBTokenizer()
            # One Java call for references and predictions together (the tokenizer keys by id).
            # Empty predictions stay out of it: an empty last line would shift the tokenizer's output.
            merged = {("gts", k): v for k, v in gts_raw.items()}
            merged |= {("res", k): v for k, v in res_raw.items() if v[0]["caption"].strip()}
            tokenized = tokenizer.tokenize(merged)
        gts_all = {k: tokenized[("gts", k)] for k in gts_raw}
        res_all = {k: tokenized.get(("res", k), [""]) for k in res_raw}
    else:
        gts_all = {k: [simple_tokenize(c["caption"]) for c in v] for k, v in gts_raw.items()}
        res_all = {k: [simple_tokenize(c["caption"]) for c in v] for k, v in res_raw.items()}
    results: dict[str, dict[str, Any]] = {}
    # One step per prediction set (a model, its greedy decoding, a baseline): BLEU, METEOR, ROUGE-L, CIDEr.
    named_sets = progress.track(enumerate(prediction_sets.items()), len(prediction_sets),
                                "caption metrics (BLEU, " + ("METEOR, " if protocol == "official" and meteor else "")
                                + "ROUGE-L, CIDEr)", unit="prediction sets")
    for set_index, (name, predictions) in named_sets:
        gts = {index: gts_all[(set_index, index)] for index in range(len(predictions))}
        res = {index: res_all[(set_index, index)] for index in range(len(predictions))}
        scores: dict[str, Any] = {}
        with contextlib.redirect_stdout(io.StringIO()):  # the scorers print progress lines
            if protocol == "official":
                from pycocoevalcap.bleu.bleu import Bleu

                bleu, _ = Bleu(4).compute_score(gts, res)
                scores.update({f"Bleu_{n + 1}": float(bleu[n]) for n in range(4)})
                if meteor:
                    # METEOR's protocol takes one line per image; a stray "|||" or newline would break it.
                    scores["METEOR"] = float(_meteor().compute_score(gts, res)[0])
            else:
                scores.update(nltk_corpus_bleu(gts, res))
            from pycocoevalcap.cider.cider import Cider
            from pycocoevalcap.rouge.rouge import Rouge

            scores["ROUGE_L"] = float(Rouge().compute_score(gts, res)[0])
            scores["CIDEr"] = float(Cider().compute_score(gts, res)[0])
        ordered = {key: scores[key] for key in OFFICIAL_KEYS if key in scores}
        ordered["images"] = len(predictions)
        ordered["protocol"] = (
            "official coco-caption (pycocoevalcap 1.2: PTB tokenizer, closest-ref BLEU, "
            + ("METEOR 1.5, " if meteor else "METEOR skipped, ")
            + "CIDEr-D)"
            if protocol == "official"
            else "APPROXIMATE (python tokenizer, nltk corpus_bleu, no METEOR): not comparable with published numbers"
        )
        results[name] = ordered
    return results


def nltk_corpus_bleu(gts: Mapping[int, list[str]], res: Mapping[int, list[str]]) -> dict[str, float]:
    """BLEU-1..4 from nltk's corpus_bleu on already tokenised captions (space-joined)."""
    from nltk.translate.bleu_score import corpus_bleu

    keys = list(res)
    references = [[reference.split() for reference in gts[key]] for key in keys]
    hypotheses = [res[key][0].split() for key in keys]
    weights = [(1.0,), (0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.25, 0.25, 0.25, 0.25)]
    with warnings.catch_warnings():  # nltk warns on zero n-gram overlaps; the score (0) is what we report
        warnings.simplefilter("ignore")
        values = corpus_bleu(references, hypotheses, weights=weights)
    return {f"Bleu_{n + 1}": float(value) for n, value in enumerate(values)}


# --- a parsed results file ---------------------------------------------------------------------------


def score_results(
    references: Mapping[Hashable, list[str]],
    results: Mapping[Hashable, str],
    protocol: str = "official",
    meteor: bool = True,
) -> dict[str, Any]:
    """Scores a parsed COCO results file (id → caption) against parsed annotations (id → captions).

    Only the predicted ids are scored; ``images_without_prediction`` counts the annotated images
    that have none (the ``score`` action reads both files with data.coco_captions.read_scoring_files and
    refuses missing images unless --allow-missing).
    """
    scores = score_captions(references, results, protocol=protocol, meteor=meteor)
    if len(results) < len(references):
        scores["images_without_prediction"] = len(references) - len(results)
    return scores
