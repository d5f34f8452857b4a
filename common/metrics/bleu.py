"""Corpus BLEU and chrF with sacrebleu (the standard, reproducible implementation), with signatures.

Hypotheses and references are detokenised text. BLEU uses sacrebleu's defaults (13a tokenisation,
exponential smoothing, corpus-level n-gram statistics summed over all sentences, then one
brevity penalty); ``lowercase=True`` compares case-insensitively and shows as ``case:lc`` in the
signature, which must be reported with the number. Several references per sentence are allowed
(a list of lists; a shorter list is padded with None, which sacrebleu skips).
"""

from __future__ import annotations

from typing import Sequence

import sacrebleu


def _reference_streams(references: Sequence[Sequence[str]], count: int) -> list[list[str | None]]:
    if len(references) != count:
        raise ValueError(
            f"Got {count} hypotheses but {len(references)} reference lists; expected one list per hypothesis"
        )
    width = max((len(r) for r in references), default=0)
    if width == 0 or any(len(r) == 0 for r in references):
        raise ValueError("Every hypothesis needs at least one reference")
    return [[r[i] if i < len(r) else None for r in references] for i in range(width)]


def corpus_scores(
    hypotheses: Sequence[str], references: Sequence[Sequence[str]], lowercase: bool = False
) -> dict[str, object]:
    """{"bleu": 0..100, "chrf": 0..100, "bleu_signature": str, "chrf_signature": str, "bleu_precisions": [...]}.

    references[i] is the list of reference strings of hypotheses[i].
    """
    hypotheses = list(hypotheses)
    if not hypotheses:
        raise ValueError("No hypotheses to score; expected at least one sentence")
    streams = _reference_streams(references, len(hypotheses))
    bleu = sacrebleu.metrics.BLEU(lowercase=lowercase)
    chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
    bleu_score = bleu.corpus_score(hypotheses, streams)
    chrf_score = chrf.corpus_score(hypotheses, streams)
    return {
        "bleu": float(bleu_score.score),
        "chrf": float(chrf_score.score),
        "bleu_precisions": [float(p) for p in bleu_score.precisions],
        "brevity_penalty": float(bleu_score.bp),
        "bleu_signature": str(bleu.get_signature()),
        "chrf_signature": str(chrf.get_signature()),
    }
