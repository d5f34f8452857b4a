"""Image captioning: CNN encoder (features cached on disk) + Show-and-Tell LSTM decoder, beam search.

    python run.py captioning                          # synthetic scenes written as COCO + Flickr8k + Karpathy
    python run.py captioning --preset tiny            # end to end in about a minute on a CPU
    python run.py captioning --data-dir DIR           # real data: COCO, Karpathy split, Flickr8k or a tfds dir (auto)
    python run.py captioning --download --data-dir ~/tensorflow_datasets   # fetch tfds coco_captions/2014 (~40 GB)
    python run.py captioning predict --model WORKDIR/export IMAGE [IMAGE ...]
    python run.py captioning score --annotations ANN.json --predictions RES.json [--allow-missing]
    python run.py captioning bench                    # a training step on cached features vs recomputing the CNN

The train step fits the preprocessor on the training split (vocabulary, the image encoder: small_cnn
pretrained on the training images unless weights are given, and the most-frequent-caption baseline)
and saves it beside the checkpoint. Image features come from that encoder through an on-disk cache.
Metrics on the test split: BLEU-1..4, METEOR, ROUGE-L, CIDEr-D with the official coco-caption protocol
(pycocoevalcap, Java) for the model (beam search), its greedy decoding and the baseline, plus the
teacher-forced loss. With ``tensorboard`` on, each epoch writes the captions of a few validation images
to WORKDIR/logs/tensorboard/examples (tasks/captioning/callbacks.py). The exported ``caption`` endpoint
maps JPEG/PNG bytes to captions, with a per-image ``problem`` message for undecodable inputs.
Measured numbers: tasks/captioning/README.md.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from common import progress, report, training
from common.metrics import captions as caption_metrics
from common.task import Task, TaskError
from data import tfds_sources
from data.captioning import TFDS, read_splits, read_synthetic
from data.coco_captions import read_scoring_files
from tasks.captioning import callbacks
from tasks.captioning import model as captioning_model
from tasks.captioning import pipeline
from tasks.captioning.config import Config
from tasks.captioning.pipeline import CaptionData, Preprocessor

logger = logging.getLogger(__name__)


class CaptioningTask(Task):
    name = "captioning"
    description = ("Image captioning (COCO/Flickr8k): cached CNN features + Show-and-Tell LSTM, beam search, "
                   "COCO metrics")
    Config = Config
    Preprocessor = Preprocessor
    primary_metric = "CIDEr"
    higher_is_better = True
    predict_endpoint = "caption"
    predict_usage = "IMAGE [IMAGE ...]"
    score_arguments = ("annotations", "predictions")
    score_flags = ("allow_missing",)  # --allow-missing: score a results file that skips some annotated images
    extra_packages = ("pycocotools", "pycocoevalcap", "nltk", "pillow", "matplotlib")
    can_download = True  # tfds coco_captions/2014, only with --download

    # --- data ------------------------------------------------------------------------------------------
    def load_data(self, data_dir: Path | None, workdir: Path) -> CaptionData:
        config = self.config
        caption_metrics.require_java(config.metrics)  # before any work: a run must not train, then fail to score
        workdir = Path(workdir)
        if self.download:  # only on request: tensorflow-datasets fetches COCO 2014 + Karpathy's splits
            data_dir = tfds_sources.download(tfds_sources.COCO_CAPTIONS, data_dir or workdir / "downloads")
        if data_dir is None:
            from data.synthetic.captions import write_caption_dataset

            folder = workdir / "data" / "synthetic_captions"
            sizes = {"train": config.train_images, "validation": config.validation_images, "test": config.test_images}
            parameters = write_caption_dataset(folder, sizes, image_size=max(config.image_size, 64),
                                               max_objects=config.max_objects, seed=config.seed)
            with progress.stage(f"reading the synthetic captions in {folder}"):
                splits = read_synthetic(folder)
            info = {"source": "synthetic", "path": str(folder),
                    "format": "coco (+ flickr8k and karpathy files, cross-checked)", "generator": parameters}
        else:
            with progress.stage(f"reading the captions in {data_dir}"):
                # A tfds dataset's JPEGs are written once to WORKDIR/data/tfds_images: the pipeline reads files.
                kind, splits = read_splits(Path(data_dir), TFDS if self.download else config.dataset,
                                           image_folder=workdir / "data" / "tfds_images")
            info = {"source": str(Path(data_dir).resolve()), "format": kind}
        if config.max_test_images is not None:
            splits["test"] = splits["test"][: config.max_test_images]
        info["images"] = {split: len(records) for split, records in splits.items()}
        info["captions"] = {split: sum(len(r.captions) for r in records) for split, records in splits.items()}
        logger.info("Captioning data: %s", {k: info[k] for k in ("images", "captions")})
        return CaptionData(train=splits["train"], validation=splits["validation"], test=splits["test"],
                           feature_cache=workdir / "cache" / "features", info=info)

    def datasets(self, data: CaptionData, preprocessor: Preprocessor) -> tuple[tf.data.Dataset, tf.data.Dataset]:
        config = self.config

        def make(records, shuffle: bool) -> tf.data.Dataset:
            features = preprocessor.features(records, data.feature_cache, config.feature_batch_size)
            return pipeline.caption_dataset(features, [r.captions for r in records], preprocessor, config.batch_size,
                                            shuffle=shuffle, seed=config.seed)

        return make(data.train, True), make(data.validation, False)

    def fit(self, model, data: CaptionData, preprocessor: Preprocessor, workdir: Path) -> dict[str, Any]:
        train, validation = self.datasets(data, preprocessor)
        shown = data.validation[: self.config.logged_examples]
        extra = []
        if self.config.tensorboard and shown:  # captions beside their references in TensorBoard, each epoch
            features = preprocessor.features(shown, data.feature_cache, self.config.feature_batch_size)
            extra = callbacks.caption_examples(self.config, shown, features, preprocessor.vocabulary.words, workdir)
        return training.fit(model, train, validation, self.config, workdir, monitor=self.monitor,
                            mode=self.monitor_mode, extra_callbacks=extra)

    # --- model -----------------------------------------------------------------------------------------
    def build_model(self, data: CaptionData, preprocessor: Preprocessor) -> keras.Model:
        model = captioning_model.build_model(self.config, len(preprocessor.vocabulary), preprocessor.feature_dim)
        return training.compile_model(
            model, self.config,
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )

    # --- evaluation ------------------------------------------------------------------------------------
    def _captions(self, model, preprocessor: Preprocessor, features: np.ndarray, beam_width: int) -> list[str]:
        config = self.config
        tokens = captioning_model.generate(model, features, config.max_caption_length, beam_width,
                                           config.length_penalty)
        return [text.decode("utf-8") for text in preprocessor.decode(tokens).numpy()]

    def evaluate(self, model, data: CaptionData, preprocessor: Preprocessor, workdir: Path) -> dict[str, Any]:
        config = self.config
        records = data.test
        features = preprocessor.features(records, data.feature_cache, config.feature_batch_size)
        start = time.perf_counter()
        predictions = self._captions(model, preprocessor, features, config.beam_width)
        generation_seconds = time.perf_counter() - start
        # COCO results need integer image ids: keep COCO's, number the others (Flickr8k file names) 1..N.
        ids = [r.image_id if isinstance(r.image_id, int) else index + 1 for index, r in enumerate(records)]
        references = {image_id: list(r.captions) for image_id, r in zip(ids, records)}
        baseline = preprocessor.baseline_caption
        prediction_sets = {"model": dict(zip(ids, predictions)), "most_frequent_caption": {i: baseline for i in ids}}
        if config.beam_width > 1:  # greedy decoding of the same model, for comparison (one more cheap pass)
            prediction_sets["greedy"] = dict(zip(ids, self._captions(model, preprocessor, features, 1)))
        scores = caption_metrics.score_caption_sets(references, prediction_sets, protocol=config.metrics,
                                                    meteor=config.meteor)
        output_dir = Path(workdir) / "predictions"
        pipeline.write_predictions(output_dir, records, ids, predictions)
        for record, prediction in list(zip(records, predictions))[: config.logged_examples]:
            logger.info("example %s\n  reference:  %s\n  prediction: %s", record.path, record.captions[0], prediction)
        if config.grid_images:
            pipeline.write_grid(output_dir / "caption_grid.png", records[: config.grid_images],
                                predictions[: config.grid_images])
        test_set = pipeline.caption_dataset(features, [r.captions for r in records], preprocessor, 256, shuffle=False,
                                            seed=0)
        with progress.stage(f"teacher-forced loss on {len(records):,} test images"):
            teacher_forced = captioning_model.teacher_forced(model, test_set)
        extras = {"greedy_decoding": scores["greedy"]} if "greedy" in scores else {}
        return report.metrics(
            primary=self.primary_metric,
            model=scores["model"],
            baselines={"most_frequent_caption": {**scores["most_frequent_caption"], "caption": baseline}},
            **extras,
            teacher_forced=teacher_forced,
            distinct_caption_fraction=len(set(predictions)) / max(len(predictions), 1),
            generation_seconds=generation_seconds,
            beam_width=config.beam_width,
            vocabulary_size=len(preprocessor.vocabulary),
            encoder={**preprocessor.encoder_facts, "key": preprocessor.encoder_key,
                     "feature_dim": preprocessor.feature_dim},
        )

    # --- export and predict ----------------------------------------------------------------------------
    def endpoints(self, model, preprocessor: Preprocessor) -> dict[str, Any]:
        config = self.config
        generator = captioning_model.CaptionGenerator(model, config.max_caption_length)

        def captions(image_bytes):
            features, problems = preprocessor.encode_images(image_bytes)
            tokens, scores = generator.generate(features, config.beam_width, config.length_penalty)
            failed = tf.not_equal(problems, "")
            return {"caption": tf.where(failed, "", preprocessor.decode(tokens)), "problem": problems,
                    "score": tf.where(failed, tf.zeros_like(scores), scores)}

        def caption(image_bytes):
            # An empty batch never reaches the CNN: Conv2D (oneDNN) gives an empty batch the wrong depth.
            empty = {"caption": tf.zeros([0], tf.string), "problem": tf.zeros([0], tf.string),
                     "score": tf.zeros([0], tf.float32)}
            return tf.cond(tf.size(image_bytes) > 0, lambda: captions(image_bytes), lambda: empty)

        return {"caption": (caption, [tf.TensorSpec([None], tf.string, name="image_bytes")])}

    def export_examples(self, data: CaptionData) -> dict[str, list[Any]]:
        examples = [Path(r.path).read_bytes() for r in data.test[:2]] + [b"this is not a JPEG"]
        return {"caption": [np.array(examples, dtype=object)]}

    def write_samples(self, data: CaptionData, folder: Path) -> list[str]:
        return pipeline.copy_samples(data.test, Path(folder), count=2)

    def predict_arguments(self, inputs: Sequence[str]) -> list[Any]:
        """inputs: image file paths (JPEG/PNG); undecodable files are answered with a "problem", not an error."""
        content = []
        for item in inputs:
            path = Path(item)
            if not path.is_file():
                raise TaskError(f"Input {item!r} is not a file; the captioning predict action takes image file "
                                "paths (JPEG or PNG)")
            content.append(path.read_bytes())
        return [np.array(content, dtype=object)]

    def predict_results(self, inputs: Sequence[str], outputs: Mapping[str, Any]) -> list[dict[str, Any]]:
        results = []
        for item, caption, problem, score in zip(inputs, outputs["caption"], outputs["problem"], outputs["score"]):
            entry: dict[str, Any] = {"image": item, "caption": caption.decode("utf-8"),
                                     "score": float(score) if math.isfinite(float(score)) else None}
            if problem:
                entry["problem"] = problem.decode("utf-8")
            results.append(entry)
        return results

    def score(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """arguments: annotations, predictions (paths), allow_missing (bool: score only the predicted images)."""
        references, results = read_scoring_files(arguments["annotations"], arguments["predictions"])
        missing = [image_id for image_id in references if image_id not in results]
        if missing and not arguments.get("allow_missing", False):
            # Scoring a subset silently gives a number that is not comparable with full-split results.
            raise TaskError(f"Predictions file {str(arguments['predictions'])!r} has no caption for {len(missing)} of "
                            f"the {len(references)} images in {str(arguments['annotations'])!r}, e.g. image ids "
                            f"{missing[:5]}; expected one per annotated image, or pass --allow-missing to score "
                            "only the predicted ones")
        return caption_metrics.score_results(references, results, protocol=self.config.metrics,
                                             meteor=self.config.meteor)

    def bench(self, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
        from tasks.captioning import bench

        return bench.run(self, data_dir, workdir)


TASK = CaptioningTask
