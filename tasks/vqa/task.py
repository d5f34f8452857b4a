"""Visual question answering: deeper LSTM Q + norm I (Antol et al. 2015), official VQA accuracy.

    python run.py vqa                 # default preset: synthetic shape scenes (3,000 + 500 images)
    python run.py vqa --preset tiny   # seconds; for tests, its number means nothing (examples.png: a grid)
    python run.py vqa --preset paper --data-dir VQA_V2_DIR --download   # ImageNet ResNet-50 fetched by Keras, once
    python run.py vqa --preset tiny --data-dir tests/fixtures/vqa --set image_dir=coco/val2017 \
        --set encoder=small_cnn       # real COCO photos, a smoke test
    python run.py vqa predict --model runs/vqa/export IMAGE.jpg "how many circles are there?" [IMAGE QUESTION ...]
    python run.py vqa score --questions Q.json --annotations A.json --predictions RESULTS.json
    python run.py vqa bench           # the input pipeline alone on a VQA v2-sized stand-in: examples/s, peak RSS

Data (data/vqa.py): VQA v2/v1 questions + annotations JSON and COCO images, or without --data-dir the
seeded shape scenes of data/synthetic/questions.py in the same format under WORKDIR/data. Two splits
(train2014, val2014): the first gives train + validation (by image), the second is the test split; a
single split is divided by image into all three.

Fitted on the training split (tasks/vqa/pipeline.py ``Preprocessor``, saved in
WORKDIR/checkpoints/preprocessor): question vocabulary, answer table (top-K answers), question-type
prior (a baseline) and, with ``image_features=cached`` (the paper's recipe), the frozen image CNN, which
on the synthetic default is first pretrained for ``encoder_pretrain_epochs`` on the training scenes'
object attributes (the stand-in for ImageNet); its features are cached on disk and l2-normalised
("norm I") in the model. ``image_features=end_to_end`` trains the CNN with the question model instead.

Evaluation: the official VQA accuracy (common/metrics/vqa.py) overall, per answer type and per question
type, for the model and two baselines (always "yes"; the question-type prior). Predictions go to
WORKDIR/vqa_<split>_..._results.json in the official format, which ``score`` re-scores.

Export: ``answer(jpeg_bytes [B], questions [B])`` → {"answer", "score" (softmax probability),
"problem" ("" or why an image could not be decoded)}; batches of different sizes are an error."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from common.task import Task, TaskData, TaskError
from data import DataError
from data.vqa import VQARecord
from tasks.vqa import pipeline, plots
from tasks.vqa.config import Config

logger = logging.getLogger(__name__)

RESULTS_SUFFIX = "deeper_lstm_q_norm_i_results.json"


@dataclasses.dataclass
class VQAData(TaskData):
    train: list[VQARecord]
    validation: list[VQARecord]
    test: list[VQARecord]
    test_files: dict[str, str]  # the test split's {"split", "questions", "annotations"} (for `score`)
    scenes: dict[int, Any] | None  # synthetic data: {image_id: Scene} (encoder pretraining); real data: None
    feature_cache_dir: Path  # where cached image features go


class VQATask(Task):
    name = "vqa"
    description = "Visual question answering (VQA v2): deeper LSTM Q + norm I, official VQA accuracy"
    Config = Config
    Preprocessor = pipeline.Preprocessor
    primary_metric = "vqa_accuracy"
    higher_is_better = True
    predict_endpoint = "answer"
    predict_usage = "IMAGE QUESTION [IMAGE QUESTION ...]"
    score_flags = ("allow_missing",)  # --allow-missing: score partial results on the questions they answer
    score_arguments = ("questions", "annotations", "predictions")
    extra_packages = ("pillow",)
    can_download = True  # only the encoder's ImageNet weights (encoder_weights=imagenet); VQA v2 is not in tfds

    # --- data ---------------------------------------------------------------------------------------
    def load_data(self, data_dir: Path | None, workdir: Path) -> VQAData:
        from data import vqa as vqa_reader
        from data.synthetic import questions as synthetic_questions

        config, workdir = self.config, Path(workdir)
        if data_dir is None:
            source = workdir / "data"
            wrote = synthetic_questions.write_dataset(
                source, seed=config.seed, train_images=config.train_images, validation_images=config.test_images,
                questions_per_image=config.questions_per_image, image_size=config.image_size,
                max_objects=config.max_objects, error_rate=config.answer_error_rate,
            )  # fmt: skip
            logger.info("%s synthetic VQA data in %s", "Wrote" if wrote else "Reusing", source)
            splits = vqa_reader.read_directory(source)
        else:
            source = Path(data_dir)
            image_folder = Path(config.image_dir) if config.image_dir is not None else None
            if image_folder is not None and not image_folder.is_dir():
                raise DataError(f"image_dir={config.image_dir!r} is not a folder; expected the COCO image folder")
            splits = vqa_reader.read_directory(source, image_folder=image_folder)
        train, validation, test, test_files = vqa_reader.assign_splits(
            splits, source, workdir, config.validation_fraction, config.test_fraction, config.seed
        )
        described = str(source) if data_dir is not None else f"synthetic shape scenes (seed {config.seed}) in {source}"
        split_records = {"train": train, "validation": validation, "test": test}
        info = {
            "source": described,
            "questions": {split: len(records) for split, records in split_records.items()},
            "images": {split: len({r.image_id for r in records}) for split, records in split_records.items()},
            "image_input": config.image_features,
            "test_files": test_files,
        }
        logger.info("VQA data: %s", info)
        cache = Path(config.feature_cache_dir) if config.feature_cache_dir is not None else workdir / "features"
        scenes = synthetic_questions.read_scene_files(source, splits)
        return VQAData(train=train, validation=validation, test=test, test_files=test_files, scenes=scenes,
                       feature_cache_dir=cache, info=info)  # fmt: skip

    def datasets(self, data: VQAData, preprocessor):
        return pipeline.train_and_validation(data, preprocessor, self.config)

    # --- model --------------------------------------------------------------------------------------
    def build_model(self, data: VQAData, preprocessor):
        import keras

        from common import training
        from tasks.vqa import model as vqa_model

        model = vqa_model.build_model(self.config, preprocessor.question_vocabulary_size, len(preprocessor.answers),
                                      image_feature_dim=preprocessor.image_feature_dim)  # fmt: skip
        return training.compile_model(
            model, self.config, loss=keras.losses.CategoricalCrossentropy(name="soft_answer_crossentropy"),
            metrics=[keras.metrics.CategoricalAccuracy(name="top_answer_accuracy")],
            optimizer=vqa_model.make_optimizer(self.config),
        )  # fmt: skip

    def fit(self, model, data: VQAData, preprocessor, workdir: Path) -> dict[str, Any]:
        # results.json's training record also says how the image encoder was pretrained (train step).
        return {**super().fit(model, data, preprocessor, workdir),
                "encoder_pretraining": preprocessor.facts.get("encoder_pretraining")}  # fmt: skip

    # --- evaluation ---------------------------------------------------------------------------------
    def evaluate(self, model, data: VQAData, preprocessor, workdir: Path) -> dict[str, Any]:
        from common import report
        from common.io import atomic_write_json
        records = data.test
        dataset = pipeline.split_dataset(data, records, preprocessor, self.config, shuffle=False, training=False)
        probabilities = model.predict(dataset.map(lambda inputs, targets: inputs), verbose=0)  # quiet: one pass
        predicted = [preprocessor.answers[k] for k in np.argmax(probabilities, axis=-1)]
        results_path = Path(workdir) / f"vqa_{data.test_files['split'].split()[0]}_{RESULTS_SUFFIX}"
        atomic_write_json(results_path, [{"question_id": r.question_id, "answer": a}
                                         for r, a in zip(records, predicted)])  # the official results format
        scores = pipeline.score_answers(records, predicted, preprocessor, self.config.logged_examples)
        plots.plot_examples(Path(workdir) / "examples.png", records, predicted)
        return report.metrics(self.primary_metric, model=scores["model"],
                              baselines={name: scores[name] for name in pipeline.BASELINES},
                              results_file=str(results_path), test_questions=len(records))  # fmt: skip

    # --- export -------------------------------------------------------------------------------------
    def endpoints(self, model, preprocessor):
        import tensorflow as tf

        from common import images as common_images

        answer_table = tf.constant(preprocessor.answers)

        @tf.autograph.experimental.do_not_convert  # plain TF ops, no Python control flow on tensors
        def answer(jpeg_bytes, questions):
            # Without this check a batch of one image would silently be broadcast against many questions.
            tf.debugging.assert_equal(tf.shape(jpeg_bytes)[0], tf.shape(questions)[0], message=(
                "answer(jpeg_bytes, questions): expected one question per image; the batch sizes differ"))
            pixels, problems = common_images.decode_images_safe(jpeg_bytes, preprocessor.image_size)
            # An empty batch skips the networks: TensorFlow's conv2d returns a wrongly shaped result for one.
            probabilities = tf.cond(  # [B, K]
                tf.shape(questions)[0] > 0, lambda: model(preprocessor.encode(questions, pixels), training=False),
                lambda: tf.zeros([0, len(preprocessor.answers)], tf.float32))  # fmt: skip
            best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            ok = tf.equal(problems, "")
            return {"answer": tf.where(ok, tf.gather(answer_table, best), ""),
                    "score": tf.where(ok, tf.reduce_max(probabilities, axis=-1), 0.0), "problem": problems}

        signature = [tf.TensorSpec([None], tf.string, name="jpeg_bytes"),
                     tf.TensorSpec([None], tf.string, name="questions")]  # fmt: skip
        return {"answer": (answer, signature)}

    def export_examples(self, data: VQAData) -> dict[str, Sequence[Any]]:
        from common import images as common_images

        examples = data.test[:2]
        return {"answer": [np.asarray([common_images.read_image_bytes(r.image_path) for r in examples], object),
                           np.asarray([r.question for r in examples], object)]}  # fmt: skip

    def write_samples(self, data: VQAData, folder: Path) -> list[str]:
        """Copies two test images (two scenes where the test split has them) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        first = data.test[0]
        chosen = [first] + [next((r for r in data.test if r.image_id != first.image_id), data.test[-1])]
        inputs: list[str] = []
        for record in chosen:
            copy = folder / record.image_path.name
            shutil.copyfile(record.image_path, copy)
            inputs += [str(copy), record.question]
        return inputs

    # --- actions --------------------------------------------------------------------------------------
    def predict_arguments(self, inputs: Sequence[str]) -> list[Any]:
        """IMAGE QUESTION [IMAGE QUESTION ...] (a JPEG/PNG path, then the question about it) → the
        endpoint's (jpeg_bytes, questions); an unreadable image is a DataError naming the file."""
        from common import images as common_images

        if not inputs or len(inputs) % 2:
            raise TaskError(f"vqa predict takes pairs IMAGE QUESTION; received {len(inputs)} inputs "
                            f"{list(inputs)[:4]} (an odd number)")  # fmt: skip
        return [np.asarray([common_images.read_image_bytes(path) for path in inputs[0::2]], object),
                np.asarray(list(inputs[1::2]), object)]  # fmt: skip

    def predict_results(self, inputs: Sequence[str], outputs: Mapping[str, Any]) -> list[dict[str, Any]]:
        results = []
        for index, (image, question) in enumerate(zip(inputs[0::2], inputs[1::2])):
            result = {"image": image, "question": question, "answer": outputs["answer"][index].decode("utf-8"),
                      "score": float(outputs["score"][index])}  # fmt: skip
            problem = outputs["problem"][index].decode("utf-8")
            results.append({**result, "problem": problem} if problem else result)
        return results

    def score(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The official accuracy dict of a results file: {"overall", "perAnswerType", "perQuestionType"} in %."""
        from tasks.vqa import scoring

        return scoring.score_files(Path(arguments["questions"]), Path(arguments["annotations"]),
                                   Path(arguments["predictions"]), bool(arguments.get("allow_missing")))

    def bench(self, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
        """The input pipeline alone on a VQA v2-sized stand-in (tasks/vqa/bench.py)."""
        from tasks.vqa import bench

        return bench.run(self, workdir)


TASK = VQATask
