"""Text → token ids → windows for truncated BPTT, and the fitted ``Preprocessor`` (vocabulary + n-gram baseline).

Tokens: characters (``level="char"``, Unicode code points, case and spaces kept, the line break is the
character "\\n") or words (``level="word"``: common.text's standardisation, lower-case with punctuation cut
off; the line break is the token ``<eos>``, as in the Penn Treebank setup of Mikolov and Zaremba).

Vocabulary ids: 0 = padding "" (never a target: the loss ignores it), 1 = "[UNK]" (tokens not kept from
the training split), 2 = the line break, then the training split's tokens by decreasing count (ties by
code-point order), so ids are deterministic. A split becomes one stream of ids: a line break, then each
line followed by a line break; the first id is context only, every later one is a prediction target.

``Preprocessor.encode`` (raw strings → ragged ids, TensorFlow ops) is the one path from text to ids: the
streams of the tf.data pipeline and the prompts of the exported ``generate`` graph go through it.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from common import pipelines, progress, text
from common import preprocessor as base
from common.errors import TaskError
from tasks.language_model.ngram import KneserNey
from tasks.language_model.token_ids import BREAK_ID, PAD_ID, UNKNOWN_ID  # noqa: F401 (re-exported)

UNKNOWN_TOKEN = "[UNK]"
BREAK_TOKENS = {"char": "\n", "word": "<eos>"}
NGRAM_FILE = "ngram_counts.npz"  # beside preprocessor.json: the baseline's raw n-gram counts
_ENCODE_CHUNK = 4096  # lines per TensorFlow call while a split is encoded


def windows(stream: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping BPTT windows: inputs = stream[kL : kL+L], targets = the same shifted by one,
    int32 [K, L]; the last window is right-padded with 0 (ignored by the loss), so every target is used once."""
    stream = np.asarray(stream, np.int32)
    targets_count = len(stream) - 1
    count = max(1, -(-targets_count // length))
    inputs = np.zeros([count, length], np.int32)
    targets = np.zeros([count, length], np.int32)
    for k in range(count):
        piece = stream[k * length: k * length + length + 1]
        inputs[k, : len(piece) - 1] = piece[:-1]
        targets[k, : len(piece) - 1] = piece[1:]
    return inputs, targets


def stream_windows(stream: np.ndarray, length: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Windows for a state carried across batches (char-rnn, Zaremba): the stream's targets cut into ``rows``
    contiguous pieces of equal size (the last (len - 1) mod rows targets dropped), each piece into windows of
    ``length`` (its last window right-padded with 0, ignored by the loss), ordered so that consecutive groups of
    ``rows`` windows are batches and row i of batch k + 1 continues row i of batch k. int32 [W · rows, length]."""
    stream = np.asarray(stream, np.int32)
    per_row = (len(stream) - 1) // rows
    if per_row < 1:
        raise TaskError(f"a stream of {len(stream) - 1} training tokens cannot fill {rows} rows (batch_size) carried "
                        f"across batches; expected at least batch_size tokens: lower batch_size or add text")
    count = -(-per_row // length)  # windows per row
    inputs = np.zeros([rows, count * length], np.int32)
    targets = np.zeros([rows, count * length], np.int32)
    for row in range(rows):
        piece = stream[row * per_row: (row + 1) * per_row + 1]
        inputs[row, :per_row], targets[row, :per_row] = piece[:-1], piece[1:]
    # [rows, count·length] → [count, rows, length] → [count·rows, length]: batch k = window k of every row.
    reorder = lambda ids: ids.reshape(rows, count, length).transpose(1, 0, 2).reshape(count * rows, length)  # noqa
    return reorder(inputs), reorder(targets)


def carried_evaluation_windows(stream: np.ndarray, length: int, rows: int,
                               warmup: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every target of ``stream`` scored exactly once by ``rows`` streams read with a carried state: the targets
    are cut into ``rows`` contiguous pieces, and row j reads its piece preceded by up to ``warmup`` earlier tokens
    (context only), so every target after the first ``warmup`` has at least ``warmup`` tokens of context and the
    first ones all of the stream's. Returns inputs, targets int32 and scored float32 (1 = counted), each
    [W, rows', length] with rows' = min(rows, targets): window k of all rows is one call, the state passed on."""
    stream = np.asarray(stream, np.int32)
    total = len(stream) - 1  # targets are stream positions 1 .. total
    rows = max(1, min(rows, total))
    bounds = [1 + round(j * total / rows) for j in range(rows + 1)]  # row j scores positions bounds[j] .. [j+1]-1
    starts = [max(0, bounds[j] - 1 - warmup) for j in range(rows)]  # first input position of row j
    widest = max(bounds[j + 1] - 1 - starts[j] for j in range(rows))
    count = max(1, -(-widest // length))
    inputs = np.zeros([rows, count * length], np.int32)
    targets = np.zeros([rows, count * length], np.int32)
    scored = np.zeros([rows, count * length], np.float32)
    for j in range(rows):
        size = bounds[j + 1] - 1 - starts[j]
        inputs[j, :size] = stream[starts[j]: bounds[j + 1] - 1]
        targets[j, :size] = stream[starts[j] + 1: bounds[j + 1]]
        scored[j, bounds[j] - 1 - starts[j]: size] = 1.0
    reorder = lambda ids: ids.reshape(rows, count, length).transpose(1, 0, 2)  # noqa: E731
    return reorder(inputs), reorder(targets), reorder(scored)


def evaluation_windows(stream: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Overlapping windows that score every target of ``stream`` exactly once, each (after the first
    window) with at least length - length // 2 earlier tokens as context: windows start every
    ``length // 2`` tokens and score only their last ``length // 2`` positions. Returns inputs, targets
    int32 [K, length] and scored float32 [K, length] (1 = counted)."""
    stream = np.asarray(stream, np.int32)
    stride = max(1, length // 2)
    total = len(stream) - 1  # targets 1 .. len-1
    # Window k >= 1 starts at k·stride and scores targets k·stride + length - stride + 1 .. k·stride + length.
    starts = [0] + [start for start in range(stride, max(total, 0), stride) if start + length - stride < total]
    inputs = np.zeros([len(starts), length], np.int32)
    targets = np.zeros([len(starts), length], np.int32)
    scored = np.zeros([len(starts), length], np.float32)
    for row, start in enumerate(starts):
        piece = stream[start: start + length + 1]
        inputs[row, : len(piece) - 1] = piece[:-1]
        targets[row, : len(piece) - 1] = piece[1:]
        first = 0 if start == 0 else length - stride
        scored[row, first: len(piece) - 1] = 1.0
    return inputs, targets, scored


class Preprocessor(base.Preprocessor):
    """The vocabulary (ids above) and the fitted n-gram baseline; both from the training split only."""

    task = "language_model"

    def __init__(self, level: str, vocabulary: Sequence[str], sequence_length: int, ngram: KneserNey | None,
                 summary: dict[str, Any]):
        self.level = level
        self.vocabulary = list(vocabulary)  # id → token
        if self.vocabulary[:3] != ["", UNKNOWN_TOKEN, BREAK_TOKENS[level]]:
            raise TaskError(f"vocabulary starts with {self.vocabulary[:3]!r}; expected padding, [UNK] and the line "
                            f"break {BREAK_TOKENS[level]!r} of level {level!r}")
        self.sequence_length = int(sequence_length)  # BPTT window; also the longest prompt kept by `generate`
        self.ngram = ngram  # None only inside ``fit``, while the training stream is encoded for counting
        self.summary = summary  # JSON facts of the fit (vocabulary size, unknown rate of train)
        self.lookup = keras.layers.StringLookup(vocabulary=self.vocabulary[2:], mask_token="", oov_token=UNKNOWN_TOKEN,
                                                name="token_lookup")
        self.inverse = keras.layers.StringLookup(vocabulary=self.vocabulary[2:], mask_token="",
                                                 oov_token=UNKNOWN_TOKEN, invert=True, name="token_strings")
        self.lookup(tf.constant([["a"]]))  # built now: an export tracks them before any real call
        self.inverse(tf.constant([[BREAK_ID]], tf.int64))

    # --- fitting and saving ---------------------------------------------------------------------
    @classmethod
    def fit(cls, task, data, workdir: Path) -> "Preprocessor":
        config = task.config
        with progress.stage(f"{config.level} vocabulary of {len(data.train):,} training lines"):
            counts = collections.Counter(token for tokens in tokenize(data.train, config.level) for token in tokens)
        break_token = BREAK_TOKENS[config.level]
        for reserved in ("", UNKNOWN_TOKEN, break_token):
            counts.pop(reserved, None)
        words = sorted((w for w, c in counts.items() if c >= config.min_count), key=lambda w: (-counts[w], w))
        if config.max_vocabulary is not None:
            words = words[: config.max_vocabulary - 3]
        vocabulary = ["", UNKNOWN_TOKEN, break_token, *words]
        stream = cls(config.level, vocabulary, config.sequence_length, None, {}).stream(data.train)
        order = config.effective_ngram_order
        with progress.stage(f"Kneser-Ney {order}-gram counts of {len(stream):,} training tokens"):
            discounts = None if config.ngram_discount is None else [config.ngram_discount] * order
            ngram = KneserNey.fit(stream, order, len(vocabulary) - 1, discounts)  # padding is never predicted
        summary = {"vocabulary_size": len(vocabulary), "train_tokens": int(len(stream) - 1),
                   "unknown_rate_train": float(np.mean(stream[1:] == UNKNOWN_ID)), "ngram_order": order,
                   "ngram_discounts": ngram.discounts}
        return cls(config.level, vocabulary, config.sequence_length, ngram, summary)

    def get_state(self) -> dict[str, Any]:
        return {"level": self.level, "vocabulary": self.vocabulary, "sequence_length": self.sequence_length,
                "ngram": {"order": self.ngram.order, "vocabulary_size": self.ngram.vocabulary_size,
                          "discounts": self.ngram.discounts},
                "summary": self.summary}

    def save_files(self, folder: Path) -> None:
        np.savez(Path(folder) / NGRAM_FILE, **self.ngram.arrays())

    @classmethod
    def from_state(cls, state: dict[str, Any], folder: Path) -> "Preprocessor":
        expected = {"level", "vocabulary", "sequence_length", "ngram", "summary"}
        if set(state) != expected:
            raise TaskError(f"Preprocessor state in {str(folder)!r} has keys {sorted(state)}; expected "
                            f"{sorted(expected)}: retrain in a new --workdir")
        with np.load(Path(folder) / NGRAM_FILE) as arrays:
            ngram = KneserNey.from_arrays(arrays, **state["ngram"])
        return cls(state["level"], state["vocabulary"], state["sequence_length"], ngram, state["summary"])

    def layers(self) -> list[Any]:
        return [self.lookup, self.inverse]

    def export_facts(self) -> dict[str, Any]:
        return {"level": self.level, "vocabulary_size": len(self.vocabulary)}

    # --- the one encode (TF ops): streams and the serving graph ---------------------------------
    def encode(self, texts: tf.Tensor) -> tf.RaggedTensor:
        """[B] raw strings → [B, (tokens)] int32 ids, ragged; no line breaks added. Invalid UTF-8 from a caller
        becomes U+FFFD (then [UNK]); for words a line break inside a text becomes the ``<eos>`` token."""
        texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
        if self.level == "char":
            tokens = tf.strings.unicode_split(texts, "UTF-8")
        else:
            texts = tf.strings.regex_replace(texts, "\r?\n", f" {BREAK_TOKENS['word']} ")
            tokens = tf.strings.split(text.standardize(texts))
        return tf.cast(self.lookup(tokens), tf.int32)

    def encode_prompts(self, prompts: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """[B] prompts → (ids int32 [B, P], lengths int32 [B]): a line break, then the prompt's last
        sequence_length - 1 tokens, right-padded with 0. Every row holds at least the line break (an empty
        prompt starts a new line), so no row reaching the recurrent layers is fully masked."""
        ids = self.encode(prompts)[:, -(self.sequence_length - 1):]
        rows = ids.nrows(out_type=tf.int32)
        ids = tf.concat([tf.fill([rows, 1], tf.constant(BREAK_ID, tf.int32)), ids], axis=1)
        dense = ids.to_tensor(default_value=PAD_ID)
        dense = tf.pad(dense, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(dense)[1])]])  # width >= 1, even for 0 rows
        return dense, tf.cast(ids.row_lengths(), tf.int32)

    def decode(self, ids: tf.Tensor) -> tf.Tensor:
        """Generated ids int [B, N] → [B] strings: characters joined as they are; words joined by spaces,
        ``<eos>`` shown as a line break."""
        tokens = self.inverse(tf.cast(ids, tf.int64))
        if self.level == "char":
            return tf.strings.reduce_join(tokens, axis=-1)
        tokens = tf.where(tf.equal(ids, BREAK_ID), tf.constant("\n"), tokens)
        joined = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(joined, " ?\n ?", "\n")

    # --- lines → stream → tf.data ---------------------------------------------------------------
    def stream(self, lines: Sequence[str]) -> np.ndarray:
        """A split's lines → int32 ids [1 + Σ(len + 1)]: a line break, then each line and a line break."""
        pieces = [np.array([BREAK_ID], np.int32)]
        for start in range(0, len(lines), _ENCODE_CHUNK):
            ids = self.encode(tf.constant(list(lines[start: start + _ENCODE_CHUNK]), tf.string))
            breaks = tf.fill([ids.nrows(out_type=tf.int32), 1], tf.constant(BREAK_ID, tf.int32))
            pieces.append(tf.concat([ids, breaks], axis=1).flat_values.numpy())
        return np.concatenate(pieces)

    def dataset(self, lines: Sequence[str], batch_size: int, shuffle: bool, seed: int,
                carried: bool = False) -> tf.data.Dataset:
        """Batched (inputs, targets) windows of the split's stream, int32 [batch, sequence_length]. Default: windows
        shuffled before batching (each starts from a zero state, so their order carries nothing). ``carried``: the
        contiguous streams of ``stream_windows``, in order (never shuffled), every batch exactly batch_size rows."""
        stream = self.stream(lines)
        if carried:
            inputs, targets = stream_windows(stream, self.sequence_length, batch_size)
            return pipelines.from_arrays(inputs, targets, batch_size=batch_size, shuffle=False, seed=seed)
        inputs, targets = windows(stream, self.sequence_length)
        return pipelines.from_arrays(inputs, targets, batch_size=batch_size, shuffle=shuffle, seed=seed)


def tokenize(lines: Sequence[str], level: str) -> list[list[str]]:
    """Python lines → token lists, as ``Preprocessor.encode`` splits them (for fitting the vocabulary)."""
    if level == "char":
        return [list(line) for line in lines]
    tokens: list[list[str]] = []
    for start in range(0, len(lines), _ENCODE_CHUNK):
        tokens += text.tokenize(list(lines[start: start + _ENCODE_CHUNK]))
    return tokens
