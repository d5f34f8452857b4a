"""The fitted preprocessing of the translation task, and sentence pairs → tf.data.

``Preprocessor`` holds everything fitted on the training split: the source and target
vocabularies, the array widths (source tokens kept, target tokens kept), whether the source is
reversed, how each side is tokenised (case kept or not; target punctuation marked when written
against a neighbour, so decoding restores the data's own spacing: common.text), the apostrophe the
target data writes (the plain ' or the typographic ’, the majority of the training targets), and the
word-by-word baseline's lexicon. With ``subword_vocabulary`` the tokens are SentencePiece subword units
(common.subwords), one model per side fitted on the training split and saved beside the JSON as
``source.subwords`` and ``target.subwords``; SentencePiece restores the spacing itself. Its ``encode``
(raw source strings → ids) and ``encode_target`` (raw target strings → ``[START] tokens [END]`` ids) are
TensorFlow ops used by the tf.data pipeline and the exported SavedModel alike; ``decode`` turns generated
ids back into text. The state is JSON (vocabularies, widths, lexicon), plus the subword models when used, in
WORKDIR/checkpoints/preprocessor/.

Teacher forcing: the decoder reads the framed target without its last token ("decoder_input")
and learns to predict it without its first ("target"): at step t the input is the gold token t-1.
Padding id 0 is ignored by the loss and the accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from common import pipelines, subwords, text
from common import preprocessor as base
from common.errors import TaskError
from data.pairs import Pair
from tasks.translation.model import WordByWordBaseline

# Sentences encoded per TensorFlow call when a split is turned into arrays (bounded memory).
_ENCODE_CHUNK = 4096
PLAIN_APOSTROPHE, TYPOGRAPHIC_APOSTROPHE = "'", "\u2019"
_APOSTROPHES = {"plain": PLAIN_APOSTROPHE, "typographic": TYPOGRAPHIC_APOSTROPHE}  # config.target_apostrophe
_SUBWORD_FILES = {"source": "source.subwords", "target": "target.subwords"}  # SentencePiece models, in the folder


class Preprocessor(base.Preprocessor):
    """Vocabularies (or subword models), array widths, source reversal, the target's apostrophe and the
    baseline lexicon, fitted on train."""

    task = "translation"

    def __init__(self, source_vocabulary: Sequence[str], target_vocabulary: Sequence[str], source_length: int,
                 target_length: int, reverse_source: bool, lexicon: dict[str, str], lowercase_source: bool = True,
                 lowercase_target: bool = True, attach_target: bool = False, apostrophe: str = PLAIN_APOSTROPHE,
                 source_subwords: bytes | None = None, target_subwords: bytes | None = None):
        self.source_vocabulary = list(source_vocabulary)  # id → token, reserved tokens first (common.text)
        self.target_vocabulary = list(target_vocabulary)
        self.source_length = int(source_length)  # source tokens kept: width of the source array
        self.target_length = int(target_length)  # target tokens kept; the target array adds START and END
        self.reverse_source = bool(reverse_source)
        self.lexicon = dict(lexicon)  # source word → target word, for the word-by-word baseline
        # Tokenisation (common.text.standardize options). The defaults are those of runs made before the
        # options existed (lower-cased, fixed spacing rules), so their saved states still load.
        self.lowercase_source = bool(lowercase_source)
        self.lowercase_target = bool(lowercase_target)
        self.attach_target = bool(attach_target)  # of target words: the baseline's, and the model's without subwords
        if apostrophe not in (PLAIN_APOSTROPHE, TYPOGRAPHIC_APOSTROPHE):
            raise TaskError(f"apostrophe={apostrophe!r}; expected {PLAIN_APOSTROPHE!r} or {TYPOGRAPHIC_APOSTROPHE!r}")
        # Tokens make every apostrophe plain (one token for "l'ai" and "l’ai"); the output writes this one.
        self.apostrophe = apostrophe
        if (source_subwords is None) != (target_subwords is None):
            raise TaskError("a translation preprocessor has subword models for both sides or for none")
        self.source_subwords, self.target_subwords = source_subwords, target_subwords  # SentencePiece models
        if self.subwords:
            self.source_tokenizer = subwords.tokenizer(source_subwords, name="source_subwords")
            self.target_tokenizer = subwords.tokenizer(target_subwords, name="target_subwords")
        else:
            self.source_lookup = text.lookup_layer(self.source_vocabulary, name="source_lookup")
            self.target_lookup = text.lookup_layer(self.target_vocabulary, name="target_lookup")
            self.target_words = text.lookup_layer(self.target_vocabulary, invert=True, name="target_words")

    @property
    def subwords(self) -> bool:
        """True when the model reads and writes SentencePiece subword units, False for words."""
        return self.source_subwords is not None

    @property
    def serving_imports(self) -> tuple[str, ...]:
        """Modules an export must import before loading (common.export): tensorflow-text's ops for subwords."""
        return subwords.SERVING_IMPORTS if self.subwords else ()

    # --- fitting and saving ---------------------------------------------------------------------
    @classmethod
    def fit(cls, task, data, workdir: Path) -> "Preprocessor":
        config = task.config
        options = {"lowercase_source": config.lowercase_source, "lowercase_target": config.lowercase_target,
                   "attach_target": config.attach_punctuation}
        sources, targets = [pair.source for pair in data.train], [pair.target for pair in data.train]
        source_tokens = text.tokenize(sources, config.lowercase_source)
        target_tokens = text.tokenize(targets, config.lowercase_target, config.attach_punctuation)
        # The baseline's lexicon is of words in either case: it measures what reading whole sentences buys.
        lexicon = WordByWordBaseline.fit(source_tokens, target_tokens).lexicon
        apostrophe = (majority_apostrophe(targets) if config.target_apostrophe == "majority"
                      else _APOSTROPHES[config.target_apostrophe])
        if config.subword_vocabulary:
            models = {side: fit_subwords(texts, config, side, lowercase) for side, texts, lowercase in
                      (("source", sources, config.lowercase_source), ("target", targets, config.lowercase_target))}
            options.update(source_subwords=models["source"], target_subwords=models["target"])
            vocabularies = {side: subwords.vocabulary(model) for side, model in models.items()}
            source_units = subword_lengths(sources, models["source"], config.lowercase_source)
            target_units = subword_lengths(targets, models["target"], config.lowercase_target)
        else:
            vocabularies = {side: text.full_vocabulary(text.fit_vocabulary(tokens, config.max_vocabulary,
                                                                            config.min_count))
                            for side, tokens in (("source", source_tokens), ("target", target_tokens))}
            source_units = [len(tokens) for tokens in source_tokens]
            target_units = [len(tokens) for tokens in target_tokens]
        return cls(
            source_vocabulary=vocabularies["source"], target_vocabulary=vocabularies["target"],
            # Array widths come from the training data, capped by the config (no wasted padding).
            source_length=min(config.max_source_tokens, max(source_units)),
            target_length=min(config.max_target_tokens, max(target_units)),
            reverse_source=config.reverse_source,
            lexicon=lexicon,
            apostrophe=apostrophe,
            **options,
        )

    def get_state(self) -> dict[str, Any]:
        # The subword models are files (save_files); the vocabularies list their pieces, for reading.
        return {"source_vocabulary": self.source_vocabulary, "target_vocabulary": self.target_vocabulary,
                "source_length": self.source_length, "target_length": self.target_length,
                "reverse_source": self.reverse_source, "lexicon": self.lexicon,
                "lowercase_source": self.lowercase_source, "lowercase_target": self.lowercase_target,
                "attach_target": self.attach_target, "apostrophe": self.apostrophe, "subwords": self.subwords}

    def save_files(self, folder: Path) -> None:
        if self.subwords:
            (Path(folder) / _SUBWORD_FILES["source"]).write_bytes(self.source_subwords)
            (Path(folder) / _SUBWORD_FILES["target"]).write_bytes(self.target_subwords)

    @classmethod
    def from_state(cls, state: dict[str, Any], folder: Path) -> "Preprocessor":
        required = {"source_vocabulary", "target_vocabulary", "source_length", "target_length", "reverse_source",
                    "lexicon"}
        # Later additions; a state without them loads with the behaviour of its time.
        expected = required | {"lowercase_source", "lowercase_target", "attach_target", "apostrophe", "subwords"}
        if not required <= set(state) <= expected:
            raise TaskError(f"Preprocessor state in {str(folder)!r} has keys {sorted(state)}; expected "
                            f"{sorted(expected)}: retrain in a new --workdir")
        state = dict(state)
        if state.pop("subwords", False):
            for side, name in _SUBWORD_FILES.items():
                path = Path(folder) / name
                if not path.is_file():
                    raise TaskError(f"Preprocessor in {str(folder)!r} uses subword units but {name} is missing; "
                                    "retrain in a new --workdir")
                state[f"{side}_subwords"] = path.read_bytes()
        return cls(**state)

    def layers(self) -> list[Any]:
        if self.subwords:  # tf.Modules holding the SentencePiece models: tracked by the export
            return [self.source_tokenizer, self.target_tokenizer]
        return [self.source_lookup, self.target_lookup, self.target_words]

    # --- the one encode (TF ops): tf.data and the serving graph ----------------------------------
    def encode(self, sources: tf.Tensor) -> tf.Tensor:
        """[B] raw source strings → int32 [B, source_length] ids (an empty sentence = one [UNK])."""
        if self.subwords:
            return subwords.encode(sources, self.source_tokenizer, self.source_length, reverse=self.reverse_source,
                                   empty_as_unknown=True, lowercase=self.lowercase_source)
        return text.encode(sources, self.source_lookup, self.source_length, reverse=self.reverse_source,
                           empty_as_unknown=True, lowercase=self.lowercase_source)

    def encode_target(self, targets: tf.Tensor) -> tf.Tensor:
        """[B] raw target strings → int32 [B, target_length + 2]: START, tokens, END, padding."""
        if self.subwords:
            return subwords.encode(targets, self.target_tokenizer, self.target_length + 2, add_start=True,
                                   add_end=True, lowercase=self.lowercase_target)
        return text.encode(targets, self.target_lookup, self.target_length + 2, add_start=True, add_end=True,
                           lowercase=self.lowercase_target, attach=self.attach_target)

    def decode(self, ids) -> tf.Tensor:
        """Generated target ids int32 [B, L] → [B] readable strings (up to the end marker), apostrophes
        written as the target data writes them. Ids of another Keras backend (a JAX array from the
        decoder) enter TensorFlow through NumPy."""
        if not tf.is_tensor(ids):
            ids = np.asarray(ids)
        if self.subwords:
            return self._with_apostrophe(subwords.decode(ids, self.target_tokenizer))
        return self._with_apostrophe(text.decode(ids, self.target_words, attach=self.attach_target))

    def _with_apostrophe(self, sentences: tf.Tensor) -> tf.Tensor:
        if self.apostrophe == PLAIN_APOSTROPHE:  # what standardisation wrote: nothing to do
            return sentences
        return tf.strings.regex_replace(sentences, PLAIN_APOSTROPHE, self.apostrophe)

    # --- the same tokenisation on Python lists (statistics, the baseline) -------------------------
    def source_tokens(self, sources: Sequence[str]) -> list[list[str]]:
        return text.tokenize(list(sources), self.lowercase_source)

    def target_tokens(self, targets: Sequence[str]) -> list[list[str]]:
        return text.tokenize(list(targets), self.lowercase_target, self.attach_target)

    def join_target(self, token_lists: Sequence[Sequence[str]]) -> list[str]:
        """Target word lists (``target_tokens``) → readable strings, as the export writes words."""
        joined = join_words(token_lists, self.attach_target)
        return [sentence.replace(PLAIN_APOSTROPHE, self.apostrophe) for sentence in joined]

    # --- what the model reads and writes, as labels (attention picture) and statistics -----------
    def source_units(self, sources: Sequence[str]) -> list[list[str]]:
        """Each source's tokens as the model reads them (before cutting and reversal), readable:
        words, or subword pieces without SentencePiece's word-start mark."""
        if not self.subwords:
            return self.source_tokens(sources)
        units = subwords.pieces(list(sources), self.source_tokenizer, self.source_vocabulary, self.lowercase_source)
        return [[subwords.readable(piece) for piece in row] for row in units]

    def target_labels(self, ids: Sequence[int]) -> list[str]:
        """Target ids → readable token labels (words, or subword pieces without the word-start mark)."""
        labels = [self.target_vocabulary[int(i)] for i in ids]
        return [subwords.readable(label) for label in labels] if self.subwords else labels

    def unknown_rates(self, sources: Sequence[str], targets: Sequence[str]) -> dict[str, float]:
        """Fraction of the tokens of ``sources``/``targets`` that the vocabularies do not hold (they become
        [UNK]): of the words, or of the subword pieces (characters never seen in training)."""
        if not self.subwords:
            return {"source": unknown_rate(self.source_tokens(sources), self.source_vocabulary),
                    "target": unknown_rate(self.target_tokens(targets), self.target_vocabulary)}
        rates = {}
        for side, texts, tokenizer, lowercase in (
                ("source", sources, self.source_tokenizer, self.lowercase_source),
                ("target", targets, self.target_tokenizer, self.lowercase_target)):
            ids = subwords.tokenize(list(texts) or [""], tokenizer, lowercase).flat_values.numpy()
            rates[side] = float(np.mean(ids == text.UNKNOWN_ID)) if ids.size else 0.0
        return rates

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


