"""Visual question answering: deeper LSTM Q + norm I (Antol et al. 2015), official VQA accuracy.

    python run.py vqa                 # default preset: synthetic shape scenes (3,000 + 500 images)

Expected (default preset, seed 1234; 4.7 min wall, 8.6 min when the 2 CPU cores were busier, shared):
official VQA accuracy 70.9 on the 2,500 test questions (yes/no 82.7, number 72.5, other 55.8) against
53.6 for the most frequent answer per question type and 21.9 for always "yes". The tiny preset
(tests) runs end to end in about 30 s; its number means nothing.

Other commands:
    python run.py vqa --preset tiny   # seconds; for tests
    python run.py vqa --preset paper --data-dir VQA_V2_DIR --set encoder_weights=resnet50_notop.h5
    python run.py vqa --preset tiny --data-dir tests/fixtures/vqa --set image_dir=../shared/data/coco_mini/val2017 \
        --set image_features=cached  # real COCO photos, a smoke test
    python run.py vqa predict --model runs/vqa/export IMAGE.jpg "how many circles are there?" [IMAGE QUESTION ...]
    python run.py vqa score --questions Q.json --annotations A.json --predictions RESULTS.json

Data: VQA v2 (or v1) questions + annotations JSON and COCO images (data/vqa.py); without --data-dir,
a seeded generator writes shape scenes with questions and 10 human-like answers each in the same
format (data/synthetic/questions.py) under WORKDIR/data. With two splits (train2014, val2014) the
first gives train + validation (by image) and the second is the test split; a single split is
divided by image into train / validation / test.

Image side (``image_features=cached``, the paper's recipe): a CNN is frozen and its features of every
image are computed once and cached on disk (common.images.cached_features), then l2-normalised
("norm I") inside the model. On the synthetic default the CNN (``strided_cnn``) is first pretrained for
``pretrain_epochs`` on the object attributes of the TRAINING scenes (multi-label: colour×shape, sizes,
quarters, object count; read from the generator's scenes_<split>.json) -- the stand-in for ImageNet
pretraining, because random CNN features and end-to-end training both left the model at the
question-type prior within a CPU budget of minutes. ``image_features=end_to_end`` trains the CNN with
the question model instead (slow to leave that plateau). The ``paper`` preset caches ResNet50 features
(give the ImageNet weights file with ``--set encoder_weights=...``).

Evaluation: the official VQA accuracy (common/metrics/vqa.py) overall, per answer type and per
question type for the model and two baselines (always "yes"; the most frequent training answer of
each question type). Predictions are written in the official results format to
WORKDIR/vqa_<split>_results.json; ``run.py vqa score`` re-scores such a file.

Export: SavedModel endpoint ``answer(jpeg_bytes [B] string, questions [B] string)`` →
{"answer": [B] string, "score": [B] float32 softmax probability, "problem": [B] string ("" or why
an image could not be decoded)}.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from common.io import atomic_write_json
from common.task import Task, TaskData, TaskError
from data import DataError
from tasks.vqa.config import Config

logger = logging.getLogger(__name__)

RESULTS_SUFFIX = "deeper_lstm_q_norm_i_results.json"


@dataclasses.dataclass
class _Split:
    """A group of records with the arrays the model needs."""

    records: list
    image_rows: np.ndarray  # [N] row of each question's image in the image table
    tokens: np.ndarray  # [N, L] int32
    target_indices: np.ndarray  # [N, 10] int32 sparse soft targets
    target_values: np.ndarray  # [N, 10] float32


class VQATask(Task):
    name = "vqa"
    description = "Visual question answering (VQA v2): deeper LSTM Q + norm I, official VQA accuracy"
    Config = Config
    primary_metric = "vqa_accuracy"
    higher_is_better = True
    score_arguments = ("questions", "annotations", "predictions")
    extra_packages = ("pillow",)

    # --- data ---------------------------------------------------------------------------------------
    def _read(self, data_dir: Path | None, workdir: Path) -> tuple[dict[str, list], Path]:
        from data import vqa as vqa_reader
        from data.synthetic import questions as synthetic_questions

        config = self.config
        if data_dir is None:
            source = workdir / "data"
            wrote = synthetic_questions.write_dataset(
                source,
                seed=config.seed,
                train_images=config.train_images,
                validation_images=config.test_images,
                questions_per_image=config.questions_per_image,
                image_size=config.image_size,
                max_objects=config.max_objects,
                error_rate=config.answer_error_rate,
            )
            logger.info("%s synthetic VQA data in %s", "Wrote" if wrote else "Reusing", source)
            return vqa_reader.read_directory(source), source
        image_folder = Path(config.image_dir) if config.image_dir else None
        if image_folder is not None and not image_folder.is_dir():
            raise DataError(f"image_dir={config.image_dir!r} is not a folder; expected the COCO image folder")
        return vqa_reader.read_directory(Path(data_dir), image_folder=image_folder), Path(data_dir)

    def _assign_splits(self, splits: dict[str, list], source: Path, workdir: Path):
        """(train, validation, test records, {"questions": path, "annotations": path} of the test split)."""
        from data import vqa as vqa_reader
        from tasks.vqa import pipeline

        config = self.config
        names = sorted(splits)
        if len(names) == 1:
            (only,) = names
            rest, test = pipeline.split_by_image(splits[only], config.test_fraction, config.seed)
            train, validation = pipeline.split_by_image(rest, config.validation_fraction / (1 - config.test_fraction), config.seed + 1)
            test_files = self._write_test_files(test, only, workdir)
            logger.info("One split (%s): divided by image into train/validation/test", only)
        else:
            train_names = [n for n in names if n.startswith("train")]
            if not train_names:
                raise DataError(f"{source}: found splits {names} but none named train*; expected e.g. train2014 + val2014")
            train_name = train_names[0]
            others = [n for n in names if n != train_name]
            test_name = next((n for n in others if n.startswith("val")), others[0])
            if len(names) > 2:
                logger.warning("Using %s (train) and %s (test); ignoring %s", train_name, test_name, [n for n in others if n != test_name])
            train, validation = pipeline.split_by_image(splits[train_name], config.validation_fraction, config.seed)
            test = splits[test_name]
            questions_path, annotations_path = vqa_reader.find_split_files(source, test_name)
            test_files = {"split": test_name, "questions": str(questions_path), "annotations": str(annotations_path)}
        for label, records in (("train", train), ("validation", validation), ("test", test)):
            if not records:
                raise DataError(f"{source}: the {label} split is empty; expected more images (have {sum(map(len, splits.values()))} questions)")
        return train, validation, test, test_files

    @staticmethod
    def _scenes(source: Path, splits: dict[str, list]):
        """{image_id: Scene} over the generated splits, or None for real data (no scene files)."""
        from data.synthetic import questions as synthetic_questions

        merged = {}
        for split in splits:
            found = synthetic_questions.read_scenes(source, split)
            if found is None:
                return None
            merged.update(found)
        return merged

    @staticmethod
    def _write_test_files(records: list, split: str, workdir: Path) -> dict[str, str]:
        """The test subset in VQA v2 format, so that `run.py vqa score` can re-score the results file."""
        questions = workdir / f"v2_OpenEnded_mscoco_{split}-test_questions.json"
        annotations = workdir / f"v2_mscoco_{split}-test_annotations.json"
        atomic_write_json(questions, {"data_subtype": split, "questions": [
            {"image_id": r.image_id, "question": r.question, "question_id": r.question_id} for r in records]})  # fmt: skip
        atomic_write_json(annotations, {"data_subtype": split, "annotations": [
            {"question_id": r.question_id, "image_id": r.image_id, "question_type": r.question_type,
             "answer_type": r.answer_type, "multiple_choice_answer": r.multiple_choice_answer,
             "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k, a in enumerate(r.answers)]}
            for r in records]})  # fmt: skip
        return {"split": f"{split} (test part)", "questions": str(questions), "annotations": str(annotations)}

    def load_data(self, data_dir: Path | None, workdir: Path) -> TaskData:
        from common import images as common_images
        from tasks.vqa import model as vqa_model
        from tasks.vqa import pipeline

        config = self.config
        workdir = Path(workdir)
        splits, source = self._read(data_dir, workdir)
        train, validation, test, test_files = self._assign_splits(splits, source, workdir)

        answers = pipeline.build_answer_vocabulary(train, config.max_answers)
        if len(answers) < 2:
            raise DataError(f"{source}: the training answers hold {len(answers)} distinct answers; expected at least 2")
        answer_index = {answer: index for index, answer in enumerate(answers)}
        vectorizer = pipeline.fit_question_vectorizer([r.question for r in train], config.max_question_length)
        paths, rows = pipeline.image_table({"train": train, "validation": validation, "test": test})

        encoder = None
        pretraining = None
        if config.image_features == "cached":
            encoder = vqa_model.build_image_encoder(config)
            scene_by_image = self._scenes(source, splits)
            if scene_by_image is not None and config.pretrain_epochs > 0:
                from data.synthetic import questions as synthetic_questions

                train_paths = sorted({r.image_path for r in train})
                image_of_path = {r.image_path: r.image_id for r in train}
                attributes = np.stack([synthetic_questions.attribute_targets(scene_by_image[image_of_path[p]]) for p in train_paths])
                logger.info("Pretraining the %s encoder on the object attributes of %d training scenes", config.encoder, len(train_paths))
                pretraining = vqa_model.pretrain_encoder(encoder, pipeline.load_pixels(train_paths, config.image_size), attributes, config)
                logger.info("Encoder pretraining: %s", pretraining)
            elif config.encoder_weights == "" and config.encoder in ("strided_cnn", "small_cnn"):
                logger.warning("The %s encoder keeps RANDOM weights (no scene files to pretrain on, no encoder_weights)", config.encoder)
            key = f"{config.encoder}-{config.image_size}-{common_images.weights_fingerprint(encoder)}"
            cache = Path(config.feature_cache_dir) if config.feature_cache_dir else workdir / "features"
            table = common_images.cached_features(encoder, key, paths, cache, batch_size=32)
        else:
            table = pipeline.load_pixels(paths, config.image_size)

        def arrays(records: list) -> _Split:
            indices, values = pipeline.answer_targets(records, answer_index, config.soft_targets)
            return _Split(
                records=records,
                image_rows=np.asarray([rows[r.image_path] for r in records], np.int32),
                tokens=pipeline.tokenize(vectorizer, [r.question for r in records]),
                target_indices=indices,
                target_values=values,
            )

        def dataset(split: _Split, shuffle: bool):
            # Questions none of whose answers is in the vocabulary have no target: left out of the loss.
            keep = split.target_values.sum(axis=1) > 0
            return pipeline.make_dataset(
                table, split.image_rows[keep], split.tokens[keep], split.target_indices[keep],
                split.target_values[keep], len(answers), config.batch_size, shuffle, config.seed,
            )  # fmt: skip

        train_arrays, validation_arrays, test_arrays = arrays(train), arrays(validation), arrays(test)
        covered = float((train_arrays.target_values.sum(axis=1) > 0).mean())
        prior, fallback = pipeline.question_type_prior(train)
        vocabulary = vectorizer.get_vocabulary()
        info = {
            "source": str(source) if data_dir is not None else f"synthetic shape scenes (seed {config.seed}) in {source}",
            "questions": {"train": len(train), "validation": len(validation), "test": len(test)},
            "images": {
                split: len({r.image_id for r in records})
                for split, records in (("train", train), ("validation", validation), ("test", test))
            },
            "question_vocabulary_size": len(vocabulary),
            "answer_vocabulary_size": len(answers),
            "train_questions_with_an_answer_in_vocabulary": covered,
            "image_input": config.image_features,
            "image_feature_dim": int(table.shape[1]) if config.image_features == "cached" else None,
            "encoder_pretraining": pretraining,
            "test_files": test_files,
        }
        logger.info("VQA data: %s", info)
        return TaskData(
            train=dataset(train_arrays, shuffle=True),
            validation=dataset(validation_arrays, shuffle=False),
            test=test_arrays,
            info=info,
            extras={
                "vectorizer": vectorizer, "answers": answers, "table": table, "encoder": encoder,
                "prior": prior, "prior_fallback": fallback, "test_files": test_files,
                "question_vocabulary_size": len(vocabulary),
            },
        )  # fmt: skip

    # --- model --------------------------------------------------------------------------------------
    def build_model(self, data: TaskData):
        import keras

        from common import training
        from tasks.vqa import model as vqa_model

        config = self.config
        feature_dim = data.info["image_feature_dim"]
        model = vqa_model.build_model(
            config, data.extras["question_vocabulary_size"], len(data.extras["answers"]), image_feature_dim=feature_dim
        )
        return training.compile_model(
            model,
            config,
            loss=keras.losses.CategoricalCrossentropy(name="soft_answer_crossentropy"),
            metrics=[keras.metrics.CategoricalAccuracy(name="top_answer_accuracy")],
            optimizer=vqa_model.make_optimizer(config),
        )

    # --- evaluation ---------------------------------------------------------------------------------
    def _predict_answers(self, model, data: TaskData, split: _Split) -> list[str]:
        from tasks.vqa import pipeline

        answers = data.extras["answers"]
        dataset = pipeline.make_dataset(
            data.extras["table"], split.image_rows, split.tokens, split.target_indices, split.target_values,
            len(answers), self.config.batch_size, shuffle=False, seed=0,
        ).map(lambda inputs, targets: inputs)  # fmt: skip
        probabilities = model.predict(dataset, verbose=0)
        return [answers[i] for i in np.argmax(probabilities, axis=-1)]

    def evaluate(self, model, data: TaskData, workdir: Path) -> dict[str, Any]:
        from common.metrics import vqa as vqa_metric

        test: _Split = data.test
        records = test.records
        annotations = {
            r.question_id: {"answers": list(r.answers), "answer_type": r.answer_type, "question_type": r.question_type}
            for r in records
        }
        predicted = self._predict_answers(model, data, test)
        model_predictions = {r.question_id: answer for r, answer in zip(records, predicted)}
        prior, fallback = data.extras["prior"], data.extras["prior_fallback"]
        baselines = {
            "baseline_always_yes": {r.question_id: "yes" for r in records},
            "baseline_question_type_prior": {r.question_id: prior.get(r.question_type, fallback) for r in records},
        }
        results_path = Path(workdir) / f"vqa_{data.extras['test_files']['split'].split()[0]}_{RESULTS_SUFFIX}"
        atomic_write_json(results_path, [{"question_id": q, "answer": a} for q, a in model_predictions.items()])

        metrics: dict[str, Any] = {}
        model_accuracy = vqa_metric.vqa_accuracy(model_predictions, annotations)
        metrics["vqa_accuracy"] = model_accuracy["overall"]
        metrics["model"] = model_accuracy
        for name, predictions in baselines.items():
            metrics[name] = vqa_metric.vqa_accuracy(predictions, annotations)
        metrics["test_questions"] = float(len(records))
        metrics["results_file"] = str(results_path)
        for record, answer in list(zip(records, predicted))[:6]:
            logger.info(
                "Q%d %r | humans %s | model %r (accuracy %.2f)", record.question_id, record.question,
                list(record.answers), answer, vqa_metric.question_accuracy(answer, record.answers),
            )  # fmt: skip
        for answer_type, value in model_accuracy["perAnswerType"].items():
            logger.info(
                "%-7s model %.2f | always yes %.2f | question-type prior %.2f", answer_type, value,
                metrics["baseline_always_yes"]["perAnswerType"][answer_type],
                metrics["baseline_question_type_prior"]["perAnswerType"][answer_type],
            )  # fmt: skip
        return metrics

    # --- export -------------------------------------------------------------------------------------
    def export(self, model, data: TaskData, path: Path) -> dict[str, Sequence[Any]]:
        import tensorflow as tf

        from common import export as common_export
        from common import images as common_images

        config = self.config
        vectorizer = data.extras["vectorizer"]
        encoder = data.extras["encoder"]
        answer_table = tf.constant(data.extras["answers"])
        image_size = config.image_size

        @tf.autograph.experimental.do_not_convert  # plain TF ops, no Python control flow on tensors
        def answer(jpeg_bytes, questions):
            pixels, problems = common_images.decode_images_safe(jpeg_bytes, image_size)  # [B, S, S, 3], [B]
            image = encoder(pixels, training=False) if encoder is not None else pixels
            tokens = tf.cast(vectorizer(questions), tf.int32)  # [B, L]
            probabilities = model({"image": image, "question_tokens": tokens}, training=False)  # [B, K]
            best = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            ok = tf.equal(problems, "")
            return {
                "answer": tf.where(ok, tf.gather(answer_table, best), ""),
                "score": tf.where(ok, tf.reduce_max(probabilities, axis=-1), 0.0),
                "problem": problems,
            }

        track = [model, vectorizer] + ([encoder] if encoder is not None else [])
        signature = [tf.TensorSpec([None], tf.string, name="jpeg_bytes"), tf.TensorSpec([None], tf.string, name="questions")]
        common_export.write_archive(path, track=track, endpoints={"answer": (answer, signature)})
        examples = data.test.records[:2]
        return {
            "answer": [
                np.asarray([common_images.read_image_bytes(r.image_path) for r in examples], dtype=object),
                np.asarray([r.question for r in examples], dtype=object),
            ]
        }

    # --- actions --------------------------------------------------------------------------------------
    def predict(self, model_dir: Path, inputs: Sequence[str]) -> list[Any]:
        """inputs: IMAGE QUESTION [IMAGE QUESTION ...] (a JPEG/PNG path, then the question about it)."""
        import tensorflow as tf

        from common import images as common_images

        if len(inputs) % 2:
            raise TaskError(
                f"vqa predict takes pairs IMAGE QUESTION; received {len(inputs)} inputs {list(inputs)[:4]} (an odd number)"
            )
        if not (Path(model_dir) / "saved_model.pb").is_file():
            raise TaskError(f"--model {str(model_dir)!r} is not an exported SavedModel folder (no saved_model.pb)")
        images = list(inputs[0::2])
        questions = list(inputs[1::2])
        content = [common_images.read_image_bytes(path) for path in images]
        loaded = tf.saved_model.load(str(model_dir))
        outputs = loaded.answer(tf.constant(content, dtype=tf.string), tf.constant(questions, dtype=tf.string))
        results = []
        for index, (image, question) in enumerate(zip(images, questions)):
            results.append({
                "image": image, "question": question,
                "answer": outputs["answer"][index].numpy().decode("utf-8"),
                "score": float(outputs["score"][index].numpy()),
            })  # fmt: skip
            problem = outputs["problem"][index].numpy().decode("utf-8")
            if problem:
                results[-1]["problem"] = problem
        return results

    def score(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """The official accuracy dict of a results file: {"overall", "perAnswerType", "perQuestionType"} in %."""
        from common.metrics import vqa as vqa_metric
        from data import vqa as vqa_reader

        questions_path, annotations_path = Path(arguments["questions"]), Path(arguments["annotations"])
        predictions_path = Path(arguments["predictions"])
        _, questions = vqa_reader.read_questions(questions_path)
        annotations = vqa_reader.read_annotations(annotations_path)
        if set(questions) != set(annotations):
            unanswered = sorted(set(questions) - set(annotations))
            orphans = sorted(set(annotations) - set(questions))
            raise TaskError(
                f"--questions {questions_path} and --annotations {annotations_path} do not describe the same questions: "
                f"{len(unanswered)} questions without annotation (e.g. {unanswered[:5]}), "
                f"{len(orphans)} annotations without question (e.g. {orphans[:5]})"
            )
        predictions = vqa_reader.read_results(predictions_path)
        try:
            return vqa_metric.vqa_accuracy(predictions, annotations)
        except vqa_metric.QuestionIdMismatch as error:
            raise TaskError(f"--predictions {predictions_path}: {error}") from None


TASK = VQATask
