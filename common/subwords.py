"""Subword units: a SentencePiece model (Kudo & Richardson 2018) fitted on a training split, run as TF ops.

``train`` fits a model with the ``sentencepiece`` package on standardised training texts and returns it as
bytes (what a task's preprocessor saves); ``tokenizer`` wraps those bytes in tensorflow-text's
``SentencepieceTokenizer``, whose ops serve the tf.data pipeline and the exported SavedModel alike, so the
export still takes raw strings. A SavedModel that holds one needs ``import tensorflow_text`` before
``tf.saved_model.load`` (the ops are registered by that import): ``SERVING_IMPORTS``.

The ids follow common.text's layout (0 padding, 1 [UNK], 2 [START], 3 [END], then pieces), so a model,
greedy and beam search read subword ids exactly as word ids. Texts go through ``common.text.standardize``
with ``split_punctuation=False`` (case as asked, typographic spaces and apostrophes made plain) and nothing
else: SentencePiece marks word starts itself ("▁"), so ``decode`` writes back the spacing of the training
data ("Tais-toi !", "Shut up!") without the word tokeniser's join markers.
"""

from __future__ import annotations

import io
import itertools
from typing import Sequence

import tensorflow as tf

from common import text
from common.token_ids import END_ID, PAD_ID, START_ID, UNKNOWN_ID

MODEL_TYPES = ("unigram", "bpe")  # SentencePiece's unigram language model (its default) or BPE (Sennrich 2016)
SERVING_IMPORTS = ("tensorflow_text",)  # modules a SavedModel with these ops needs imported before loading
WORD_START = "\u2581"  # SentencePiece's mark of a piece that starts a word ("▁")
_TOKENIZERS = itertools.count()  # numbers the tokenizers of this process (see ``tokenizer``)
_PAD_PIECE = "[PAD]"  # SentencePiece needs a non-empty name for id 0; common.text's vocabulary calls it ""


def train(texts: Sequence[str], vocabulary_size: int, model_type: str = "unigram", lowercase: bool = True,
          seed: int = 0) -> bytes:
    """Fits a SentencePiece model on ``texts`` (a training split) and returns it serialised.

    vocabulary_size: at most this many ids, including common.text's 4 reserved ones; a small corpus may
    give fewer (no error). The same texts and settings give the same bytes: all sentences are read in
    order (no sampling), on one thread. ValueError (SentencePiece's reason) when it cannot fit one, e.g.
    a vocabulary smaller than the corpus' distinct characters.
    """
    import sentencepiece

    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type={model_type!r}; expected one of {list(MODEL_TYPES)}")
    if vocabulary_size <= len(text.RESERVED):
        raise ValueError(f"vocabulary_size={vocabulary_size}: expected more than the {len(text.RESERVED)} "
                         "reserved ids")
    sentences = [line for line in standardized(texts, lowercase) if line]
    if not sentences:
        raise ValueError("no training text to fit subword units on (every text is empty)")
    sentencepiece.set_random_generator_seed(seed)  # no sampling is asked for; pinned anyway
    model = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocabulary_size,
            model_type=model_type, hard_vocab_limit=False,
            # common.text's ids: the decoders and the masks read these numbers.
            pad_id=PAD_ID, unk_id=UNKNOWN_ID, bos_id=START_ID, eos_id=END_ID, pad_piece=_PAD_PIECE,
            unk_piece=text.UNKNOWN_TOKEN, bos_piece=text.START_TOKEN, eos_piece=text.END_TOKEN,
            unk_surface=text.UNKNOWN_TOKEN,  # as the word decoder writes an unknown word
            # The texts are standardised already; NFKC would rewrite characters the output must keep ("…").
            normalization_rule_name="identity", character_coverage=1.0,
            input_sentence_size=0, shuffle_input_sentence=False, num_threads=1, minloglevel=2,
        )
    except RuntimeError as error:
        raise ValueError(f"SentencePiece could not fit {vocabulary_size} {model_type} subword units: "
                         f"{str(error).strip()}") from None
    return model.getvalue()


