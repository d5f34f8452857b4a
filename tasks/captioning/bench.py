"""``python run.py captioning bench``: a training step on cached features vs recomputing the CNN.

Both variants train the same Show-and-Tell decoder on the same captions. "cached" reads the image
features from the on-disk cache (the task's pipeline); "recompute" reads and decodes the JPEGs in
tf.data and runs the frozen encoder inside every step, as a pipeline without a cache would.
The fitted preprocessor of WORKDIR is reused when it was fitted on the same config and data,
else one is fitted here (the encoder pretraining included).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from common import images as image_utils
from common import training
from common.preprocessor import STATE_FILE, preprocessor_dir
from tasks.captioning import model as captioning_model
from tasks.captioning import pipeline

TIMED_STEPS = 30


def _same(a: Any, b: Any) -> bool:
    return json.loads(json.dumps(a, default=str)) == json.loads(json.dumps(b, default=str))


def run(task, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
    config = task.config
    workdir = Path(workdir)
    data = task.load_data(data_dir, workdir)
    folder = preprocessor_dir(workdir)
    facts = task.Preprocessor.facts(folder) if (folder / STATE_FILE).is_file() else {}
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
    return {"figures": {
        "encoder": config.encoder, "image_size": size, "train_captions": len(paths),
        "steps_per_epoch": steps_per_epoch, "timed_steps": TIMED_STEPS,
        "cached_seconds_per_epoch": cached_seconds * steps_per_epoch,
        "recompute_seconds_per_epoch": recompute_seconds * steps_per_epoch,
        "speedup": recompute_seconds / cached_seconds,
        "feature_cache_fill_seconds": cache_seconds,
    }}


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
