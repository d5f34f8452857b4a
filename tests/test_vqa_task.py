"""The VQA task: config, pipeline pieces, the fitted Preprocessor's round trip, the model, and the
saved tiny run (shared with tests/test_task_shape.py) scored, predicted on awkward inputs and called."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from common.config import ConfigError
from common.task import TaskError
from data import DataError
from data.vqa import VQARecord
from tasks.vqa import pipeline
from tasks.vqa.config import Config
from tasks.vqa.task import VQATask

from conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "vqa"
QUESTION = "how many circles are there?"


def _record(question_id, image_id, answers, question_type="how many", answer_type="number"):
    return VQARecord(
        question_id=question_id, image_id=image_id, question=QUESTION, answers=tuple(answers),
        answer_type=answer_type, question_type=question_type, multiple_choice_answer=answers[0],
        image_path=Path(f"/images/{image_id}.jpg"),
    )  # fmt: skip


def test_presets_and_overrides():
    assert Config.from_preset("tiny").epochs == 2
    paper = Config.from_preset("paper")
    assert (paper.lstm_units, paper.embedding_dim, paper.common_dim, paper.max_answers) == (512, 200, 1024, 1000)
    assert (paper.optimizer, paper.learning_rate, paper.batch_size) == ("rmsprop", 3e-4, 500)
    default = Config()
    assert default.image_dir is None and default.encoder_weights is None and default.feature_cache_dir is None
    assert Config.from_preset("default", ["encoder_weights=w.h5"]).encoder_weights == "w.h5"
    assert Config.from_preset("default", ["image_dir=none"]).image_dir is None
    with pytest.raises(ConfigError, match="image_features='pixels' is not allowed"):
        Config.from_preset("default", ["image_features=pixels"])
    with pytest.raises(ConfigError, match="validation_fraction"):
        Config(validation_fraction=1.5)
    with pytest.raises(ConfigError, match="encoder_pretrain_epochs=-1 must be 0"):
        Config.from_preset("default", ["encoder_pretrain_epochs=-1"])
    with pytest.raises(ConfigError, match="Unknown config key 'pretrain_epochs'"):
        Config.from_preset("default", ["pretrain_epochs=1"])


def test_answer_vocabulary_targets_and_prior():
    records = [
        _record(1, 1, ["2"] * 5 + ["two"] * 4 + ["3"]),
        _record(2, 1, ["yes"] * 8 + ["no"] * 2, "is the", "yes/no"),
        _record(3, 2, ["1"] * 10),
        _record(4, 2, ["Zebra"] * 10, "what is", "other"),
    ]
    # Counts of the normalised answers: "1" 10, "zebra" 10, "2" 9 ("2" + "two"), "yes" 8, "no" 2, "3" 1.
    vocabulary = pipeline.build_answer_vocabulary(records, max_answers=4)
    assert vocabulary == ["1", "zebra", "2", "yes"]
    index = {answer: k for k, answer in enumerate(vocabulary)}
    indices, values = pipeline.answer_targets(records, index, soft=True)
    dense = np.zeros((4, 4), np.float32)
    for row in range(4):
        np.add.at(dense[row], indices[row], values[row])
    # Question 1: "2" scores 1.0, "3" scores 0.3 but is not in the vocabulary → all mass on "2".
    # Question 2: "yes" 1.0 and "no" 0.6, "no" out of vocabulary → [0, 0, 0, 1].
    np.testing.assert_allclose(dense, [[0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]], atol=1e-6)
    # Both "yes" (score 1.0) and "no" (0.6) in the vocabulary: normalised to 1/1.6 and 0.6/1.6.
    indices, values = pipeline.answer_targets(records[1:2], {"yes": 0, "no": 1}, soft=True)
    np.testing.assert_allclose(values[0][indices[0] == 0].sum(), 0.625)
    np.testing.assert_allclose(values[0][(indices[0] == 1) & (values[0] > 0)], [0.375])
    indices, values = pipeline.answer_targets(records[:2], {"2": 0, "no": 1}, soft=False)
    assert values[0].sum() == 1.0 and values[1].sum() == 0.0  # top answer "yes" not in this vocabulary: no target
    prior, fallback = pipeline.question_type_prior(records)
    assert prior == {"how many": "1", "is the": "yes", "what is": "zebra"} and fallback == "1"


def test_make_dataset_streams_a_memory_mapped_table_in_the_order_of_the_in_memory_pipeline(tmp_path):
    import tensorflow as tf

    generator = np.random.default_rng(0)
    table = generator.standard_normal((100, 1024)).astype(np.float32)  # 400 kB
    np.save(tmp_path / "table.npy", table)
    mapped = np.load(tmp_path / "table.npy", mmap_mode="r")
    rows = generator.integers(0, 100, size=300).astype(np.int32)
    questions = [f"question {i}?" for i in range(300)]
    indices = np.zeros((300, 3), np.int32)
    indices[:, :2] = generator.choice(7, size=(300, 2), replace=True)
    indices[:, 1] = (indices[:, 0] + 1) % 7  # two distinct answers, one unused slot (index 0, value 0)
    values = np.tile(np.float32([0.75, 0.25, 0.0]), (300, 1))
    encode = lambda q: {"question_tokens": tf.strings.length(q)[:, None]}  # noqa: E731 (any encoder will do)
    made = {name: pipeline.make_dataset(t, rows, questions, (indices, values), 7, 32, True, 5, encode)
            for name, t in (("memory", table), ("mapped", mapped))}  # fmt: skip
    # The order of the pipeline before the table left the graph: examples shuffled, then batched.
    before = tf.data.Dataset.from_tensor_slices(np.arange(300)).shuffle(300, seed=5).batch(32)
    for _ in range(2):  # reshuffled each epoch, identically
        for (memory_inputs, memory_targets), (inputs, targets), order in zip(made["memory"], made["mapped"], before):
            order = order.numpy()
            np.testing.assert_array_equal(inputs["image"].numpy(), table[rows[order]])
            np.testing.assert_array_equal(inputs["image"].numpy(), memory_inputs["image"].numpy())
            np.testing.assert_array_equal(inputs["question_tokens"].numpy(), memory_inputs["question_tokens"].numpy())
            dense = np.zeros((len(order), 7), np.float32)
            dense[np.arange(len(order)), indices[order, 0]] = 0.75
            dense[np.arange(len(order)), indices[order, 1]] = 0.25
            np.testing.assert_array_equal(targets.numpy(), dense)
            np.testing.assert_array_equal(memory_targets.numpy(), dense)
    assert len(made["mapped"]._as_serialized_graph().numpy()) < table.nbytes / 10  # no table, no questions


def test_bench_input_pipeline_at_tiny_size(tmp_path):
    result = run_cli("vqa", "bench", "--preset", "tiny", "--workdir", str(tmp_path), "--set", "bench_feature_dim=512")
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads((tmp_path / "bench.json").read_text())["figures"]["input_pipeline"]
    assert (measured["questions"], measured["images"], measured["timed_examples"]) == (4437, 827, 20 * 32)
    assert measured["full_size"] is False and measured["examples_per_second"] > 0
    assert measured["memory_after_megabytes"]["peak_rss_megabytes"] > 0
    assert measured["dataset_graph_bytes"] < measured["table_megabytes"] * 2**20 / 4
    assert "input_pipeline.examples_per_second" in result.stdout


def test_flat_scores_keep_the_official_numbers():
    official = {"overall": 50.0, "perAnswerType": {"yes/no": 80.0, "other": 10.0}, "perQuestionType": {"is": 80.0}}
    assert pipeline.flat_scores(official) == {"vqa_accuracy": 50.0, "vqa_accuracy_other": 10.0,
                                              "vqa_accuracy_yes_no": 80.0, "per_question_type": {"is": 80.0}}


def test_preprocessor_round_trips_and_encodes_identically(tmp_path):
    import tensorflow as tf

    from common import encoders, training
    from common import images as common_images

    config = Config.from_preset("tiny", ["train_images=12", "test_images=4", "questions_per_image=2"])
    training.setup(config)
    task = VQATask(config)
    data = task.load_data(None, tmp_path)
    assert data.scenes is not None and len(data.test) == 8
    fitted = task.Preprocessor.fit(task, data, tmp_path)
    assert fitted.facts["encoder_pretraining"]["loss"] > 0  # pretrained on the training scenes' attributes
    fitted.save(tmp_path / "preprocessor")
    assert (tmp_path / "preprocessor" / pipeline.ENCODER_WEIGHTS).is_file()
    loaded = task.Preprocessor.load(tmp_path / "preprocessor")
    assert loaded.get_state() == fitted.get_state()
    assert encoders.weights_fingerprint(loaded.encoder) == encoders.weights_fingerprint(fitted.encoder)

    questions = tf.constant([QUESTION, "", "What colour is the ZEBRA?!"])
    jpeg = [common_images.read_image_bytes(r.image_path) for r in data.test[:3]]
    pixels = common_images.decode_images(tf.constant(jpeg), config.image_size)
    expected, got = fitted.encode(questions, pixels), loaded.encode(questions, pixels)
    assert expected["image"].shape == (3, config.encoder_feature_dim)
    for key in ("question_tokens", "image"):
        np.testing.assert_array_equal(got[key].numpy(), expected[key].numpy())
    tokens = got["question_tokens"].numpy()
    assert tokens.shape == (3, config.max_question_length) and tokens.dtype == np.int32
    assert tokens[1].tolist() == [1] + [0] * (config.max_question_length - 1)  # never a fully masked question
    assert 1 in tokens[2]  # an unseen word is the unknown-word token

    # End to end: no encoder to fit or save; encode passes the pixels through to the model's CNN.
    end_to_end = VQATask(Config.from_preset("tiny", ["image_features=end_to_end", "train_images=12",
                                                     "test_images=4", "questions_per_image=2"]))  # fmt: skip
    plain = end_to_end.Preprocessor.fit(end_to_end, data, tmp_path)
    plain.save(tmp_path / "plain")
    reloaded = end_to_end.Preprocessor.load(tmp_path / "plain")
    assert reloaded.encoder is None and reloaded.image_feature_dim is None
    np.testing.assert_array_equal(reloaded.encode(questions, pixels)["image"].numpy(), pixels.numpy())
    with pytest.raises(TaskError, match="fitted by task 'vqa', not 'captioning'"):
        type("Other", (pipeline.Preprocessor,), {"task": "captioning"}).load(tmp_path / "plain")


def test_model_round_trips_through_a_keras_file(tmp_path):
    import keras

    from tasks.vqa import model as vqa_model

    config = Config.from_preset("tiny", ["image_features=end_to_end"])  # pixels in, the CNN inside the model
    model = vqa_model.build_model(config, question_vocabulary_size=20, num_answers=7)
    model.get_layer("strided_cnn").get_layer("conv1_norm")
    for name in ("word_embedding", "question_lstm_1", "question_lstm_2", "image_l2_norm", "fusion", "answers"):
        model.get_layer(name)
    inputs = {
        "image": np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32"),
        "question_tokens": np.array([[2, 3, 4] + [0] * 11, [5] * 14, [1, 0] + [0] * 12], "int32"),
    }
    expected = model.predict(inputs, verbose=0)
    assert expected.shape == (3, 7)
    np.testing.assert_allclose(expected.sum(axis=1), 1.0, rtol=1e-5)
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), expected, rtol=1e-5, atol=1e-6)
    cached_config = Config.from_preset("tiny", ["image_features=cached", "encoder=small_cnn"])
    cached = vqa_model.build_model(cached_config, 20, 7, image_feature_dim=48)
    assert cached.input["image"].shape == (None, 48)
    with pytest.raises(ValueError, match="needs image_feature_dim"):
        vqa_model.build_model(cached_config, 20, 7)


def test_mixed_precision_batch_of_one_stays_finite():
    """A per-replica batch of one centres the image features to zeros; in float16 the l2 norm of
    zeros was 0 · inf = NaN (strategy=mirrored + mixed_float16 diverged on the tiny run's last batch)."""
    import keras

    from tasks.vqa import model as vqa_model

    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        model = vqa_model.build_model(Config.from_preset("tiny"), 20, 7, image_feature_dim=16)
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        inputs = {"image": np.full((1, 16), 50.0, "float32"), "question_tokens": np.array([[2, 3] + [0] * 12], "int32")}
        assert np.isfinite(model.train_on_batch(inputs, np.eye(7, dtype="float32")[:1]))
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


def test_score_errors(tmp_path):
    task = VQATask(Config())
    questions = FIXTURES / "v2_OpenEnded_mscoco_val2017_questions.json"
    annotations = FIXTURES / "v2_mscoco_val2017_annotations.json"
    ids = [q["question_id"] for q in json.loads(questions.read_text())["questions"]]
    predictions = tmp_path / "results.json"
    answers = [{"question_id": q, "answer": "yes"} for q in ids[3:]] + [{"question_id": 5, "answer": "no"}]
    predictions.write_text(json.dumps(answers))
    arguments = {"questions": questions, "annotations": annotations, "predictions": predictions}
    with pytest.raises(TaskError, match=r"3 annotated question ids have no prediction "
                                        r"\(e\.g\. \[22192000, 22192001, 22192002\]\); "
                                        r"1 predicted question ids are not in the annotations "
                                        r"\(e\.g\. \[5\]\)"):  # fmt: skip
        task.score(arguments)
    predictions.write_text(json.dumps([{"question_id": q, "answer": "yes"} for q in ids]))
    result = task.score(arguments)
    assert set(result) == {"overall", "perAnswerType", "perQuestionType"}
    # "yes" is right on the fixture's yes/no questions except the "no" ones: known answers.
    assert result["perQuestionType"]["is it"] == pytest.approx(100.0)
    assert result["perAnswerType"]["other"] == 0.0
    subset = tmp_path / "questions.json"
    subset.write_text(json.dumps({"questions": json.loads(questions.read_text())["questions"][1:]}))
    with pytest.raises(DataError, match=r"1 annotations without question \(e\.g\. \[22192000\]\)"):
        task.score({**arguments, "questions": subset})


def test_predict_arguments_errors(tmp_path):
    task = VQATask(Config())
    with pytest.raises(TaskError, match="pairs IMAGE QUESTION; received 3 inputs"):
        task.predict_arguments(["a.jpg", "what?", "b.jpg"])
    with pytest.raises(DataError, match="does not exist"):
        task.predict_arguments([str(tmp_path / "a.jpg"), "what?"])


def test_saved_tiny_run_scores_predicts_and_serves(tiny_run, tmp_path):
    import tensorflow as tf

    workdir = tiny_run("vqa")
    results = json.loads((workdir / "results.json").read_text())
    metrics = results["metrics"]
    assert metrics["primary"] == "vqa_accuracy" and 0.0 <= metrics["model"]["vqa_accuracy"] <= 100.0
    assert set(metrics["baselines"]) == {"always_yes", "question_type_prior"}
    keys = {"vqa_accuracy", "vqa_accuracy_yes_no", "vqa_accuracy_number", "vqa_accuracy_other", "per_question_type"}
    for scores in (metrics["model"], *metrics["baselines"].values()):
        assert set(scores) == keys
    assert metrics["baselines"]["always_yes"]["vqa_accuracy_number"] == 0.0
    assert metrics["test_questions"] == 60
    assert results["data"]["questions"] == {"train": 162, "validation": 18, "test": 60}
    assert results["export"]["endpoints"]["answer"]["shapes"] == [[2], [2], [2]]
    assert (workdir / "checkpoints" / "preprocessor" / pipeline.ENCODER_WEIGHTS).is_file()

    # The results file is in the official format and `score` reproduces the model's numbers.
    files = results["data"]["test_files"]
    scored = run_cli("vqa", "score", "--questions", files["questions"], "--annotations", files["annotations"],
                     "--predictions", metrics["results_file"])  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-2000:]
    rescored = json.loads(scored.stdout)
    model = metrics["model"]
    assert rescored["overall"] == pytest.approx(model["vqa_accuracy"])
    assert rescored["perAnswerType"]["yes/no"] == pytest.approx(model["vqa_accuracy_yes_no"])
    assert rescored["perQuestionType"] == pytest.approx(model["per_question_type"])

    # predict on awkward inputs: an odd number of arguments, a truncated image.
    image = next((workdir / "samples").glob("*.jpg"))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(image.read_bytes()[:100])
    failed = run_cli("vqa", "predict", "--model", str(workdir / "export"), str(broken), "what?")
    assert failed.returncode == 2 and "corrupt or truncated" in failed.stderr and "Traceback" not in failed.stderr
    odd = run_cli("vqa", "predict", "--model", str(workdir / "export"), str(image))
    assert odd.returncode == 2 and "pairs IMAGE QUESTION" in odd.stderr

    # The endpoint answers the good image and reports the bad one instead of failing the batch ...
    loaded = tf.saved_model.load(str(workdir / "export"))
    outputs = loaded.answer(tf.constant([image.read_bytes(), broken.read_bytes()]), tf.constant([QUESTION, ""]))
    assert outputs["answer"][0].numpy() and 0.0 < float(outputs["score"][0]) <= 1.0
    assert outputs["answer"][1].numpy() == b"" and b"truncated" in outputs["problem"][1].numpy()
    # ... and refuses batches of different sizes instead of broadcasting one image over many questions.
    with pytest.raises(tf.errors.InvalidArgumentError, match="expected one question per image"):
        loaded.answer(tf.constant([image.read_bytes()]), tf.constant([QUESTION, QUESTION]))