def standardized(texts: Sequence[str], lowercase: bool = True) -> list[str]:
    """Python strings → the standardised strings the subword model reads (``encode``'s first step)."""
    if not texts:
        return []
    values = text.standardize(tf.constant(list(texts), tf.string), lowercase, split_punctuation=False)
    return [value.decode("utf-8") for value in values.numpy()]


def vocabulary(model: bytes) -> list[str]:
    """id → piece of a ``train`` model, the reserved ids named as in common.text (id 0 = "")."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    pieces[PAD_ID] = text.PAD_TOKEN
    if tuple(pieces[: len(text.RESERVED)]) != text.RESERVED:
        raise ValueError(f"subword model's first pieces are {pieces[:len(text.RESERVED)]}; expected "
                         f"{list(text.RESERVED)} (a model not written by common.subwords.train)")
    return pieces


def tokenizer(model: bytes, name: str | None = None):
    """A ``tensorflow_text.SentencepieceTokenizer`` (a tf.Module: track it in an export) for a ``train`` model.
    name: its ops' name scope; give each tokenizer of one SavedModel its own."""
    try:
        import tensorflow_text
    except ImportError:
        raise ImportError("subword units need tensorflow-text (pip install tensorflow-text, the version "
                          "matching TensorFlow's)") from None
    # Its resource is owned by the op kernel and found by the op's name: two live tokenizers with one name
    # would share (and free) one model, so each gets a name of its own.
    return tensorflow_text.SentencepieceTokenizer(model=model, name=f"{name or 'subwords'}_{next(_TOKENIZERS)}")


def tokenize(texts: tf.Tensor | Sequence[str], tokenizer, lowercase: bool = True) -> tf.RaggedTensor:
    """[B] raw strings (a tensor or a Python list) → ragged [B, None] piece ids: standardised as the subword
    model was trained (case, spaces, apostrophes; punctuation left where it was written), then split."""
    if not tf.is_tensor(texts):
        texts = tf.constant(list(texts), tf.string)
    return tokenizer.tokenize(text.standardize(texts, lowercase, split_punctuation=False))


def encode(texts: tf.Tensor, tokenizer, length: int, add_start: bool = False, add_end: bool = False,
           reverse: bool = False, empty_as_unknown: bool = False, lowercase: bool = True) -> tf.Tensor:
    """[B] raw strings → int32 [B, length] subword ids (TF ops): standardise, split into pieces, keep the
    first that fit, optionally reverse them, add the start/end markers, right-pad with 0; as
    common.text.encode does with words. empty_as_unknown: a text without pieces becomes one [UNK]."""
    ids = tf.cast(tokenize(texts, tokenizer, lowercase), tf.int32)
    return text.frame(ids, length, add_start, add_end, reverse, empty_as_unknown)


def decode(ids: tf.Tensor, tokenizer) -> tf.Tensor:
    """int [B, L] ids → [B] readable strings (TF ops): the pieces before the first end marker or padding,
    start markers dropped, joined as SentencePiece writes them (the training data's spacing)."""
    ids = tf.cast(ids, tf.int32)
    stop = tf.logical_or(tf.equal(ids, END_ID), tf.equal(ids, PAD_ID))
    before_stop = tf.equal(tf.cumsum(tf.cast(stop, tf.int32), axis=1), 0)
    keep = tf.logical_and(before_stop, tf.not_equal(ids, START_ID))
    # A lone word-start piece generated last would leave a trailing space.
    return tf.strings.strip(tokenizer.detokenize(tf.ragged.boolean_mask(ids, keep)))


def pieces(texts: Sequence[str], model_tokenizer, pieces_of_ids: Sequence[str],
           lowercase: bool = True) -> list[list[str]]:
    """Python strings → their pieces (``vocabulary`` names), through the same ops as ``encode``."""
    if not texts:
        return []
    ids = tokenize(list(texts), model_tokenizer, lowercase)
    return [[pieces_of_ids[i] for i in row] for row in ids.to_list()]


def readable(piece: str) -> str:
    """A piece as a label (plots, logs): without SentencePiece's word-start mark, which reads as noise;
    a piece that is only the mark (a word start before a character piece) stays as it is."""
    return piece[1:] if piece.startswith(WORD_START) and len(piece) > 1 else piece
