"""Tokenisation and vocabularies shared by the text tasks (translation; captioning and VQA later).

Everything is TensorFlow ops, so one path serves the tf.data pipeline and the exported SavedModel:
``encode`` (raw strings → padded ids through a ``lookup_layer``) and ``decode`` (ids → readable
strings through an inverted one). ``tokenize`` runs the same standardisation on Python lists, for
fitting vocabularies and for word-level statistics.

Standardisation: lower-case (Unicode-aware), typographic spaces and apostrophes made plain, the
punctuation marks in ``PUNCTUATION`` cut off as tokens of their own, whitespace collapsed.
Apostrophes and hyphens stay inside words ("l'aide", "peut-être", "don't"). Options (off by default,
which is what every task but translation uses): ``lowercase=False`` keeps case; ``attach=True`` makes
the tokenisation reversible for spacing: a punctuation token that was written against the token before
it gets the ``ATTACH`` marker in front ("Go!" → "Go @@!"; "Va !" → "Va !"), one written against the
word after it gets the marker behind ("(oui)" → "(@@ oui @@)"; "3.5" → "3 @@.@@ 5"). ``join_tokens(...,
attach=True)`` undoes it, so a model trained on such tokens writes the spacing of its training data
(French "Tais-toi !" and "« oui »", English "Shut up!") without per-language rules; the markers are
learned like any other token (the subword units of Sennrich et al. 2016 mark joins the same way).

Vocabulary layout (ids): 0 = padding "", 1 = unknown "[UNK]", 2 = "[START]", 3 = "[END]", then the
words of the training split by decreasing count (ties alphabetical), so ids are deterministic.
"""

from __future__ import annotations

import collections
from typing import Iterable, Sequence

import tensorflow as tf

from common.token_ids import END_ID, PAD_ID, START_ID, UNKNOWN_ID  # noqa: F401  (part of this module's API)

PAD_TOKEN = ""
UNKNOWN_TOKEN = "[UNK]"
START_TOKEN = "[START]"
END_TOKEN = "[END]"
RESERVED = (PAD_TOKEN, UNKNOWN_TOKEN, START_TOKEN, END_TOKEN)

# Cut off as separate tokens. Written as an RE2 character class.
PUNCTUATION = r"[.,!?;:«»\"“”()¿¡…$&%/]"
_TYPOGRAPHIC_SPACES = "[\u00a0\u2009\u202f\u2007\u200b]"
_TYPOGRAPHIC_APOSTROPHES = "[’‘`´]"
# attach=True: the marker of a punctuation token written against its neighbour (no space between).
ATTACH = "@@"
_BOUNDARY = "\x1f"  # a piece boundary inside a whitespace-delimited chunk, while marking (never in output)
_NOT_PUNCTUATION = r"[^.,!?;:«»\"“”()¿¡…$&%/\s\x1f]"


