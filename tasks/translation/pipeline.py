"""The fitted preprocessing of the translation task, and sentence pairs → tf.data.

``Preprocessor`` holds everything fitted on the training split: the source and target
vocabularies, the array widths (source words kept, target words kept), whether the source is
reversed, how each side is tokenised (case kept or not; target punctuation marked when written
against a neighbour, so decoding restores the data's own spacing: common.text), and the
word-by-word baseline's lexicon. Its ``encode`` (raw source strings → ids) and
``encode_target`` (raw target strings → ``[START] words [END]`` ids) are TensorFlow ops used by
the tf.data pipeline and the exported SavedModel alike; ``decode`` turns generated ids back into
text. The state is JSON (vocabularies, widths, lexicon) in WORKDIR/checkpoints/preprocessor/.

Teacher forcing: the decoder reads the framed target without its last token ("decoder_input")
and learns to predict it without its first ("target"): at step t the input is the gold token t-1.
Padding id 0 is ignored by the loss and the accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from common import pipelines, text
from common import preprocessor as base
from common.errors import TaskError
from data.pairs import Pair
from tasks.translation.model import WordByWordBaseline

# Sentences encoded per TensorFlow call when a split is turned into arrays (bounded memory).
_ENCODE_CHUNK = 4096


class Preprocessor(base.Preprocessor):
    """Vocabularies, array widths, source reversal and the baseline lexicon, fitted on train."""

    task = "translation"

    def __init__(self, source_vocabulary: Sequence[str], target_vocabulary: Sequence[str], source_length: int,
                 target_length: int, reverse_source: bool, lexicon: dict[str, str], lowercase_source: bool = True,
                 lowercase_target: bool = True, attach_target: bool = False):
        self.source_vocabulary = list(source_vocabulary)  # id → token, reserved tokens first (common.text)
        self.target_vocabulary = list(target_vocabulary)
        self.source_length = int(source_length)  # source words kept: width of the source array
        self.target_length = int(target_length)  # target words kept; the target array adds START and END
        self.reverse_source = bool(reverse_source)
        self.lexicon = dict(lexicon)  # source word → target word, for the word-by-word baseline
        # Tokenisation (common.text.standardize options). The defaults are those of runs made before the
        # options existed (lower-cased, fixed spacing rules), so their saved states still load.
        self.lowercase_source = bool(lowercase_source)
        self.lowercase_target = bool(lowercase_target)
        self.attach_target = bool(attach_target)
        self.source_lookup = text.lookup_layer(self.source_vocabulary, name="source_lookup")
        self.target_lookup = text.lookup_layer(self.target_vocabulary, name="target_lookup")
        self.target_words = text.lookup_layer(self.target_vocabulary, invert=True, name="target_words")

    # --- fitting and saving ---------------------------------------------------------------------
    @classmethod
    def fit(cls, task, data, workdir: Path) -> "Preprocessor":
        config = task.config
        options = {"lowercase_source": config.lowercase_source, "lowercase_target": config.lowercase_target,
                   "attach_target": config.attach_punctuation}
        source_tokens = text.tokenize([pair.source for pair in data.train], config.lowercase_source)
        target_tokens = text.tokenize([pair.target for pair in data.train], config.lowercase_target,
                                      config.attach_punctuation)
        return cls(
            source_vocabulary=text.full_vocabulary(
                text.fit_vocabulary(source_tokens, config.max_vocabulary, config.min_count)),
            target_vocabulary=text.full_vocabulary(
                text.fit_vocabulary(target_tokens, config.max_vocabulary, config.min_count)),
            # Array widths come from the training data, capped by the config (no wasted padding).
            source_length=min(config.max_source_tokens, max(len(tokens) for tokens in source_tokens)),
            target_length=min(config.max_target_tokens, max(len(tokens) for tokens in target_tokens)),
            reverse_source=config.reverse_source,
            lexicon=WordByWordBaseline.fit(source_tokens, target_tokens).lexicon,
            **options,
        )

    def get_state(self) -> dict[str, Any]:
        return {"source_vocabulary": self.source_vocabulary, "target_vocabulary": self.target_vocabulary,
                "source_length": self.source_length, "target_length": self.target_length,
                "reverse_source": self.reverse_source, "lexicon": self.lexicon,
                "lowercase_source": self.lowercase_source, "lowercase_target": self.lowercase_target,
                "attach_target": self.attach_target}

    @classmethod
    def from_state(cls, state: dict[str, Any], folder: Path) -> "Preprocessor":
        required = {"source_vocabulary", "target_vocabulary", "source_length", "target_length", "reverse_source",
                    "lexicon"}
        expected = required | {"lowercase_source", "lowercase_target", "attach_target"}  # later additions
        if not required <= set(state) <= expected:
            raise TaskError(f"Preprocessor state in {str(folder)!r} has keys {sorted(state)}; expected "
                            f"{sorted(expected)}: retrain in a new --workdir")
        return cls(**state)

    def layers(self) -> list[Any]:
        return [self.source_lookup, self.target_lookup, self.target_words]

    # --- the one encode (TF ops): tf.data and the serving graph ----------------------------------
    def encode(self, sources: tf.Tensor) -> tf.Tensor:
        """[B] raw source strings → int32 [B, source_length] ids (an empty sentence = one [UNK])."""
        return text.encode(sources, self.source_lookup, self.source_length, reverse=self.reverse_source,
                           empty_as_unknown=True, lowercase=self.lowercase_source)

    def encode_target(self, targets: tf.Tensor) -> tf.Tensor:
        """[B] raw target strings → int32 [B, target_length + 2]: START, words, END, padding."""
        return text.encode(targets, self.target_lookup, self.target_length + 2, add_start=True, add_end=True,
                           lowercase=self.lowercase_target, attach=self.attach_target)

    def decode(self, ids) -> tf.Tensor:
        """Generated target ids int32 [B, L] → [B] readable strings (up to the end marker). Ids of another
        Keras backend (a JAX array from the decoder) enter TensorFlow through NumPy."""
        if not tf.is_tensor(ids):
            ids = np.asarray(ids)
        return text.decode(ids, self.target_words, attach=self.attach_target)

    # --- the same tokenisation on Python lists (statistics, the baseline) -------------------------
    def source_tokens(self, sources: Sequence[str]) -> list[list[str]]:
        return text.tokenize(list(sources), self.lowercase_source)

    def target_tokens(self, targets: Sequence[str]) -> list[list[str]]:
        return text.tokenize(list(targets), self.lowercase_target, self.attach_target)

    def join_target(self, token_lists: Sequence[Sequence[str]]) -> list[str]:
        """Target token lists → readable strings, with the export's own detokeniser."""
        return join_words(token_lists, self.attach_target)

    # --- pairs → arrays → tf.data ---------------------------------------------------------------
    def arrays(self, pairs: Sequence[Pair]) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Encodes a split once (through ``encode``/``encode_target``): ({"source" [N, S],
        "decoder_input" [N, T+1]}, target [N, T+1]), int32."""
        if not pairs:
            raise TaskError("Cannot encode an empty split of sentence pairs")
        sources, targets = [], []
        for start in range(0, len(pairs), _ENCODE_CHUNK):
            chunk = pairs[start : start + _ENCODE_CHUNK]
            sources.append(self.encode(tf.constant([pair.source for pair in chunk])).numpy())
            targets.append(self.encode_target(tf.constant([pair.target for pair in chunk])).numpy())
        source_ids, target_ids = np.concatenate(sources), np.concatenate(targets)
        return {"source": source_ids, "decoder_input": target_ids[:, :-1]}, target_ids[:, 1:]

    def dataset(self, pairs: Sequence[Pair], batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
        """Batched ({"source", "decoder_input"}, target), shuffled before batching when asked."""
        inputs, targets = self.arrays(pairs)
        return pipelines.from_arrays(inputs, targets, batch_size=batch_size, shuffle=shuffle, seed=seed)


def unknown_rate(token_lists: Sequence[Sequence[str]], vocabulary: Sequence[str]) -> float:
    """Fraction of the tokens that are not in ``vocabulary`` (they become [UNK])."""
    known = set(vocabulary)
    total = sum(len(tokens) for tokens in token_lists)
    unknown = sum(1 for tokens in token_lists for token in tokens if token not in known)
    return unknown / total if total else 0.0


def join_words(token_lists: Sequence[Sequence[str]], attach: bool = False) -> list[str]:
    """Token lists → readable strings, with the export's own detokeniser (common.text.join_tokens)."""
    joined = text.join_tokens(tf.ragged.constant([list(t) for t in token_lists], dtype=tf.string), attach)
    return [t.decode("utf-8") for t in joined.numpy()]


def exact_match(hypotheses: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """Fraction of hypotheses equal to one of their references after standardisation (case-insensitive,
    spacing ignored)."""
    standardized = [{" ".join(tokens) for tokens in text.tokenize(refs)} for refs in references]
    return float(np.mean([" ".join(tokens) in refs for tokens, refs in zip(text.tokenize(hypotheses), standardized)]))
