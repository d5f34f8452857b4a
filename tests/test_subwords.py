"""common.subwords: SentencePiece units fitted on a training split, run as TensorFlow ops (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from common import subwords, text

TRAIN = [
    "Tais-toi !", "Va !", "Cours !", "À l'aide !", "Je l'ai vu.", "C'est triste.", "Il a couru.",
    "Elle a vu le chien.", "Le chien dort.", "« Oui », dit-il.", "Tom a 3,5 ans ?", "Shut up!", "Go away.",
]


@pytest.fixture(scope="module")
def model() -> bytes:
    return subwords.train(TRAIN * 3, 60, lowercase=False)


def test_training_is_deterministic_and_keeps_the_reserved_ids(model):
    assert subwords.train(TRAIN * 3, 60, lowercase=False) == model  # same texts and settings: same bytes
    assert subwords.train(TRAIN[::-1] * 3, 60, lowercase=False, model_type="bpe") != model
    pieces = subwords.vocabulary(model)
    assert tuple(pieces[:4]) == text.RESERVED and len(pieces) <= 60
    assert len(set(pieces)) == len(pieces)


def test_encode_frames_cuts_reverses_and_pads_like_the_word_encoder(model):
    tokenizer = subwords.tokenizer(model)
    pieces = subwords.vocabulary(model)
    sentences = tf.constant(["Le chien dort.", "", "Le chien dort. " * 10])
    ids = subwords.encode(sentences, tokenizer, 8, add_start=True, add_end=True,
                           lowercase=False).numpy()
    assert ids.shape == (3, 8) and ids.dtype == np.int32
    assert ids[0, 0] == text.START_ID and text.END_ID in ids[0] and ids[2, -1] == text.END_ID  # cut, still ended
    assert ids[1].tolist() == [text.START_ID, text.END_ID] + [text.PAD_ID] * 6
    plain = subwords.encode(sentences[:1], tokenizer, 30, lowercase=False).numpy()[0]
    length = int(np.count_nonzero(plain))
    reversed_ids = subwords.encode(sentences[:1], tokenizer, 30, reverse=True, lowercase=False).numpy()[0]
    assert reversed_ids[:length].tolist() == plain[:length][::-1].tolist()
    assert subwords.encode(tf.constant([""]), tokenizer, 4, empty_as_unknown=True).numpy()[0].tolist() == [
        text.UNKNOWN_ID, 0, 0, 0]
    assert "".join(pieces[i] for i in plain[:length]).replace(subwords.WORD_START, " ").strip() == "Le chien dort."


@pytest.mark.parametrize("written", ["Tais-toi !", "Shut up!", "« Oui », dit-il.", "Tom a 3,5 ans ?", "Je l'ai vu."])
def test_decode_restores_the_training_data_spacing(model, written):
    tokenizer = subwords.tokenizer(model)
    ids = subwords.encode(tf.constant([written]), tokenizer, 40, add_start=True, add_end=True, lowercase=False)
    assert subwords.decode(ids, tokenizer).numpy()[0].decode() == written
    # Generated ids stop at the first end marker or padding; start markers are dropped.
    tail = tf.concat([ids, tf.fill([1, 3], 7)], axis=1)
    assert subwords.decode(tail, tokenizer).numpy()[0].decode() == written


def test_standardisation_without_punctuation_splitting():
    values = text.standardize(tf.constant(["  Je l’ai\u00a0vu !  ", "«Oui»"]), lowercase=False, split_punctuation=False)
    assert [v.decode() for v in values.numpy()] == ["Je l'ai vu !", "«Oui»"]
    assert subwords.standardized(["L’AIDE  !"]) == ["l'aide !"]
    with pytest.raises(ValueError, match="needs split_punctuation=True"):
        text.standardize(tf.constant(["x"]), attach=True, split_punctuation=False)


def test_unseen_characters_are_unknown_and_labels_drop_the_word_start_mark(model):
    tokenizer = subwords.tokenizer(model)
    ids = subwords.encode(tf.constant(["Le zèbre"]), tokenizer, 12, lowercase=False).numpy()[0]
    assert text.UNKNOWN_ID in ids.tolist()  # "z" and "b" never occur in TRAIN (character_coverage 1.0 of train)
    pieces = subwords.pieces(["Le chien"], tokenizer, subwords.vocabulary(model), lowercase=False)[0]
    assert pieces[0].startswith(subwords.WORD_START) and "".join(pieces) == "\u2581Le\u2581chien"
    assert subwords.readable("\u2581chien") == "chien" and subwords.readable("ien") == "ien"
    assert subwords.readable("\u2581") == "\u2581"


def test_training_errors_say_what_was_expected():
    with pytest.raises(ValueError, match="more than the 4 reserved ids"):
        subwords.train(TRAIN, 4)
    with pytest.raises(ValueError, match="model_type='wordpiece'"):
        subwords.train(TRAIN, 50, model_type="wordpiece")
    with pytest.raises(ValueError, match="no training text"):
        subwords.train(["", "  "], 50)
    with pytest.raises(ValueError, match="SentencePiece could not fit 10 unigram subword units"):
        subwords.train(TRAIN, 10)  # fewer ids than the corpus has characters