def standardize(text: tf.Tensor, lowercase: bool = True, attach: bool = False,
                split_punctuation: bool = True) -> tf.Tensor:
    """String tensor (any shape) → standardised string tensor of the same shape (TF ops only).

    lowercase: lower-case (the default; False keeps case). attach: mark punctuation written against a
    neighbour with ``ATTACH`` (see the module docstring), so that ``join_tokens(..., attach=True)``
    restores the original spacing. split_punctuation=False: leave punctuation where it was written (only
    case, typographic spaces and apostrophes, and runs of whitespace are standardised), for subword
    tokenisers that learn punctuation and spacing themselves (common.subwords); ``attach`` must then be off.
    """
    if attach and not split_punctuation:
        raise ValueError("attach=True marks split punctuation; it needs split_punctuation=True")
    if lowercase:
        text = tf.strings.lower(text, encoding="utf-8")
    text = tf.strings.regex_replace(text, _TYPOGRAPHIC_SPACES, " ")
    text = tf.strings.regex_replace(text, _TYPOGRAPHIC_APOSTROPHES, "'")
    if attach:
        # Markers in the input would be read back as joins: drop them (and the boundary character).
        text = tf.strings.regex_replace(text, f"{ATTACH}|{_BOUNDARY}", "")
        text = tf.strings.strip(tf.strings.regex_replace(text, r"\s+", " "))
        # Every punctuation mark becomes a piece; boundaries at a chunk's edges are plain spaces, the
        # others joins: after a mark followed by a word the mark carries the marker behind, else the
        # next mark carries it in front (RE2 has no look-behind, hence the boundary character).
        text = tf.strings.regex_replace(text, f"({PUNCTUATION})", f"{_BOUNDARY}\\1{_BOUNDARY}")
        text = tf.strings.regex_replace(text, f"(^|\\s){_BOUNDARY}+", r"\1")
        text = tf.strings.regex_replace(text, f"{_BOUNDARY}+(\\s|$)", r"\1")
        text = tf.strings.regex_replace(text, f"({PUNCTUATION}){_BOUNDARY}+({_NOT_PUNCTUATION})",
                                        f"\\1{ATTACH} \\2")
        text = tf.strings.regex_replace(text, f"{_BOUNDARY}+", f" {ATTACH}")
    elif split_punctuation:
        text = tf.strings.regex_replace(text, f"({PUNCTUATION})", r" \1 ")
    text = tf.strings.regex_replace(text, r"\s+", " ")
    return tf.strings.strip(text)


def tokenize(texts: Sequence[str], lowercase: bool = True, attach: bool = False) -> list[list[str]]:
    """Python strings → lists of tokens, through the same TF ops that the exported model uses
    (options: ``standardize``)."""
    if not texts:
        return []
    words = tf.strings.split(standardize(tf.constant(list(texts), tf.string), lowercase, attach))
    return [[token.decode("utf-8") for token in row] for row in words.to_list()]


def fit_vocabulary(token_lists: Iterable[Sequence[str]], max_size: int | None = None, min_count: int = 1) -> list[str]:
    """Words of the (training) token lists, most frequent first; without the reserved tokens.

    max_size: total vocabulary size including the 4 reserved ids (None = no limit).
    min_count: words seen fewer times become unknown.
    """
    counts = collections.Counter(token for tokens in token_lists for token in tokens)
    for token in RESERVED:
        counts.pop(token, None)
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    if max_size is not None:
        if max_size <= len(RESERVED):
            raise ValueError(f"max_size={max_size}: expected more than the {len(RESERVED)} reserved ids (or None)")
        words = words[: max_size - len(RESERVED)]
    return words


def full_vocabulary(words: Sequence[str]) -> list[str]:
    """The id → token list: reserved tokens then ``words``."""
    return [*RESERVED, *words]


def lookup_layer(vocabulary: Sequence[str], invert: bool = False, name: str | None = None):
    """A built ``keras.layers.StringLookup`` with this module's ids for ``vocabulary`` (a
    ``full_vocabulary``): token → id, or id → token with ``invert``. Built by one call, so that an
    export can track it; the same vocabulary list always gives the same layer."""
    import keras

    if list(vocabulary[: len(RESERVED)]) != list(RESERVED):
        raise ValueError(f"vocabulary starts with {list(vocabulary[:len(RESERVED)])}; expected the reserved "
                         f"tokens {list(RESERVED)} first (use full_vocabulary)")
    # StringLookup puts the mask token at 0 and the unknown token at 1, then the list: [START], [END], words.
    layer = keras.layers.StringLookup(vocabulary=list(vocabulary[2:]), mask_token=PAD_TOKEN, oov_token=UNKNOWN_TOKEN,
                                      invert=invert, name=name)
    layer(tf.constant([[START_ID]], tf.int64) if invert else tf.constant([[START_TOKEN]]))
    return layer


