"""``python run.py captioning bench``: a training step on cached features vs recomputing the CNN, and the
input pipeline alone at COCO train size.

Training step (``bench_training``): both variants train the same Show-and-Tell decoder on the same
captions. "cached" reads the image features from the on-disk feature table (the task's pipeline);
"recompute" reads and decodes the JPEGs in tf.data and runs the frozen encoder inside every step, as a
pipeline without a cache would. The fitted preprocessor of WORKDIR is reused when it was fitted on the
same config and data, else one is fitted here (the encoder pretraining included).

Input pipeline (always): a seeded stand-in of the COCO 2017 train split (118,287 images x 5 captions =
591,435 examples) is written under WORKDIR/bench (reused when present): features float32 [118,287,
bench_feature_dim] (2,048 by default: 0.97 GB) in one .npy, opened with np.load(mmap_mode="r") as the
task's feature tables are, and captions of 8 to 13 words (COCO averages 10.5) drawn from a Zipf law over
10,000 words. The task's ``caption_dataset`` and
``Preprocessor.encode`` run over it; nothing is trained. Figures: examples/s over ``bench_batches``
batches, seconds to the first batch (the full shuffle buffer fills first), peak RSS (getrusage), the
resident anonymous and file-backed memory (mapped table pages are file-backed page cache, not a copy),
and the size of the dataset's graph (the table is not a graph constant). ``bench_full_size=False`` (the
tiny preset) shrinks the stand-in 100-fold so that a test runs it in seconds.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common import encoders, pipeline_bench, training
from common import images as image_utils
from common.preprocessor import STATE_FILE, preprocessor_dir
from tasks.captioning import model as captioning_model
from tasks.captioning import pipeline

TIMED_STEPS = 30


def _same(a: Any, b: Any) -> bool:
    return json.loads(json.dumps(a, default=str)) == json.loads(json.dumps(b, default=str))


FULL_IMAGES = 118_287  # COCO 2017 train images
CAPTIONS_PER_IMAGE = 5  # COCO: five references per image
SMALL_DIVISOR = 100  # bench_full_size=False: 1,182 images
CAPTION_WORDS = 10_000  # stand-in vocabulary (COCO train with min_count 5: about 10,000 words)


def run(task, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
    # The input pipeline first: its peak RSS is then its own, not the training part's.
    measured = input_pipeline(task.config, Path(workdir))
    figures = _training_figures(task, data_dir, Path(workdir)) if task.config.bench_training else {}
    return {"figures": {**figures, "input_pipeline": measured}}


def stand_in_captions(images: int, seed: int) -> tuple[list[list[str]], list[str]]:
    """(``CAPTIONS_PER_IMAGE`` seeded captions per image, their vocabulary): 8-13 words, Zipf word ids."""
    generator = np.random.default_rng(seed)
    vocabulary = [f"w{index}" for index in range(CAPTION_WORDS)]
    lengths = generator.integers(8, 14, size=images * CAPTIONS_PER_IMAGE)
    words = np.minimum(generator.zipf(1.3, size=int(lengths.sum())) - 1, CAPTION_WORDS - 1)
    ends = np.cumsum(lengths)
    flat = [" ".join(vocabulary[k] for k in words[end - n : end]) for n, end in zip(lengths, ends)]
    return [flat[i : i + CAPTIONS_PER_IMAGE] for i in range(0, len(flat), CAPTIONS_PER_IMAGE)], vocabulary


def input_pipeline(config, workdir: Path) -> dict[str, Any]:
    """The task's caption_dataset over a COCO-sized stand-in table (see the module docstring)."""
    images = FULL_IMAGES // (1 if config.bench_full_size else SMALL_DIVISOR)
    start = time.perf_counter()
    file = workdir / "bench" / f"caption_features_{images}x{config.bench_feature_dim}.npy"
    table = pipeline_bench.write_stand_in_table(file, images, config.bench_feature_dim, config.seed)
    captions, words = stand_in_captions(images, config.seed)
    # The encoder only identifies the preprocessor (its features are the stand-in table): the smallest one.
    encoder = encoders.build_encoder("small_cnn", 16, feature_dim=8)
    facts = {"name": "small_cnn", "image_size": 16, "feature_dim": 8, "weights": "random (bench stand-in)"}
    preprocessor = pipeline.Preprocessor([*pipeline.SPECIAL_TOKENS, *words], config.max_caption_length, encoder,
                                         facts, baseline_caption="")
    stand_in_seconds = time.perf_counter() - start
    start = time.perf_counter()
    dataset = pipeline.caption_dataset(table, captions, preprocessor, config.batch_size, shuffle=True,
                                       seed=config.seed)
    build_seconds = time.perf_counter() - start
    measured = pipeline_bench.measure_pipeline(dataset, config.bench_batches)
    return {"full_size": config.bench_full_size, "images": images, "captions": images * CAPTIONS_PER_IMAGE,
            "feature_dim": config.bench_feature_dim, "table_megabytes": table.nbytes / 2**20,
            "table_file": str(table.filename), "batch_size": config.batch_size, "stand_in_seconds": stand_in_seconds,
            "dataset_build_seconds": build_seconds, **measured}


