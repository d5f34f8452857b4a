"""Scores of decoded translations: cased BLEU (the headline), lower-cased BLEU and chrF beside it.

Cased BLEU compares the output as people read it (sacrebleu defaults: 13a tokenisation, case-sensitive,
all references of a source sentence); lower-cased BLEU (``case:lc``) is the number comparable with
runs that lower-cased their output. Signatures are recorded with the numbers.

``translate_all`` runs the decoding functions (the export's endpoints, traced with common.decoding.traced) the
same way under every Keras backend: under JAX the preprocessor's string ops run eagerly in TensorFlow around the
keras.ops decoder.
"""

from __future__ import annotations

from typing import Any, Sequence

import tensorflow as tf

from common import progress
from common.metrics import bleu
from tasks.translation.pipeline import exact_match


def translate_all(translate, sentences: Sequence[str], batch_size: int, stage: str = "Decoding") -> list[str]:
    """Calls an endpoint function on ``sentences`` in batches; returns the translations."""
    translations = []
    starts = range(0, len(sentences), batch_size)
    for start in progress.track(starts, len(starts), f"{stage}: {len(sentences):,} sentences", unit="batches"):
        outputs = translate(tf.constant(list(sentences[start : start + batch_size])))
        translations += [t.decode("utf-8") for t in outputs["translation"].numpy()]
    return translations


def scores(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, Any]:
    """{"bleu_cased", "bleu_lowercased", "chrf" (cased), "chrf_lowercased", "brevity_penalty" (cased),
    "exact_match", "signatures": {...}} of one decoder's output."""
    cased = bleu.corpus_scores(hypotheses, references, lowercase=False)
    lowercased = bleu.corpus_scores(hypotheses, references, lowercase=True)
    return {
        "bleu_cased": cased["bleu"],
        "bleu_lowercased": lowercased["bleu"],
        "chrf": cased["chrf"],
        "chrf_lowercased": lowercased["chrf"],
        "brevity_penalty": cased["brevity_penalty"],
        "exact_match": exact_match(hypotheses, references),
        "signatures": {"bleu_cased_signature": cased["bleu_signature"],
                       "bleu_lowercased_signature": lowercased["bleu_signature"],
                       "chrf_signature": cased["chrf_signature"]},
    }


def summary(result: dict[str, Any]) -> dict[str, float]:
    """The numbers of ``scores`` (signatures left out), e.g. for a baseline's column."""
    return {key: value for key, value in result.items() if key != "signatures"}


def with_suffix(result: dict[str, Any], suffix: str, keys=("bleu_cased", "bleu_lowercased", "chrf",
                                                              "exact_match")) -> dict[str, float]:
    """Some numbers of ``scores`` renamed KEY_SUFFIX (e.g. the greedy decoder's beside beam search's)."""
    return {f"{key}_{suffix}": result[key] for key in keys}
