"""The n-gram baseline: interpolated Kneser-Ney over the same token ids as the recurrent model.

Recursion (Chen & Goodman 1999, as nltk.lm.KneserNeyInterpolated computes it), for order N:

    p_0(w)        = 1 / V                                        V = ids that can be predicted
    p_k(w | g)    = max(c_k(g w) - D_k, 0) / c_k(g •) + D_k · t_k(g) / c_k(g •) · p_{k-1}(w | g[1:])

where c_N are raw counts of N-grams and, below the top order, c_k(g w) = N1+(• g w) is the number of
distinct tokens seen before ``g w`` (continuation counts); t_k(g) = the number of distinct w with
c_k(g w) > 0. A context never seen at order k passes p_{k-1} through unchanged. D_k is estimated per
order from the counts of counts, D = n1 / (n1 + 2 n2) (Ney et al. 1994), unless given. With D_1 = 0 the
unigram level is nltk's (continuation count / all bigram types): tests compare the two.

nltk's own model is not used at run time: it recounts continuations by scanning every n-gram for each
probability (minutes on a few thousand test tokens), gives probability 0 to a word never seen after
another one, and has no compact saved form. This one keeps its fitted state as raw n-gram counts
(``arrays`` / ``from_arrays``: npz beside the checkpoint); the derived tables are computed from them
deterministically, so a loaded model scores exactly like the fitted one.
"""

from __future__ import annotations

import collections
import math
from typing import Sequence

import numpy as np


class KneserNey:
    def __init__(self, order: int, vocabulary_size: int, counts: Sequence[dict[tuple[int, ...], int]],
                 discounts: Sequence[float] | None = None):
        if order < 1 or len(counts) != order:
            raise ValueError(f"order={order} needs {order} count tables (1-grams .. {order}-grams); got {len(counts)}")
        self.order = int(order)
        self.vocabulary_size = int(vocabulary_size)  # V of the uniform floor: the ids a model may predict
        self.raw = [dict(table) for table in counts]  # raw[k-1]: k-gram (tuple of ids) → count
        # Level k (1-based) uses raw counts at the top order, continuation counts below it.
        self.tables = [self._continuations(k) for k in range(1, self.order)] + [self.raw[-1]]
        self.totals, self.types = [], []
        for table in self.tables:
            totals: collections.Counter = collections.Counter()
            types: collections.Counter = collections.Counter()
            for gram, count in table.items():
                totals[gram[:-1]] += count
                types[gram[:-1]] += 1
            self.totals.append(dict(totals))
            self.types.append(dict(types))
        self.discounts = [float(d) for d in discounts] if discounts is not None else self.estimate_discounts()
        if len(self.discounts) != self.order or not all(0 <= d <= 1 for d in self.discounts):
            raise ValueError(f"discounts={self.discounts}: expected {self.order} values in [0, 1]")

    def _continuations(self, k: int) -> dict[tuple[int, ...], int]:
        """N1+(• g w) for every k-gram (g w): distinct tokens seen before it, from the (k+1)-gram counts."""
        counts: collections.Counter = collections.Counter()
        for gram in self.raw[k]:
            counts[gram[1:]] += 1
        return dict(counts)

    def estimate_discounts(self) -> list[float]:
        discounts = []
        for table in self.tables:
            n1 = sum(1 for count in table.values() if count == 1)
            n2 = sum(1 for count in table.values() if count == 2)
            discount = n1 / (n1 + 2 * n2) if n1 + 2 * n2 else 0.5
            discounts.append(min(max(discount, 0.05), 0.95))
        return discounts

    # --- fitting and the saved state ------------------------------------------------------------
    @classmethod
    def fit(cls, stream: Sequence[int], order: int, vocabulary_size: int,
            discounts: Sequence[float] | None = None) -> "KneserNey":
        """Counts every 1..order-gram of the token-id ``stream`` (one contiguous text)."""
        stream = [int(token) for token in stream]
        counts = [dict(collections.Counter(zip(*[stream[i:] for i in range(k)]))) for k in range(1, order + 1)]
        return cls(order, vocabulary_size, counts, discounts)

    def arrays(self) -> dict[str, np.ndarray]:
        """The fitted state as arrays (for np.savez): per order k, ids int32 [M, k] and counts int64 [M]."""
        arrays = {}
        for k, table in enumerate(self.raw, 1):
            arrays[f"grams_{k}"] = np.array(list(table), dtype=np.int32).reshape(len(table), k)
            arrays[f"counts_{k}"] = np.array(list(table.values()), dtype=np.int64)
        return arrays

    @classmethod
    def from_arrays(cls, arrays, order: int, vocabulary_size: int, discounts: Sequence[float]) -> "KneserNey":
        counts = [dict(zip(map(tuple, arrays[f"grams_{k}"].tolist()), arrays[f"counts_{k}"].tolist()))
                  for k in range(1, order + 1)]
        return cls(order, vocabulary_size, counts, discounts)

    # --- probabilities --------------------------------------------------------------------------
    def probability(self, word: int, context: Sequence[int]) -> float:
        """p(word | the last order-1 ids of context)."""
        context = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        probability = 1.0 / self.vocabulary_size
        for k in range(1, min(self.order, len(context) + 1) + 1):
            history = context[-(k - 1):] if k > 1 else ()
            total = self.totals[k - 1].get(history, 0)
            if not total:
                continue  # an unseen context: the lower order's estimate passes through
            discount = self.discounts[k - 1]
            count = self.tables[k - 1].get(history + (word,), 0)
            probability = (max(count - discount, 0.0) + discount * self.types[k - 1][history] * probability) / total
        return probability

    def log2_probabilities(self, stream: Sequence[int]) -> np.ndarray:
        """log2 p(stream[j] | stream[:j]) for j = 1 .. len(stream)-1 (the first id is context only)."""
        stream = [int(token) for token in stream]
        return np.array([math.log2(self.probability(stream[j], stream[max(0, j - self.order + 1):j]))
                         for j in range(1, len(stream))], dtype=np.float64)
