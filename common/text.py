"""Tokenisation and vocabularies shared by the text tasks (translation; captioning and VQA later).

One standardisation function, written with TensorFlow string ops, is used both when the training
data is prepared (on Python lists, through ``tokenize``) and inside exported SavedModels (on string
tensors), so the words a user's input is cut into are exactly the ones the model was trained on.

Standardisation: lower-case (Unicode-aware), typographic spaces and apostrophes made plain, the
punctuation marks in ``PUNCTUATION`` cut off as tokens of their own, whitespace collapsed.
Apostrophes and hyphens stay inside words ("l'aide", "peut-être", "don't").

Vocabulary layout (ids): 0 = padding "", 1 = unknown "[UNK]", 2 = "[START]", 3 = "[END]", then the
words of the training split by decreasing count (ties alphabetical), so ids are deterministic.
"""

from __future__ import annotations

import collections
import re
from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

PAD_TOKEN = ""
UNKNOWN_TOKEN = "[UNK]"
START_TOKEN = "[START]"
END_TOKEN = "[END]"
PAD_ID, UNKNOWN_ID, START_ID, END_ID = 0, 1, 2, 3
RESERVED = (PAD_TOKEN, UNKNOWN_TOKEN, START_TOKEN, END_TOKEN)

# Cut off as separate tokens. Written as an RE2 character class.
PUNCTUATION = r"[.,!?;:«»\"“”()¿¡…$&%/]"
_TYPOGRAPHIC_SPACES = "[\u00a0\u2009\u202f\u2007\u200b]"
_TYPOGRAPHIC_APOSTROPHES = "[’‘`´]"


def standardize(text: tf.Tensor) -> tf.Tensor:
    """String tensor (any shape) → standardised string tensor of the same shape (TF ops only)."""
    text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, _TYPOGRAPHIC_SPACES, " ")
    text = tf.strings.regex_replace(text, _TYPOGRAPHIC_APOSTROPHES, "'")
    text = tf.strings.regex_replace(text, f"({PUNCTUATION})", r" \1 ")
    text = tf.strings.regex_replace(text, r"\s+", " ")
    return tf.strings.strip(text)


def tokenize(texts: Sequence[str]) -> list[list[str]]:
    """Python strings → lists of tokens, through the same TF ops that the exported model uses."""
    if not texts:
        return []
    words = tf.strings.split(standardize(tf.constant(list(texts), tf.string)))
    return [[token.decode("utf-8") for token in row] for row in words.to_list()]


def fit_vocabulary(token_lists: Iterable[Sequence[str]], max_size: int = 0, min_count: int = 1) -> list[str]:
    """Words of the (training) token lists, most frequent first; without the reserved tokens.

    max_size: total vocabulary size including the 4 reserved ids (0 = no limit).
    min_count: words seen fewer times become unknown.
    """
    counts = collections.Counter(token for tokens in token_lists for token in tokens)
    for token in RESERVED:
        counts.pop(token, None)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_size:
        if max_size <= len(RESERVED):
            raise ValueError(f"max_size={max_size}: expected more than the {len(RESERVED)} reserved ids (or 0)")
        words = words[: max_size - len(RESERVED)]
    return words


def full_vocabulary(words: Sequence[str]) -> list[str]:
    """The id → token list: reserved tokens then ``words``."""
    return [*RESERVED, *words]


def encode(
    token_lists: Sequence[Sequence[str]],
    vocabulary: Sequence[str],
    max_length: int,
    add_start: bool = False,
    add_end: bool = False,
    reverse: bool = False,
) -> np.ndarray:
    """Token lists → int32 [N, max_length] ids, right-padded with 0; too long lists are cut.

    reverse: reverse the words (not the start/end markers) before padding (Sutskever et al. 2014).
    """
    index = {token: i for i, token in enumerate(vocabulary)}
    rows = np.zeros((len(token_lists), max_length), dtype=np.int32)
    room = max_length - int(add_start) - int(add_end)
    if room < 0:
        raise ValueError(f"max_length={max_length} leaves no room for the start/end markers")
    for row, tokens in enumerate(token_lists):
        ids = [index.get(token, UNKNOWN_ID) for token in tokens[:room]]
        if reverse:
            ids.reverse()
        ids = ([START_ID] if add_start else []) + ids + ([END_ID] if add_end else [])
        rows[row, : len(ids)] = ids
    return rows


def decode(ids: Sequence[int], vocabulary: Sequence[str]) -> list[str]:
    """Ids → tokens, stopping at the end marker or padding; unknown ids map to [UNK]."""
    tokens = []
    for token_id in ids:
        token_id = int(token_id)
        if token_id in (PAD_ID, END_ID):
            break
        if token_id == START_ID:
            continue
        tokens.append(vocabulary[token_id] if 0 <= token_id < len(vocabulary) else UNKNOWN_TOKEN)
    return tokens


_NO_SPACE_BEFORE = r" ([.,!?;:…»)%])"
_NO_SPACE_AFTER = r"([«(¿¡$]) "


def detokenize_python(tokens: Sequence[str]) -> str:
    """Tokens → readable text, same rule as ``join_tokens`` (tokens glued to the punctuation)."""
    text = " ".join(tokens)
    text = re.sub(_NO_SPACE_BEFORE, r"\1", text)
    return re.sub(_NO_SPACE_AFTER, r"\1", text)


def join_tokens(tokens: tf.Tensor | tf.RaggedTensor) -> tf.Tensor:
    """[B, None] token strings (ragged) → [B] readable strings (TF ops; used in SavedModels)."""
    text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    text = tf.strings.regex_replace(text, _NO_SPACE_BEFORE, r"\1")
    return tf.strings.regex_replace(text, _NO_SPACE_AFTER, r"\1")
