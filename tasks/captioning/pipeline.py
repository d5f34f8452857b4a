"""Captions → token ids → tf.data of ({image_features, caption_tokens}, next_tokens).

Tokenisation is deliberately simple and close to coco-caption's PTB tokenisation for training:
lowercase, keep runs of letters/digits (punctuation dropped). The vocabulary is fitted on the
training captions only; words seen fewer than ``min_word_count`` times map to <unk>.

Sequences (T = max_caption_length + 1):
    caption_tokens = [<start>, w1, ..., wn, 0, ...]   the decoder input (teacher forcing)
    next_tokens    = [w1, ..., wn, <end>, 0, ...]     what each step must predict (0 = padding, masked)
Right padding with 0 keeps the LSTM cuDNN-eligible.
"""

from __future__ import annotations

import collections
import re
from typing import Iterable, Sequence

import numpy as np
import tensorflow as tf

from common.pipelines import AUTOTUNE

PAD, UNK, START, END = "<pad>", "<unk>", "<start>", "<end>"
SPECIAL_TOKENS = (PAD, UNK, START, END)
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
_WORD = re.compile(r"[a-z0-9]+")


def tokenize(caption: str) -> list[str]:
    return _WORD.findall(caption.lower())


class Vocabulary:
    """Word ↔ id mapping; ids 0..3 are <pad>, <unk>, <start>, <end>; then words by frequency."""

    def __init__(self, words: Sequence[str]):
        if tuple(words[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a vocabulary starts with {SPECIAL_TOKENS}, got {tuple(words[:4])}")
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def fit(cls, captions: Iterable[str], min_count: int = 1) -> "Vocabulary":
        counts = collections.Counter(word for caption in captions for word in tokenize(caption))
        # Most frequent first, ties alphabetical: the same captions always give the same ids.
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if not kept:
            raise ValueError(f"no word occurs at least min_word_count={min_count} times in the training captions")
        return cls([*SPECIAL_TOKENS, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, caption: str, max_words: int) -> list[int]:
        return [self.index.get(word, UNK_ID) for word in tokenize(caption)[:max_words]]

    def decode(self, ids: Iterable[int]) -> str:
        words = []
        for token in ids:
            token = int(token)
            if token in (PAD_ID, END_ID):
                break
            if token != START_ID:
                words.append(self.words[token])
        return " ".join(words)


def caption_arrays(captions: Sequence[str], vocabulary: Vocabulary, max_words: int) -> tuple[np.ndarray, np.ndarray]:
    """(caption_tokens, next_tokens), each int32 [len(captions), max_words + 1]."""
    length = max_words + 1
    inputs = np.zeros((len(captions), length), np.int32)
    targets = np.zeros((len(captions), length), np.int32)
    for row, caption in enumerate(captions):
        ids = vocabulary.encode(caption, max_words)
        inputs[row, : len(ids) + 1] = [START_ID, *ids]
        targets[row, : len(ids) + 1] = [*ids, END_ID]
    return inputs, targets


def caption_dataset(
    features: np.ndarray,
    captions_per_image: Sequence[Sequence[str]],
    vocabulary: Vocabulary,
    max_words: int,
    batch_size: int,
    shuffle: bool,
    seed: int,
) -> tf.data.Dataset:
    """One example per (image, caption) pair; image features are gathered by index, not copied.

    features: float32 [N_images, D]; captions_per_image[i]: the references of image i.
    Yields ({"image_features": [B, D], "caption_tokens": [B, T]}, next_tokens [B, T]).
    """
    image_index = np.array([i for i, captions in enumerate(captions_per_image) for _ in captions], np.int32)
    flat = [caption for captions in captions_per_image for caption in captions]
    inputs, targets = caption_arrays(flat, vocabulary, max_words)
    feature_table = tf.constant(features, tf.float32)

    def attach_features(example, target):
        return {"image_features": tf.gather(feature_table, example["image_index"]), "caption_tokens": example["caption_tokens"]}, target

    dataset = tf.data.Dataset.from_tensor_slices(({"image_index": image_index, "caption_tokens": inputs}, targets))
    if shuffle:
        dataset = dataset.shuffle(buffer_size=len(flat), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(attach_features, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)
