"""The fitted preprocessing (vocabulary, image encoder, baseline) and records → tf.data.

Tokenisation is deliberately simple and close to coco-caption's PTB tokenisation for training:
lowercase, keep runs of letters/digits (punctuation dropped). It is written once, in TensorFlow
string ops (``tokenize_tensor``); the Python side (fitting the vocabulary, the baseline) runs the
same ops. The vocabulary is fitted on the training captions only; words seen fewer than
``min_count`` times map to <unk>.

Sequences (T = max_caption_length + 1):
    caption_tokens = [<start>, w1, ..., wn, 0, ...]   the decoder input (teacher forcing)
    next_tokens    = [w1, ..., wn, <end>, 0, ...]     what each step must predict (0 = padding, masked)
Right padding with 0 keeps the LSTM cuDNN-eligible.

``Preprocessor`` holds everything fitted on the training split: the vocabulary, the image encoder
(``small_cnn`` pretrained on the training images to predict which caption words they show, unless
weights are given) and the most-frequent-caption baseline. Its ``encode`` (captions → token ids)
feeds tf.data; ``encode_images`` (JPEG/PNG bytes → features) and ``decode`` (token ids → text) run
inside the exported ``caption`` endpoint. Image features of the splits come from the same encoder
through the on-disk cache (common.feature_cache.cached_feature_table: one memory-mapped table per split), so an
epoch never runs the CNN and the features never become a tf.data graph constant.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import shutil
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from common import encoder_pretraining, encoders, feature_cache, preprocessor, training
from common import images as image_utils
from common.errors import TaskError
from common.io import atomic_path, atomic_write_json
from common.pipelines import AUTOTUNE
from common.task import TaskData
from common.token_ids import END_ID, PAD_ID, START_ID  # noqa: F401  (ids shared with the model and decoders)
from common.token_ids import UNKNOWN_ID as UNK_ID
from data import DataError
from data.coco_captions import CaptionedImage, coco_captions_payload

logger = logging.getLogger(__name__)

PAD, UNK, START, END = "<pad>", "<unk>", "<start>", "<end>"
SPECIAL_TOKENS = (PAD, UNK, START, END)
ENCODER_WEIGHTS = "encoder.weights.h5"  # in the preprocessor folder
PRETRAINING_BATCH_SIZE = 64  # images per step of the small_cnn word-presence pretraining
MINIMUM_PRETRAINING_IMAGES = 10  # the pretraining validates on 10% of the training images: at least one


@dataclasses.dataclass
class CaptionData(TaskData):
    """The three splits as records (image path + reference captions), and where features are cached."""

    train: list[CaptionedImage]
    validation: list[CaptionedImage]
    test: list[CaptionedImage]
    feature_cache: Path  # WORKDIR/cache/features: one .npy per (image file, encoder weights) + one table per split


# --- tokenisation and the vocabulary ------------------------------------------------------------------


def tokenize_tensor(captions: tf.Tensor) -> tf.RaggedTensor:
    """[N] string → [N, None] words: lowercase (Unicode-aware), runs of a-z / 0-9, everything else dropped."""
    lowered = tf.strings.lower(tf.convert_to_tensor(captions, tf.string), encoding="utf-8")
    return tf.strings.split(tf.strings.strip(tf.strings.regex_replace(lowered, "[^a-z0-9]+", " ")))


def tokenize(captions: Sequence[str]) -> list[list[str]]:
    """Python strings → word lists, through ``tokenize_tensor`` (the ops the training pipeline runs)."""
    if not captions:
        return []
    return [[word.decode("utf-8") for word in row] for row in tokenize_tensor(list(captions)).to_list()]


class Vocabulary:
    """Word ↔ id mapping; ids 0..3 are <pad>, <unk>, <start>, <end>; then words by frequency."""

    def __init__(self, words: Sequence[str]):
        if tuple(words[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a vocabulary starts with {SPECIAL_TOKENS}, got {tuple(words[:4])}")
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}

    @classmethod
    def fit(cls, captions: Iterable[str], min_count: int = 1) -> "Vocabulary":
        counts = collections.Counter(word for words in tokenize(list(captions)) for word in words)
        # Most frequent first, ties alphabetical: the same captions always give the same ids.
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        if not kept:
            raise DataError(f"no word occurs at least min_count={min_count} times in the training captions")
        return cls([*SPECIAL_TOKENS, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def ids(self, words: Sequence[str]) -> list[int]:
        return [self.index.get(word, UNK_ID) for word in words]


def tokens_to_strings(tokens: tf.Tensor, words: tf.Tensor) -> tf.Tensor:
    """In-graph detokenisation: int32 [N, L] → string [N], words up to the first <end>/padding.

    words: string [V] (the vocabulary); special tokens are dropped.
    """
    tokens = tf.convert_to_tensor(tokens, tf.int32)
    stopped = tf.math.cumsum(
        tf.cast(tf.equal(tokens, END_ID) | tf.equal(tokens, PAD_ID), tf.int32), axis=1
    ) > 0  # True from the first <end>/<pad> on
    special = tokens < len(SPECIAL_TOKENS)
    pieces = tf.where(stopped | special, tf.constant("", tf.string), tf.gather(words, tokens))
    joined = tf.strings.reduce_join(pieces, axis=1, separator=" ")
    return tf.strings.strip(tf.strings.regex_replace(joined, " +", " "))


def most_frequent_caption(records: Sequence[CaptionedImage]) -> str:
    """The baseline: the training caption (normalised: its words, space-joined) that occurs most often."""
    counts = collections.Counter(" ".join(words) for words in tokenize([c for r in records for c in r.captions]))
    return max(sorted(counts), key=lambda k: counts[k])


# --- the fitted state ------------------------------------------------------------------------------------


class Preprocessor(preprocessor.Preprocessor):
    """Vocabulary + image encoder + the baseline's caption, fitted on the training split."""

    task = "captioning"

    def __init__(self, words: Sequence[str], max_words: int, encoder: keras.Model, encoder_facts: dict[str, Any],
                 baseline_caption: str):
        self.vocabulary = Vocabulary(words)
        self.max_words = int(max_words)  # words kept per caption; sequences are max_words + 1 long
        self.encoder = encoder  # float images [B, S, S, 3] in [0, 255] → features [B, D]; frozen
        self.encoder_facts = dict(encoder_facts)  # how it was built and pretrained (JSON)
        self.baseline_caption = baseline_caption
        self.image_size = int(encoder.inputs[0].shape[1])
        self.feature_dim = int(encoder.outputs[0].shape[-1])
        # The feature cache's key: architecture, input size and every weight value.
        self.encoder_key = f"{encoder_facts['name']}-{self.image_size}-{encoders.weights_fingerprint(encoder)}"
        # ids: 0 = mask "<pad>", 1 = OOV "<unk>", then <start>, <end> and the words: the Vocabulary's ids.
        self.lookup = keras.layers.StringLookup(vocabulary=self.vocabulary.words[2:], mask_token=PAD, oov_token=UNK,
                                                num_oov_indices=1, name="caption_lookup")

    # --- fitting ---------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, task, data: CaptionData, workdir: Path) -> "Preprocessor":
        config = task.config
        encoders.check_weights_request(config.encoder, config.encoder_weights, task.download)
        vocabulary = Vocabulary.fit((c for r in data.train for c in r.captions), config.min_count)
        encoder, facts = _fit_encoder(config, data.train, vocabulary)
        return cls(vocabulary.words, config.max_caption_length, encoder, facts, most_frequent_caption(data.train))

    def get_state(self) -> dict[str, Any]:
        return {"words": self.vocabulary.words, "max_words": self.max_words, "encoder": self.encoder_facts,
                "encoder_key": self.encoder_key, "baseline_caption": self.baseline_caption}

    def save_files(self, folder: Path) -> None:
        self.encoder.save_weights(str(Path(folder) / ENCODER_WEIGHTS))

    @classmethod
    def from_state(cls, state: dict[str, Any], folder: Path) -> "Preprocessor":
        facts = state["encoder"]
        weights = Path(folder) / ENCODER_WEIGHTS
        if not weights.is_file():
            raise TaskError(f"The fitted preprocessor in {str(folder)!r} lacks {ENCODER_WEIGHTS}; retrain in a new "
                            "--workdir")
        encoder = encoders.build_encoder(facts["name"], facts["image_size"], str(weights),
                                            feature_dim=facts["feature_dim"])
        encoder.trainable = False
        loaded = cls(state["words"], state["max_words"], encoder, facts, state["baseline_caption"])
        if loaded.encoder_key != state["encoder_key"]:
            raise TaskError(f"The encoder rebuilt from {str(weights)!r} differs from the fitted one "
                            f"({loaded.encoder_key} vs {state['encoder_key']}); retrain in a new --workdir")
        return loaded

    def layers(self) -> list[Any]:
        return [self.encoder]

    # --- encoding --------------------------------------------------------------------------------------
    def encode(self, captions: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """[N] caption strings → (caption_tokens, next_tokens), int32 [N, max_words + 1] each."""
        words = tokenize_tensor(captions)[:, : self.max_words]
        ids = tf.cast(words.with_flat_values(self.lookup(words.flat_values)), tf.int32)
        count = ids.nrows()
        start = tf.RaggedTensor.from_tensor(tf.fill([count, 1], START_ID))
        end = tf.RaggedTensor.from_tensor(tf.fill([count, 1], END_ID))
        shape = [None, self.max_words + 1]
        inputs = tf.concat([start, ids], axis=1).to_tensor(default_value=PAD_ID, shape=shape)
        targets = tf.concat([ids, end], axis=1).to_tensor(default_value=PAD_ID, shape=shape)
        return inputs, targets

    def encode_images(self, image_bytes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """[N] JPEG/PNG bytes → (features float32 [N, D], problems string [N]: "" or why it did not decode)."""
        pixels, problems = image_utils.decode_images_safe(image_bytes, self.image_size)
        return tf.cast(self.encoder(pixels, training=False), tf.float32), problems

    def decode(self, tokens: tf.Tensor) -> tf.Tensor:
        """Generated ids int32 [N, L] → captions string [N] (in-graph; the export and evaluate use it)."""
        return tokens_to_strings(tokens, tf.constant(self.vocabulary.words))

    def features(self, records: Sequence[CaptionedImage], cache_dir: Path, batch_size: int) -> np.ndarray:
        """float32 [N, D] encoder features of the records' images, memory-mapped read-only from the on-disk
        feature table of these images (common.feature_cache.cached_feature_table): nothing dataset-sized is loaded."""
        return feature_cache.cached_feature_table(self.encoder, self.encoder_key, [r.path for r in records], cache_dir,
                                                batch_size)


def _fit_encoder(config, records: Sequence[CaptionedImage], vocabulary: Vocabulary) -> tuple[keras.Model, dict]:
    """The image encoder; small_cnn without given weights is pretrained on the training images first."""
    facts: dict[str, Any] = {"name": config.encoder, "image_size": config.image_size,
                             "feature_dim": config.encoder_feature_dim, "weights": config.encoder_weights or "random"}
    weights_path = config.encoder_weights
    with tempfile.TemporaryDirectory() as temporary:
        if config.encoder == "small_cnn" and weights_path is None and config.encoder_pretrain_epochs > 0:
            if len(records) < MINIMUM_PRETRAINING_IMAGES:
                raise DataError(f"the encoder pretraining needs at least {MINIMUM_PRETRAINING_IMAGES} training "
                                f"images (10% validate it), got {len(records)}; or set encoder_pretrain_epochs=0")
            encoder = encoders.build_encoder("small_cnn", config.image_size, feature_dim=config.encoder_feature_dim)
            pixels = image_utils.load_pixels([r.path for r in records], config.image_size)
            start = time.perf_counter()
            history = encoder_pretraining.pretrain_encoder(
                encoder, pixels, word_presence(records, vocabulary), epochs=config.encoder_pretrain_epochs,
                batch_size=PRETRAINING_BATCH_SIZE, verbose=training.verbosity(config),
            )
            facts["weights"] = "pretrained on the training images (caption word presence)"
            facts["pretraining"] = {"epochs": config.encoder_pretrain_epochs, "seconds": time.perf_counter() - start,
                                    "history": history}
            weights_path = str(Path(temporary) / "small_cnn.weights.h5")
            encoder.save_weights(weights_path)
        # Built from the weights file, as from_state rebuilds it: fitting and loading give one model.
        encoder = encoders.build_encoder(config.encoder, config.image_size, weights_path,
                                            feature_dim=config.encoder_feature_dim)
    encoder.trainable = False
    return encoder, facts


def word_presence(records: Sequence[CaptionedImage], vocabulary: Vocabulary) -> np.ndarray:
    """float32 [N, V]: 1 where a (non-special) vocabulary word occurs in any caption of image n."""
    targets = np.zeros((len(records), len(vocabulary)), np.float32)
    for row, record in enumerate(records):
        for words in tokenize(list(record.captions)):
            for token in vocabulary.ids(words):
                if token >= len(SPECIAL_TOKENS):
                    targets[row, token] = 1.0
    return targets


# --- tf.data -----------------------------------------------------------------------------------------------


def caption_dataset(
    features: np.ndarray,
    captions_per_image: Sequence[Sequence[str]],
    preprocessor: Preprocessor,
    batch_size: int,
    shuffle: bool,
    seed: int,
) -> tf.data.Dataset:
    """One example per (image, caption) pair; image features are gathered by index, not copied.

    features: float32 [N_images, D], in memory or memory-mapped (``Preprocessor.features``);
    captions_per_image[i]: the references of image i.
    Yields ({"image_features": [B, D], "caption_tokens": [B, T]}, next_tokens [B, T]).

    The dataset runs over example positions only; each batch's features and caption strings are read
    from the NumPy arrays (common.feature_cache.gather_rows), so neither the feature table nor the captions
    become constants of the tf.data graph (COCO train: 0.97 GB of features, 591,435 captions). Shuffling
    positions draws the same order as shuffling the (image, caption) pairs themselves did.
    """
    image_index = np.array([i for i, captions in enumerate(captions_per_image) for _ in captions], np.int32)
    flat = np.array([caption.encode("utf-8") for captions in captions_per_image for caption in captions], object)

    def encode(positions):
        rows, captions = feature_cache.gather_rows([image_index, flat], positions)
        (image_features,) = feature_cache.gather_rows([features], rows)
        inputs, targets = preprocessor.encode(captions)
        return {"image_features": tf.cast(image_features, tf.float32), "caption_tokens": inputs}, targets

    dataset = tf.data.Dataset.range(len(flat))
    if shuffle:
        dataset = dataset.shuffle(buffer_size=len(flat), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).map(encode, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


# --- what evaluate writes ----------------------------------------------------------------------------------


def write_predictions(folder: Path, records: Sequence[CaptionedImage], ids: Sequence[int],
                      predictions: Sequence[str]) -> None:
    """The test references as a COCO captions file and the predictions as a COCO results file."""
    numbered = [dataclasses.replace(r, image_id=i) for r, i in zip(records, ids)]
    atomic_write_json(folder / "captions_test_annotations.json",
                      coco_captions_payload(numbered, "references of the evaluated test images"))
    atomic_write_json(folder / "captions_test_results.json",
                      [{"image_id": i, "caption": p} for i, p in zip(ids, predictions)])


def write_grid(path: Path, records: Sequence[CaptionedImage], predictions: Sequence[str]) -> None:
    """PNG grid: each image with its generated caption (G) and first reference (R)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    columns = min(4, len(records))
    rows = int(np.ceil(len(records) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.9 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, record, prediction in zip(axes.flat, records, predictions):
        with Image.open(record.path) as image:
            axis.imshow(np.asarray(image.convert("RGB")))
        lines = textwrap.wrap("G: " + (prediction or "(empty)"), 40) + textwrap.wrap("R: " + record.captions[0], 40)
        axis.set_title("\n".join(lines), fontsize=7, loc="left")
    figure.tight_layout()
    with atomic_path(path, suffix=".png") as temporary:
        figure.savefig(temporary, dpi=90, format="png")
    plt.close(figure)


def copy_samples(records: Sequence[CaptionedImage], folder: Path, count: int = 2) -> list[str]:
    """Copies the first ``count`` images into ``folder``; returns the copies' paths."""
    folder.mkdir(parents=True, exist_ok=True)
    copies = []
    for record in records[:count]:
        target = folder / Path(record.path).name
        shutil.copyfile(record.path, target)
        copies.append(str(target))
    return copies
