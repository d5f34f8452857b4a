"""Image captioning: CNN encoder (features cached on disk) + Show-and-Tell LSTM decoder, beam search.

    python run.py captioning

Measured on the synthetic default (2,000 training scenes, 300 test scenes, beam 3, official
coco-caption metrics): CIDEr 1.70 (BLEU-4 0.54, METEOR 0.38) against CIDEr 0.76 (BLEU-4 0.33)
for the most-frequent-caption baseline; 9.5 minutes wall (4.5 CPU-minutes) on 2 CPU cores shared
with other jobs. ``--preset tiny`` runs end to end in about a minute there (25 CPU-seconds).

Real data (``--data-dir``, format auto-detected from the files in the folder):
  * COCO: ``annotations/captions_{train,val}20XX.json`` + ``train20XX/`` ``val20XX/`` image folders
    (the val file is split in half into validation and test unless ``captions_test*.json`` exists);
  * Karpathy split: a ``dataset_*.json`` in the folder, images under ``<folder>/<filepath>/<filename>``;
  * Flickr8k: ``Flickr8k.token.txt`` + ``Flickr_8k.{train,dev,test}Images.txt`` + the image folder.
Metrics: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D with the official coco-caption protocol (pycocoevalcap,
Java). ``python run.py captioning score --annotations ANN.json --predictions RES.json`` scores any
COCO-format results file. The exported SavedModel's ``caption`` endpoint maps JPEG/PNG bytes to
captions (and a per-image ``problem`` message for undecodable inputs).
"""

from __future__ import annotations

import hashlib
import json
import logging
import textwrap
import time
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from common import images as image_utils
from common import training
from common.io import atomic_path, atomic_write_json
from common.metrics import captions as caption_metrics
from common.task import Task, TaskData, TaskError
from data import DataError
from data.coco_captions import CaptionedImage, read_coco_captions
from data.flickr8k import TOKEN_FILE, read_flickr8k
from data.karpathy import read_karpathy_split
from tasks.captioning import model as captioning_model
from tasks.captioning import pipeline
from tasks.captioning.config import Config

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


# --- reading the splits --------------------------------------------------------------------------------


def _coco_splits(folder: Path, require_images: bool = True) -> dict[str, list[CaptionedImage]]:
    """COCO layout: annotations/captions_<name>.json with images in <folder>/<name>/ (or images/)."""
    annotation_dir = folder / "annotations"
    files = {path.stem[len("captions_"):]: path for path in sorted(annotation_dir.glob("captions_*.json"))}

    def pick(prefix: str) -> tuple[str, Path] | None:
        matches = [(name, path) for name, path in files.items() if name.startswith(prefix)]
        if len(matches) > 1:
            raise DataError(f"{str(annotation_dir)!r} holds several captions_{prefix}*.json files: {[str(p) for _, p in matches]}")
        return matches[0] if matches else None

    def image_dir(name: str) -> Path:
        for candidate in (folder / name, folder / "images"):
            if candidate.is_dir():
                return candidate
        return folder

    train, validation, test = pick("train"), pick("val"), pick("test")
    if train is None or validation is None:
        raise DataError(
            f"COCO folder {str(folder)!r}: expected annotations/captions_train*.json and annotations/captions_val*.json, "
            f"found {sorted(str(p.name) for p in files.values()) or 'none'}"
        )
    splits = {"train": read_coco_captions(train[1], image_dir(train[0]), require_images)}
    validation_records = read_coco_captions(validation[1], image_dir(validation[0]), require_images)
    if test is not None:
        splits["validation"] = validation_records
        splits["test"] = read_coco_captions(test[1], image_dir(test[0]), require_images)
    else:
        if len(validation_records) < 2:
            raise DataError(f"{str(validation[1])!r} has {len(validation_records)} image(s); at least 2 are needed to split it into validation and test")
        # No official test captions: the first half of the val file (by image id) validates, the second tests.
        half = len(validation_records) // 2
        splits["validation"], splits["test"] = validation_records[:half], validation_records[half:]
    return splits


def detect_format(folder: Path) -> str:
    if sorted(folder.glob("dataset_*.json")):
        return "karpathy"
    if (folder / TOKEN_FILE).is_file():
        return "flickr8k"
    if sorted((folder / "annotations").glob("captions_*.json")):
        return "coco"
    raise DataError(
        f"--data-dir {str(folder)!r}: no captioning data recognised; expected a Karpathy dataset_*.json, "
        f"a Flickr8k {TOKEN_FILE}, or COCO annotations/captions_*.json"
    )


