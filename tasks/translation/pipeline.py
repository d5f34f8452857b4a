"""Sentence pairs → token ids → tf.data for teacher-forced training.

Each target is framed as ``[START] words [END]``; the decoder reads it without its last token
("decoder_input") and learns to predict it without its first ("target"): at step t the input is
the gold token t-1 (teacher forcing). Padding id 0 is ignored by the loss and the accuracy.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import tensorflow as tf

from common import pipelines, text
from data.pairs import Pair


@dataclasses.dataclass
class EncodedSplit:
    """One split as token lists and padded id arrays."""

    pairs: list[Pair]
    source_tokens: list[list[str]]
    target_tokens: list[list[str]]
    source_ids: np.ndarray  # int32 [N, S], right-padded
    target_ids: np.ndarray  # int32 [N, T + 2]: START, words, END, padding


def tokenize_pairs(pairs: Sequence[Pair]) -> tuple[list[list[str]], list[list[str]]]:
    return text.tokenize([p.source for p in pairs]), text.tokenize([p.target for p in pairs])


def encode_split(
    pairs: list[Pair],
    source_vocabulary: Sequence[str],
    target_vocabulary: Sequence[str],
    source_length: int,
    target_length: int,
    reverse_source: bool,
    tokens: tuple[list[list[str]], list[list[str]]] | None = None,
) -> EncodedSplit:
    """source_length / target_length: word slots (the target array adds START and END)."""
    source_tokens, target_tokens = tokens if tokens is not None else tokenize_pairs(pairs)
    return EncodedSplit(
        pairs=pairs,
        source_tokens=source_tokens,
        target_tokens=target_tokens,
        source_ids=text.encode(source_tokens, source_vocabulary, source_length, reverse=reverse_source),
        target_ids=text.encode(target_tokens, target_vocabulary, target_length + 2, add_start=True, add_end=True),
    )


def to_dataset(split: EncodedSplit, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batched ({"source", "decoder_input"}, target) with shuffling before batching."""
    inputs = {"source": split.source_ids, "decoder_input": split.target_ids[:, :-1]}
    return pipelines.from_arrays(inputs, split.target_ids[:, 1:], batch_size=batch_size, shuffle=shuffle, seed=seed)


def unknown_rate(token_lists: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> float:
    known = set(vocabulary)
    total = sum(len(tokens) for tokens in token_lists)
    unknown = sum(1 for tokens in token_lists for token in tokens if token not in known)
    return unknown / total if total else 0.0


def group_references(pairs: Sequence[Pair]) -> tuple[list[str], list[list[str]]]:
    """Distinct sources (file order) and, for each, all its target sentences (the references)."""
    references: dict[str, list[str]] = {}
    for pair in pairs:
        references.setdefault(pair.source, []).append(pair.target)
    return list(references), list(references.values())