@pytest.mark.real_data
def test_real_coco_photos_in_process(shared_data, tmp_path):
    """The reader, the shared cached feature extractor and the exported `answer` model on real photos."""
    import tensorflow as tf

    from common import export, feature_cache, training
    from common import images as common_images

    images = shared_data / "coco_mini" / "val2017"
    config = Config.from_preset(
        "tiny", ["image_features=cached", "encoder=small_cnn", "image_size=48", "epochs=1", f"image_dir={images}"]
    )
    training.setup(config)
    task = VQATask(config)
    data = task.load_data(FIXTURES, tmp_path)
    assert sum(data.info["questions"].values()) == 24 and data.scenes is None  # real data has no scene files
    preprocessor = task.Preprocessor.fit(task, data, tmp_path)
    assert preprocessor.image_feature_dim == 32 and preprocessor.facts["encoder_pretraining"] is None
    model = task.build_model(data, preprocessor)
    train, _ = task.datasets(data, preprocessor)
    cached = list((tmp_path / "features").rglob("*.npy"))
    tables = [f for f in cached if f.parent.name == feature_cache.TABLE_FOLDER]
    assert len(cached) - len(tables) == 8 and len(tables) == 1  # one feature file per photo, one table of them
    model.fit(train, epochs=1, verbose=0, shuffle=False)  # silent: a smoke test; the dataset shuffles itself
    metrics = task.evaluate(model, data, preprocessor, tmp_path)
    assert 0.0 <= metrics["model"]["vqa_accuracy"] <= 100.0
    # The endpoints without export_task's fresh-process check (test_task_shape covers it): seconds, not tens.
    export.write_archive(tmp_path / "export", track=[model, *preprocessor.layers()],
                         endpoints=task.endpoints(model, preprocessor))
    loaded = tf.saved_model.load(str(tmp_path / "export"))
    photo = common_images.read_image_bytes(images / "000000092660.jpg")
    outputs = loaded.answer(tf.constant([photo]), tf.constant(["what food is this?"]))
    assert outputs["answer"].shape == (1,) and outputs["answer"][0].numpy().decode() in preprocessor.answers
    assert outputs["problem"][0].numpy() == b""


@pytest.mark.real_data
@pytest.mark.slow
def test_real_coco_photos_reader_cached_features_and_export(shared_data, tmp_path):
    images = shared_data / "coco_mini" / "val2017"
    workdir = tmp_path / "run"
    completed = run_cli(
        "vqa", "--preset", "tiny", "--data-dir", str(FIXTURES), "--workdir", str(workdir),
        "--set", f"image_dir={images}", "--set", "image_features=cached", "--set", "encoder=small_cnn",
        "--set", "image_size=64",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    assert results["data"]["image_input"] == "cached" and sum(results["data"]["questions"].values()) == 24
    cached = [f for f in (workdir / "features").rglob("*.npy") if f.parent.name != "tables"]
    assert len(cached) == 8  # one cached feature file per photo (and one table of them)
    photo = images / "000000092660.jpg"
    predicted = run_cli("vqa", "predict", "--json", "--model", str(workdir / "export"), str(photo),
                        "what food is this?")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    assert json.loads(predicted.stdout)["answer"]


def test_tiny_run_draws_the_examples_grid(tiny_run):
    picture = tiny_run("vqa") / "examples.png"
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and 10_000 < picture.stat().st_size < 3_000_000
