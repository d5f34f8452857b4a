"""Does sampled text keep the synthetic corpus's rules? (only for the generator's corpus)

Bits per token average over every token; most of them (spelling, common words) are easy for an
n-gram model too. The rules of data.synthetic.corpus need memory: a bracket closes what was opened
many tokens before, a verb agrees with a subject a prepositional phrase and an aside ago. So the model
and the Kneser-Ney baseline each sample ``config.structure_samples`` lines from a fresh line start at
the config's temperature (seeded), and ``Language.check_line`` judges them: the share of sampled
lines that end within the budget (the longest test line) and keep the bracket / agreement rules.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from data.synthetic.corpus import Language
from tasks.language_model.callbacks import sampler
from tasks.language_model.pipeline import BREAK_ID, PAD_ID, tokenize


def judge(model, preprocessor, config, test_lines: Sequence[str]) -> dict[str, dict[str, float]]:
    """{"model": rates, "ngram": rates}; rates = sampled_lines_{finished, brackets_ok, agreement_ok}."""
    budget = max(len(tokens) for tokens in tokenize(list(test_lines), config.level)) + 1
    count = config.structure_samples
    generate = sampler(model, preprocessor, config.top_k)
    texts = generate(tf.constant([""] * count), tf.constant(budget), tf.constant(config.temperature),
                     tf.constant(config.seed)).numpy()
    model_lines = [text.decode("utf-8", "replace") for text in texts]
    rng = np.random.default_rng(config.seed)
    ngram_lines = [_ngram_line(preprocessor, rng, budget, config.temperature) for _ in range(count)]
    language = Language(config.seed)  # the corpus was written by Language(config.seed) (data.synthetic.corpus)
    return {"model": _rates(language, model_lines), "ngram": _rates(language, ngram_lines)}


def _ngram_line(preprocessor, rng: np.random.Generator, budget: int, temperature: float) -> str:
    """One line sampled from the baseline, as text ("\\n" at its end when it finished within the budget)."""
    ngram, vocabulary = preprocessor.ngram, preprocessor.vocabulary
    ids = [i for i in range(len(vocabulary)) if i != PAD_ID]
    context, line = [BREAK_ID], []
    for _ in range(budget):
        p = np.array([ngram.probability(i, context) for i in ids])
        if temperature > 0:
            p = p ** (1.0 / temperature)
            token = ids[int(rng.choice(len(ids), p=p / p.sum()))]
        else:
            token = ids[int(np.argmax(p))]
        context = (context + [token])[-ngram.order:]
        if token == BREAK_ID:
            return _join(line, preprocessor.level) + "\n"
        line.append(vocabulary[token])
    return _join(line, preprocessor.level)


def _join(tokens: list[str], level: str) -> str:
    return "".join(tokens) if level == "char" else " ".join(tokens)


def _rates(language: Language, texts: Sequence[str]) -> dict[str, float]:
    finished = [text.split("\n")[0] for text in texts if "\n" in text]
    checks = [language.check_line(line) for line in finished]
    share = lambda rule: sum(check[rule] for check in checks) / max(len(texts), 1)  # noqa: E731
    return {"sampled_lines_finished": len(finished) / max(len(texts), 1),
            "sampled_lines_brackets_ok": share("brackets"), "sampled_lines_agreement_ok": share("agreement")}