def read_splits(folder: Path, dataset: str = "auto", require_images: bool = True) -> tuple[str, dict[str, list[CaptionedImage]]]:
    """(format, {split: records}) of a real or synthetic data folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"--data-dir {str(folder)!r} is not a folder; the captioning readers take a folder")
    kind = detect_format(folder) if dataset == "auto" else dataset
    if kind == "karpathy":
        split_files = sorted(folder.glob("dataset_*.json"))
        if not split_files:
            raise DataError(f"{str(folder)!r}: no Karpathy split file dataset_*.json")
        return kind, read_karpathy_split(split_files[0], folder, require_images)
    if kind == "flickr8k":
        return kind, read_flickr8k(folder, require_images=require_images)
    return "coco", _coco_splits(folder, require_images)


def _cross_check(reference: dict[str, list[CaptionedImage]], other: dict[str, list[CaptionedImage]], reader: str) -> None:
    """The synthetic folder holds one dataset in three formats: every reader must see the same thing."""
    for split in SPLITS:
        mine = {Path(r.path).name: r.captions for r in reference[split]}
        theirs = {Path(r.path).name: r.captions for r in other[split]}
        if mine != theirs:
            raise DataError(f"The {reader} reader disagrees with the COCO reader on the {split} split of the synthetic data")


# --- the task ------------------------------------------------------------------------------------------


class CaptioningTask(Task):
    name = "captioning"
    description = "Image captioning (COCO/Flickr8k): cached CNN features + Show-and-Tell LSTM, beam search, COCO metrics"
    Config = Config
    primary_metric = "CIDEr"
    higher_is_better = True
    score_arguments = ("annotations", "predictions")
    extra_packages = ("pycocotools", "pycocoevalcap", "nltk", "pillow", "matplotlib")

    # --- data ------------------------------------------------------------------------------------------
    def _records(self, data_dir: Path | None, workdir: Path) -> tuple[dict[str, list[CaptionedImage]], dict[str, Any]]:
        config = self.config
        if data_dir is None:
            from data.synthetic.captions import write_caption_dataset

            folder = workdir / "data" / "synthetic_captions"
            parameters = write_caption_dataset(
                folder,
                {"train": config.train_images, "validation": config.validation_images, "test": config.test_images},
                image_size=max(config.image_size, 64),
                max_objects=config.max_objects,
                seed=config.seed,
            )
            _, splits = read_splits(folder, "coco")
            _cross_check(splits, read_splits(folder, "flickr8k")[1], "Flickr8k")
            _cross_check(splits, read_splits(folder, "karpathy")[1], "Karpathy")
            info = {"source": "synthetic", "path": str(folder), "format": "coco (+ flickr8k and karpathy files, cross-checked)",
                    "generator": parameters}
        else:
            kind, splits = read_splits(Path(data_dir), config.dataset)
            info = {"source": str(Path(data_dir).resolve()), "format": kind}
        if config.max_test_images and len(splits["test"]) > config.max_test_images:
            splits["test"] = splits["test"][: config.max_test_images]
        return splits, info

    def _encoder(self, splits, vocabulary: pipeline.Vocabulary, workdir: Path) -> tuple[keras.Model, str | None, dict]:
        """Builds the image encoder; small_cnn is pretrained on the train split (cached by its inputs)."""
        config = self.config
        facts: dict[str, Any] = {"name": config.encoder, "image_size": config.image_size}
        weights_path = config.encoder_weights
        if config.encoder == "small_cnn" and weights_path is None and config.encoder_pretrain_epochs > 0:
            identity = {
                "images": [(r.path, Path(r.path).stat().st_size, Path(r.path).stat().st_mtime_ns) for r in splits["train"]],
                "captions": [r.captions for r in splits["train"]],
                "vocabulary": vocabulary.words,
                "config": [config.image_size, config.encoder_feature_dim, config.encoder_pretrain_epochs, config.seed],
            }
            key = hashlib.sha1(json.dumps(identity).encode()).hexdigest()[:12]
            weights_file = workdir / "encoder" / f"small_cnn-{key}.weights.h5"
            if not weights_file.is_file():
                encoder = image_utils.build_encoder("small_cnn", config.image_size, feature_dim=config.encoder_feature_dim)
                pixels = self._decode_files([r.path for r in splits["train"]])
                targets = np.zeros((len(splits["train"]), len(vocabulary)), np.float32)
                for row, record in enumerate(splits["train"]):
                    for caption in record.captions:
                        for token in vocabulary.encode(caption, 10_000):
                            if token >= len(pipeline.SPECIAL_TOKENS):
                                targets[row, token] = 1.0
                start = time.perf_counter()
                history = captioning_model.pretrain_encoder(encoder, pixels, targets, config)
                facts["pretraining"] = {"seconds": time.perf_counter() - start, "history": history}
                with atomic_path(weights_file, suffix=".weights.h5") as temporary:
                    encoder.save_weights(str(temporary))
            weights_path = str(weights_file)
            facts["pretrained_weights"] = weights_path
        encoder = image_utils.build_encoder(config.encoder, config.image_size, weights_path, feature_dim=config.encoder_feature_dim)
        encoder.trainable = False
        return encoder, weights_path, facts

    def _decode_files(self, paths: Sequence[str]) -> np.ndarray:
        """uint8 [N, S, S, 3] of image files (checked by read_image_bytes)."""
        batches = []
        for start in range(0, len(paths), 256):
            content = [image_utils.read_image_bytes(p) for p in paths[start : start + 256]]
            batches.append(tf.cast(tf.round(image_utils.decode_images(tf.constant(content), self.config.image_size)), tf.uint8).numpy())
        return np.concatenate(batches)

    def load_data(self, data_dir: Path | None, workdir: Path) -> TaskData:
        config = self.config
        workdir = Path(workdir)
        splits, info = self._records(data_dir, workdir)
        vocabulary = pipeline.Vocabulary.fit((c for r in splits["train"] for c in r.captions), config.min_word_count)
        encoder, weights_path, encoder_facts = self._encoder(splits, vocabulary, workdir)
        encoder_key = f"{config.encoder}-{config.image_size}-{image_utils.weights_fingerprint(encoder)}"
        cache_dir = workdir / "cache" / "features"
        start = time.perf_counter()
        features = {
            split: image_utils.cached_features(encoder, encoder_key, [r.path for r in records], cache_dir, config.feature_batch_size)
            for split, records in splits.items()
        }
        encoder_facts.update({"key": encoder_key, "feature_dim": int(features["train"].shape[1]),
                              "feature_seconds": time.perf_counter() - start, "cache": str(cache_dir)})
        make = lambda split, shuffle: pipeline.caption_dataset(  # noqa: E731
            features[split], [r.captions for r in splits[split]], vocabulary, config.max_caption_length,
            config.batch_size, shuffle=shuffle, seed=config.seed,
        )
        info.update({
            "images": {split: len(records) for split, records in splits.items()},
            "captions": {split: sum(len(r.captions) for r in records) for split, records in splits.items()},
            "vocabulary_size": len(vocabulary),
            "encoder": encoder_facts,
        })
        logger.info("Captioning data: %s", {k: info[k] for k in ("images", "captions", "vocabulary_size")})
        return TaskData(
            train=make("train", True),
            validation=make("validation", False),
            test={"records": splits["test"], "features": features["test"]},
            info=info,
            extras={"vocabulary": vocabulary, "encoder": encoder, "encoder_weights": weights_path,
                    "train_records": splits["train"], "feature_dim": int(features["train"].shape[1])},
        )

    # --- model -----------------------------------------------------------------------------------------
    def build_model(self, data: TaskData) -> keras.Model:
        model = captioning_model.build_model(self.config, len(data.extras["vocabulary"]), data.extras["feature_dim"])
        return training.compile_model(
            model, self.config,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )

    # --- evaluation ------------------------------------------------------------------------------------
    def generate(self, model: keras.Model, features: np.ndarray, beam_width: int | None = None) -> list[str]:
        """Captions of cached features, batch by batch, with beam search (or greedy for width 1)."""
        config = self.config
        generator = captioning_model.CaptionGenerator(model, config.max_caption_length)
        width = config.beam_width if beam_width is None else beam_width
        run = tf.function(
            lambda f: generator.generate(f, width, config.length_penalty)[0],
            input_signature=[tf.TensorSpec([None, features.shape[1]], tf.float32)],
        )
        tokens = [run(tf.constant(features[s : s + 256])).numpy() for s in range(0, len(features), 256)]
        return [row for batch in tokens for row in batch]

    def _teacher_forced(self, model: keras.Model, data: TaskData) -> dict[str, float]:
        """Per-token cross-entropy (nats), perplexity and next-word accuracy on the test captions."""
        records, features = data.test["records"], data.test["features"]
        dataset = pipeline.caption_dataset(features, [r.captions for r in records], data.extras["vocabulary"],
                                           self.config.max_caption_length, 256, shuffle=False, seed=0)
        total, correct, count = 0.0, 0, 0
        for inputs, targets in dataset:
            logits = model(inputs, training=False)
            mask = tf.not_equal(targets, pipeline.PAD_ID)
            losses = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=tf.cast(logits, tf.float32))
            total += float(tf.reduce_sum(tf.boolean_mask(losses, mask)))
            correct += int(tf.reduce_sum(tf.cast(tf.boolean_mask(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), targets), mask), tf.int32)))
            count += int(tf.reduce_sum(tf.cast(mask, tf.int32)))
        return {"cross_entropy_per_token": total / count, "perplexity": float(np.exp(total / count)), "token_accuracy": correct / count}

    def evaluate(self, model: keras.Model, data: TaskData, workdir: Path) -> dict[str, Any]:
        config = self.config
        workdir = Path(workdir)
        vocabulary: pipeline.Vocabulary = data.extras["vocabulary"]
        records: list[CaptionedImage] = data.test["records"]
        start = time.perf_counter()
        predictions = [vocabulary.decode(row) for row in self.generate(model, data.test["features"])]
        generation_seconds = time.perf_counter() - start
        # COCO results need integer image ids: keep COCO's, number the others (Flickr8k file names) 1..N.
        ids = [r.image_id if isinstance(r.image_id, int) else index + 1 for index, r in enumerate(records)]
        references = {image_id: list(r.captions) for image_id, r in zip(ids, records)}
        baseline_caption = _most_frequent_caption(data.extras["train_records"])
        prediction_sets = {"model": dict(zip(ids, predictions)), "baseline": {i: baseline_caption for i in ids}}
        if config.beam_width > 1:  # greedy decoding of the same model, for comparison (one more cheap pass)
            greedy = [vocabulary.decode(row) for row in self.generate(model, data.test["features"], beam_width=1)]
            prediction_sets["greedy"] = dict(zip(ids, greedy))
        scores = caption_metrics.score_caption_sets(references, prediction_sets, protocol=config.metrics, meteor=config.meteor)
        model_scores, baseline_scores = scores["model"], scores["baseline"]
        output_dir = workdir / "predictions"
        annotations = {
            "info": {"description": "references of the evaluated test images"}, "licenses": [],
            "images": [{"id": i, "file_name": Path(r.path).name} for i, r in zip(ids, records)],
            "annotations": [{"id": n + 1, "image_id": i, "caption": c}
                            for n, (i, c) in enumerate((i, c) for i, r in zip(ids, records) for c in r.captions)],
        }
        atomic_write_json(output_dir / "captions_test_annotations.json", annotations)
        atomic_write_json(output_dir / "captions_test_results.json", [{"image_id": i, "caption": p} for i, p in zip(ids, predictions)])
        for record, prediction in list(zip(records, predictions))[: config.log_examples]:
            logger.info("example %s\n  reference:  %s\n  prediction: %s", record.path, record.captions[0], prediction)
        if config.grid_images:
            _write_grid(output_dir / "caption_grid.png", records[: config.grid_images], predictions[: config.grid_images])
        distinct = len(set(predictions)) / max(len(predictions), 1)
        return {
            "CIDEr": model_scores["CIDEr"],
            "model": model_scores,
            "baseline_most_frequent_caption": {**baseline_scores, "caption": baseline_caption},
            **({"model_greedy_decoding": scores["greedy"]} if "greedy" in scores else {}),
            "teacher_forced": self._teacher_forced(model, data),
            "distinct_caption_fraction": distinct,
            "generation_seconds": generation_seconds,
            "beam_width": config.beam_width,
        }

    # --- export and predict ----------------------------------------------------------------------------
    def export(self, model: keras.Model, data: TaskData, path: Path) -> dict[str, list[Any]]:
        config = self.config
        encoder: keras.Model = data.extras["encoder"]
        generator = captioning_model.CaptionGenerator(model, config.max_caption_length)
        words = tf.constant(data.extras["vocabulary"].words)

        def caption(image_bytes):
            pixels, problems = image_utils.decode_images_safe(image_bytes, config.image_size)
            features = tf.cast(encoder(pixels, training=False), tf.float32)
            tokens, scores = generator.generate(features, config.beam_width, config.length_penalty)
            texts = captioning_model.tokens_to_strings(tokens, words)
            failed = tf.not_equal(problems, "")
            return {"caption": tf.where(failed, "", texts), "problem": problems,
                    "score": tf.where(failed, tf.zeros_like(scores), scores)}

        from common.export import write_archive

        write_archive(path, track=[encoder, model], endpoints={"caption": (caption, [tf.TensorSpec([None], tf.string)])})
        examples = [Path(r.path).read_bytes() for r in data.test["records"][:2]] + [b"this is not a JPEG"]
        return {"caption": [np.array(examples, dtype=object)]}

    def predict(self, model_dir: Path, inputs: Sequence[str]) -> list[Any]:
        """inputs: image file paths (JPEG/PNG). One {"image", "caption", "problem"} per input."""
        model_dir = Path(model_dir)
        if not (model_dir / "saved_model.pb").is_file():
            raise TaskError(f"--model {str(model_dir)!r} is not an exported SavedModel (no saved_model.pb); run the export step first")
        content = []
        for item in inputs:
            path = Path(item)
            if not path.is_file():
                raise TaskError(f"Input {item!r} is not a file; the captioning predict action takes image file paths")
            content.append(path.read_bytes())
        loaded = tf.saved_model.load(str(model_dir))
        outputs = loaded.caption(tf.constant(content))
        results = []
        for item, caption, problem, score in zip(inputs, outputs["caption"].numpy(), outputs["problem"].numpy(), outputs["score"].numpy()):
            entry = {"image": item, "caption": caption.decode("utf-8"), "score": float(score)}
            if problem:
                entry["problem"] = problem.decode("utf-8")
            results.append(entry)
        return results

    def score(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return caption_metrics.score_files(arguments["annotations"], arguments["predictions"], protocol=self.config.metrics)

    # --- benchmark -------------------------------------------------------------------------------------
    def bench(self, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
        """Training step time with cached features vs recomputing the CNN (JPEG decode + forward) every step."""
        config = self.config
        workdir = Path(workdir)
        data = self.load_data(data_dir, workdir)
        records = data.extras["train_records"]
        vocabulary = data.extras["vocabulary"]
        encoder = data.extras["encoder"]
        steps = 30
        cached_model = self.build_model(data)
        cached_seconds = _seconds_per_step(cached_model, data.train.repeat(), steps)

        # The same decoder fed by the CNN: images are read and decoded in tf.data, encoded in the step.
        decoder = captioning_model.build_model(config, len(vocabulary), data.extras["feature_dim"])
        pixels_input = keras.Input(shape=(config.image_size, config.image_size, 3), name="images")
        tokens_input = keras.Input(shape=(config.max_caption_length + 1,), dtype="int32", name="caption_tokens")
        logits = decoder({"image_features": encoder(pixels_input, training=False), "caption_tokens": tokens_input})
        end_to_end = keras.Model({"images": pixels_input, "caption_tokens": tokens_input}, logits)
        training.compile_model(end_to_end, config, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        paths = [r.path for r in records for _ in r.captions]
        inputs, targets = pipeline.caption_arrays([c for r in records for c in r.captions], vocabulary, config.max_caption_length)
        size = config.image_size

        @tf.autograph.experimental.do_not_convert  # plain TF ops; AutoGraph only warns about the closure
        def load(path, tokens, target):
            pixels = image_utils.decode_images(tf.io.read_file(path)[tf.newaxis], size)[0]
            return {"images": pixels, "caption_tokens": tokens}, target

        raw = (tf.data.Dataset.from_tensor_slices((paths, inputs, targets)).shuffle(len(paths), seed=config.seed)
               .map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(config.batch_size).prefetch(tf.data.AUTOTUNE).repeat())
        recompute_seconds = _seconds_per_step(end_to_end, raw, steps)
        steps_per_epoch = int(np.ceil(len(paths) / config.batch_size))
        return {"figures": {
            "encoder": config.encoder, "image_size": config.image_size, "train_captions": len(paths),
            "steps_per_epoch": steps_per_epoch, "timed_steps": steps,
            "cached_seconds_per_epoch": cached_seconds * steps_per_epoch,
            "recompute_seconds_per_epoch": recompute_seconds * steps_per_epoch,
            "speedup": recompute_seconds / cached_seconds,
            "feature_cache_fill_seconds": data.info["encoder"]["feature_seconds"],
        }}


def _seconds_per_step(model: keras.Model, dataset: tf.data.Dataset, steps: int) -> float:
    """Median wall time of a training step, after 3 warm-up steps (tracing excluded)."""
    times: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(dataset, steps_per_epoch=steps + 3, epochs=1, verbose=0, callbacks=[Timer()])
    return float(np.median(times[3:]))


def _most_frequent_caption(records: Sequence[CaptionedImage]) -> str:
    """The baseline: the training caption (normalised: lowercase words) that occurs most often."""
    counts: dict[str, int] = {}
    for record in records:
        for caption in record.captions:
            key = " ".join(pipeline.tokenize(caption))
            counts[key] = counts.get(key, 0) + 1
    return max(sorted(counts), key=lambda k: counts[k])


def _write_grid(path: Path, records: Sequence[CaptionedImage], predictions: Sequence[str]) -> None:
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


TASK = CaptioningTask