def fit_subwords(texts: Sequence[str], config, side: str, lowercase: bool) -> bytes:
    """One side's SentencePiece model (config.subword_vocabulary, config.subword_model) fitted on ``texts``;
    a model SentencePiece cannot fit is a TaskError naming the config key."""
    try:
        return subwords.train(texts, config.subword_vocabulary, config.subword_model, lowercase, config.seed)
    except ValueError as error:
        raise TaskError(f"subword_vocabulary={config.subword_vocabulary} ({side} side of the training split): "
                        f"{error}") from None


def subword_lengths(texts: Sequence[str], model: bytes, lowercase: bool) -> list[int]:
    """Subword pieces per text (as ``encode`` splits them), for the array widths."""
    ids = subwords.tokenize(texts, subwords.tokenizer(model), lowercase)
    return ids.row_lengths().numpy().tolist()


def majority_apostrophe(targets: Sequence[str]) -> str:
    """The apostrophe most of ``targets`` use: typographic ’ only when it outnumbers the plain ' (ties
    and texts without any keep the plain one, what standardisation writes)."""
    typographic = sum(target.count(TYPOGRAPHIC_APOSTROPHE) for target in targets)
    plain = sum(target.count(PLAIN_APOSTROPHE) for target in targets)
    return TYPOGRAPHIC_APOSTROPHE if typographic > plain else PLAIN_APOSTROPHE


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