def _training_figures(task, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
    config = task.config
    data = task.load_data(data_dir, workdir)
    folder = preprocessor_dir(workdir)
    facts = task.Preprocessor.saved_facts(folder) if (folder / STATE_FILE).is_file() else {}
    if _same(facts.get("config"), config.to_dict()) and _same(facts.get("data"), data.info):
        preprocessor = task.Preprocessor.load(folder)
    else:
        preprocessor = task.Preprocessor.fit(task, data, workdir)
    start = time.perf_counter()
    features = preprocessor.features(data.train, data.feature_cache, config.feature_batch_size)
    cache_seconds = time.perf_counter() - start
    records = data.train
    captions = [r.captions for r in records]
    cached = pipeline.caption_dataset(features, captions, preprocessor, config.batch_size, shuffle=True,
                                      seed=config.seed)
    cached_model = task.build_model(data, preprocessor)
    cached_seconds = _seconds_per_step(cached_model, cached.repeat(), TIMED_STEPS)

    # The same decoder fed by the CNN: images are read and decoded in tf.data, encoded in the step.
    decoder = captioning_model.build_model(config, len(preprocessor.vocabulary), preprocessor.feature_dim)
    size = preprocessor.image_size
    pixels_input = keras.Input(shape=(size, size, 3), name="images")
    tokens_input = keras.Input(shape=(config.max_caption_length + 1,), dtype="int32", name="caption_tokens")
    image_features = preprocessor.encoder(pixels_input, training=False)
    logits = decoder({"image_features": image_features, "caption_tokens": tokens_input})
    end_to_end = keras.Model({"images": pixels_input, "caption_tokens": tokens_input}, logits)
    training.compile_model(end_to_end, config, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    paths = [r.path for r in records for _ in r.captions]
    flat = [c for r in records for c in r.captions]

    @tf.autograph.experimental.do_not_convert  # plain TF ops; AutoGraph only warns about the closure
    def load(path, caption):
        pixels = image_utils.decode_images(tf.io.read_file(path)[tf.newaxis], size)[0]
        return pixels, caption

    def encode(pixels, captions):
        inputs, targets = preprocessor.encode(captions)
        return {"images": pixels, "caption_tokens": inputs}, targets

    raw = (tf.data.Dataset.from_tensor_slices((paths, flat)).shuffle(len(paths), seed=config.seed)
           .map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(config.batch_size)
           .map(encode, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE).repeat())
    recompute_seconds = _seconds_per_step(end_to_end, raw, TIMED_STEPS)
    steps_per_epoch = int(np.ceil(len(paths) / config.batch_size))
    return {
        "encoder": config.encoder, "image_size": size, "train_captions": len(paths),
        "steps_per_epoch": steps_per_epoch, "timed_steps": TIMED_STEPS,
        "cached_seconds_per_epoch": cached_seconds * steps_per_epoch,
        "recompute_seconds_per_epoch": recompute_seconds * steps_per_epoch,
        "speedup": recompute_seconds / cached_seconds,
        "feature_cache_fill_seconds": cache_seconds,
    }


def _seconds_per_step(model: keras.Model, dataset: tf.data.Dataset, steps: int) -> float:
    """Median wall time of a training step, after 3 warm-up steps (tracing excluded)."""
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    # verbose=0: a timing run; a progress bar would only add its own cost to the steps.
    model.fit(dataset, steps_per_epoch=steps + 3, epochs=1, verbose=0, shuffle=False, callbacks=[Timer()])
    return float(np.median(times[3:]))