def encode(
    texts: tf.Tensor,
    lookup,
    length: int,
    add_start: bool = False,
    add_end: bool = False,
    reverse: bool = False,
    empty_as_unknown: bool = False,
    lowercase: bool = True,
    attach: bool = False,
) -> tf.Tensor:
    """[B] raw strings → int32 [B, length] ids (TF ops): standardise, split, look up, keep the first
    words that fit, optionally reverse them (not the markers; Sutskever et al. 2014), add the
    start/end markers, right-pad with 0.

    empty_as_unknown: a text without words becomes one [UNK] (a fully masked sequence is rejected
    by cuDNN's LSTM on GPU). lowercase, attach: ``standardize``'s options.
    """
    words = tf.strings.split(standardize(texts, lowercase, attach))  # ragged [B, None]
    return frame(tf.cast(lookup(words), tf.int32), length, add_start, add_end, reverse, empty_as_unknown)


def frame(ids: tf.RaggedTensor, length: int, add_start: bool = False, add_end: bool = False, reverse: bool = False,
          empty_as_unknown: bool = False) -> tf.Tensor:
    """Ragged int32 [B, None] token ids (words or subword units) → int32 [B, length]: the first that fit
    between the markers, optionally reversed, with the start/end markers, right-padded with 0 (``encode``'s
    options)."""
    room = length - int(add_start) - int(add_end)
    if room < 1:
        raise ValueError(f"length={length} leaves no room for tokens between the start/end markers")
    ids = ids[:, :room]
    if reverse:
        ids = tf.reverse(ids, axis=[1])
    if empty_as_unknown:
        empty = tf.equal(ids.row_lengths(), 0)
        ids = tf.concat([ids, tf.ragged.boolean_mask(tf.fill([tf.shape(empty)[0], 1], UNKNOWN_ID), empty[:, None])],
                        axis=1)
    column = lambda token_id: tf.fill([ids.nrows(out_type=tf.int32), 1], tf.constant(token_id, tf.int32))  # noqa: E731
    if add_start:
        ids = tf.concat([column(START_ID), ids], axis=1)
    if add_end:
        ids = tf.concat([ids, column(END_ID)], axis=1)
    return ids.to_tensor(default_value=PAD_ID, shape=[None, length])


def decode(ids: tf.Tensor, inverse_lookup, attach: bool = False) -> tf.Tensor:
    """int [B, L] ids → [B] readable strings (TF ops): the words before the first end marker or
    padding, start markers dropped, joined by ``join_tokens`` (attach: tokens from ``attach=True``)."""
    ids = tf.cast(ids, tf.int64)
    stop = tf.logical_or(tf.equal(ids, END_ID), tf.equal(ids, PAD_ID))
    before_stop = tf.equal(tf.cumsum(tf.cast(stop, tf.int32), axis=1), 0)
    keep = tf.logical_and(before_stop, tf.not_equal(ids, START_ID))
    return join_tokens(tf.ragged.boolean_mask(inverse_lookup(ids), keep), attach)


_NO_SPACE_BEFORE = r" ([.,!?;:…»)%])"
_NO_SPACE_AFTER = r"([«(¿¡$]) "


def join_tokens(tokens: tf.Tensor | tf.RaggedTensor, attach: bool = False) -> tf.Tensor:
    """[B, None] token strings (ragged) → [B] readable strings (TF ops; used in SavedModels).

    attach=False: fixed spacing rules (no space before . , ! ? ; : » ) %, none after « ( ¿ ¡ $).
    attach=True: tokens from ``standardize(..., attach=True)``: a space between tokens unless a marker
    says they were written together, so the spacing is the training data's own.
    """
    text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    if attach:
        text = tf.strings.regex_replace(text, f"{ATTACH} | {ATTACH}", "")
        return tf.strings.strip(tf.strings.regex_replace(text, ATTACH, ""))  # a marker at either end
    text = tf.strings.regex_replace(text, _NO_SPACE_BEFORE, r"\1")
    return tf.strings.regex_replace(text, _NO_SPACE_AFTER, r"\1")
