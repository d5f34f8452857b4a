"""Captioning: readers, synthetic data, the fitted preprocessor, the model and generation, caption
metrics, and the CLI on the session's tiny run (tests/conftest.py ``tiny_run``; the registry-wide
tests/test_task_shape.py checks evaluate / export / predict from that run in a new process).

The official metrics start Java: the PTB tokenizer (about a second per call) and METEOR 1.5 (10-30 s
to start, once per process, shared by every test here through common.metrics.captions._meteor).
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import encoders
from common.metrics import captions as caption_metrics
from common.task import TaskError
from data import DataError
from data.captioning import read_splits
from data.coco_captions import CaptionedImage, read_caption_annotations, read_coco_captions, read_results_file
from data.flickr8k import read_flickr8k, read_token_file
from data.karpathy import read_karpathy_split
from data.synthetic import captions as synthetic_captions
from data.synthetic import scenes
from tasks.captioning import model as captioning_model
from tasks.captioning import pipeline
from tasks.captioning.config import Config
from tasks.captioning.task import CaptioningTask

from conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "captioning"
IMAGES = FIXTURES / "images"


# --- readers -------------------------------------------------------------------------------------------


def test_coco_reader_on_fixture():
    records = read_coco_captions(FIXTURES / "captions_fixture.json", IMAGES)
    assert [r.image_id for r in records] == [101, 102, 203, 204]
    assert records[1].captions[0] == "Two shapes: a blue square and a green triangle."
    assert len(records[1].captions) == 3 and Path(records[0].path) == IMAGES / "a.jpg"
    assert read_caption_annotations(FIXTURES / "captions_fixture.json")[203] == [
        "A yellow diamond at the top.", "One yellow diamond on black."]


def _edited_coco(tmp_path, edit) -> Path:
    payload = json.loads((FIXTURES / "captions_fixture.json").read_text())
    edit(payload)
    path = tmp_path / "captions_edited.json"
    path.write_text(json.dumps(payload))
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p["images"].append({"id": 999, "file_name": "lonely.jpg"}),
         r"image id 999 \(lonely.jpg\) has no caption"),
        (lambda p: p["annotations"].append({"id": 99, "image_id": 555, "caption": "x"}), "refer to image ids missing"),
        (lambda p: p["images"][0].pop("file_name"), r"images\[0\] needs 'id' and 'file_name'"),
        (lambda p: p["annotations"][2].update(caption="  "), r"annotations\[2\] has an empty"),
        (lambda p: p.pop("annotations"), "expected a list under 'annotations'"),
    ],
)
def test_coco_reader_errors(tmp_path, edit, message):
    with pytest.raises(DataError, match=message):
        read_coco_captions(_edited_coco(tmp_path, edit), IMAGES)


def test_coco_reader_missing_image_and_malformed_json(tmp_path):
    payload_path = _edited_coco(tmp_path, lambda p: p["images"][2].update(file_name="gone.jpg"))
    with pytest.raises(DataError, match=r"gone.jpg.*\(id 203\).*does not exist"):
        read_coco_captions(payload_path, IMAGES)
    assert len(read_coco_captions(payload_path, IMAGES, require_images=False)) == 4
    broken = tmp_path / "captions_broken.json"
    broken.write_text((FIXTURES / "captions_fixture.json").read_text()[:300])
    with pytest.raises(DataError, match=r"captions_broken.json.*is not valid JSON: .*line \d+"):
        read_coco_captions(broken, IMAGES)


def test_flickr8k_reader_on_fixture():
    splits = read_flickr8k(FIXTURES / "flickr8k", IMAGES)
    assert [r.image_id for r in splits["train"]] == ["b.jpg", "a.jpg"]  # split-list order
    assert [r.image_id for r in splits["validation"]] == ["c.jpg"] and [r.image_id for r in splits["test"]] == ["d.jpg"]
    assert splits["train"][1].captions == ("A red circle on a white background.", "There is one red circle.")
    assert "a.jpg.1" in read_token_file(FIXTURES / "flickr8k" / "Flickr8k.token.txt")  # read, then ignored: in no list


def test_flickr8k_reader_errors(tmp_path):
    folder = tmp_path / "flickr"
    shutil.copytree(FIXTURES / "flickr8k", folder)
    with pytest.raises(DataError, match=r"Image '.*nowhere/b.jpg' listed in Flickr_8k.trainImages.txt does not exist"):
        read_flickr8k(folder, tmp_path / "nowhere")
    (folder / "Flickr_8k.testImages.txt").write_text("d.jpg\nnew.jpg\n")
    with pytest.raises(DataError, match="'new.jpg' listed in .*Flickr_8k.testImages.txt' has no caption"):
        read_flickr8k(folder, IMAGES)
    token = folder / "Flickr8k.token.txt"
    token.write_text(token.read_text() + "c.jpg caption without a tab\n")
    with pytest.raises(DataError, match=r"line 11: expected '<image>.jpg#<k><TAB><caption>'"):
        read_flickr8k(folder, IMAGES)


def test_karpathy_reader_on_fixture_and_errors(tmp_path):
    splits = read_karpathy_split(FIXTURES / "dataset_fixture.json", FIXTURES)
    assert [r.image_id for r in splits["train"]] == [101, 102]  # "restval" trains, as in the standard protocol
    assert [r.image_id for r in splits["validation"]] == [203]
    assert splits["test"][0].captions[1].startswith("A purple cross")
    payload = json.loads((FIXTURES / "dataset_fixture.json").read_text())
    payload["images"][3]["sentences"] = []
    bad = tmp_path / "dataset_bad.json"
    bad.write_text(json.dumps(payload))
    with pytest.raises(DataError, match=r"images\[3\]: image 'd.jpg' has no caption"):
        read_karpathy_split(bad, FIXTURES)
    payload["images"][3]["split"] = "holdout"
    bad.write_text(json.dumps(payload))
    with pytest.raises(DataError, match="split 'holdout'"):
        read_karpathy_split(bad, FIXTURES)


def test_format_detection_and_unknown_folder(tmp_path):
    assert read_splits(FIXTURES / "flickr8k", require_images=False)[0] == "flickr8k"
    with pytest.raises(DataError, match="no captioning data recognised"):
        read_splits(tmp_path)


@pytest.mark.real_data
def test_real_flickr8k_text_reader_and_official_vs_nltk_bleu(shared_data):
    splits = read_flickr8k(shared_data / "flickr8k_text", require_images=False)
    assert {k: len(v) for k, v in splits.items()} == {"train": 6000, "validation": 1000, "test": 1000}
    assert all(len(r.captions) == 5 for r in splits["test"])
    # Leave-one-out on real multi-reference text: caption 0 scored against captions 1-4.
    test = splits["test"][:300]
    references = {i: list(r.captions[1:]) for i, r in enumerate(test)}
    predictions = {i: r.captions[0] for i, r in enumerate(test)}
    official = caption_metrics.score_captions(references, predictions, meteor=False)
    approximate = caption_metrics.score_captions(references, predictions, protocol="approximate")
    # Human captions against other human captions: BLEU-4 in the usual 0.1-0.3 band.
    assert 0.1 < official["Bleu_4"] < 0.35 and official["CIDEr"] > 0.3
    # nltk on a Python tokenizer lands close to coco-caption's BLEU, but is not the same number.
    for n in range(1, 5):
        assert abs(approximate[f"Bleu_{n}"] - official[f"Bleu_{n}"]) < 0.02
    assert approximate["Bleu_4"] != official["Bleu_4"]
    assert approximate["protocol"].startswith("APPROXIMATE")


@pytest.mark.real_data
def test_real_coco_mini_reader_and_photos(shared_data):
    from common.images import decode_images, read_image_bytes

    _, splits = read_splits(shared_data / "coco_mini")
    assert len(splits["train"]) == 80 and len(splits["validation"]) + len(splits["test"]) == 79
    assert all(len(r.captions) >= 5 for split in splits.values() for r in split)
    content = [read_image_bytes(r.path) for r in splits["test"][:4]]  # real photos of varied sizes
    assert decode_images(tf.constant(content), 48).shape == (4, 48, 48, 3)


# --- synthetic data ------------------------------------------------------------------------------------


def test_synthetic_captions_describe_the_scene():
    left = scenes.SceneObject(shape="circle", colour="red", size="large", x=0.2, y=0.5)
    right = scenes.SceneObject(shape="square", colour="orange", size="small", x=0.8, y=0.5)
    pool = synthetic_captions.caption_pool(scenes.Scene(objects=(right, left), background="grey"))
    assert "a red circle to the left of an orange square" in pool
    assert "an orange square to the right of a red circle" in pool
    assert "two shapes : a large red circle and a small orange square" in pool
    single = synthetic_captions.caption_pool(scenes.Scene(objects=(left,), background="black"))
    assert "a large red circle on a black background" in single and "a red circle on the left" in single
    scene = scenes.Scene(objects=(left,), background="black")
    chosen = synthetic_captions.captions_for(scene, np.random.default_rng(0))
    assert len(set(chosen)) == 5 and all(c[0].isupper() and c.endswith(".") for c in chosen)


def test_synthetic_writer_formats_agree_and_are_reused(tmp_path):
    sizes = {"train": 6, "validation": 2, "test": 3}
    synthetic_captions.write_caption_dataset(tmp_path, sizes, image_size=32, seed=3)
    formats = {kind: read_splits(tmp_path, kind)[1] for kind in ("coco", "flickr8k", "karpathy")}
    for split, count in sizes.items():
        captions = [[(Path(r.path).name, r.captions) for r in formats[kind][split]] for kind in formats]
        assert len(captions[0]) == count and captions[0] == captions[1] == captions[2]
    marker = tmp_path / "generator.json"
    stamp = marker.stat().st_mtime_ns
    synthetic_captions.write_caption_dataset(tmp_path, sizes, image_size=32, seed=3)
    assert marker.stat().st_mtime_ns == stamp  # same parameters: nothing rewritten
    synthetic_captions.write_caption_dataset(tmp_path, sizes, image_size=32, seed=4)
    assert json.loads(marker.read_text())["seed"] == 4


# --- tokenisation, the preprocessor and the pipeline ------------------------------------------------------


def _preprocessor(captions, min_count=1, max_words=3, baseline="a red circle") -> pipeline.Preprocessor:
    """A Preprocessor with a small random-weight encoder (no fitting, no files)."""
    vocabulary = pipeline.Vocabulary.fit(captions, min_count=min_count)
    encoder = encoders.build_encoder("small_cnn", 16, feature_dim=4)
    facts = {"name": "small_cnn", "image_size": 16, "feature_dim": 4, "weights": "random"}
    return pipeline.Preprocessor(vocabulary.words, max_words, encoder, facts, baseline)


def test_tokenize_is_lowercase_letter_and_digit_runs():
    assert pipeline.tokenize(["A man's dog, running... Fast!", "Çafé über 3rd", "..."]) == [
        ["a", "man", "s", "dog", "running", "fast"], ["af", "ber", "3rd"], []]


def test_vocabulary_and_encode_known_answer():
    preprocessor = _preprocessor(["A red circle.", "a blue circle", "Red, red!"], min_count=2)
    assert preprocessor.vocabulary.words == ["<pad>", "<unk>", "<start>", "<end>", "red", "a", "circle"]
    assert preprocessor.lookup.get_vocabulary() == preprocessor.vocabulary.words
    inputs, targets = preprocessor.encode(tf.constant(["a red circle", "circle circle circle circle", "A blue!", ""]))
    np.testing.assert_array_equal(inputs, [[2, 5, 4, 6], [2, 6, 6, 6], [2, 5, 1, 0], [2, 0, 0, 0]])
    np.testing.assert_array_equal(targets, [[5, 4, 6, 3], [6, 6, 6, 3], [5, 1, 3, 0], [3, 0, 0, 0]])  # 4th word cut
    decoded = preprocessor.decode(tf.constant([[5, 4, 6, 3, 5], [2, 6, 0, 4, 4]])).numpy().tolist()
    assert decoded == [b"a red circle", b"circle"]
    with pytest.raises(DataError, match="min_count=9"):
        pipeline.Vocabulary.fit(["a b"], min_count=9)


def test_most_frequent_caption_and_word_presence():
    records = [CaptionedImage(1, "x.jpg", ("A red circle.", "Two shapes")),
               CaptionedImage(2, "y.jpg", ("a red circle", "Blue!"))]
    assert pipeline.most_frequent_caption(records) == "a red circle"
    vocabulary = pipeline.Vocabulary.fit(["a red circle", "two shapes"])
    presence = pipeline.word_presence(records, vocabulary)
    assert presence.shape == (2, len(vocabulary)) and presence[0, 4:].sum() == 5 and presence[1, 4:].sum() == 3


def test_caption_dataset_gathers_features_per_caption():
    preprocessor = _preprocessor(["a b c"], max_words=4)
    features = np.arange(6, dtype=np.float32).reshape(3, 2)
    dataset = pipeline.caption_dataset(features, [["a"], ["b", "c"], ["a b"]], preprocessor, 10, shuffle=False, seed=0)
    inputs, targets = next(iter(dataset))
    np.testing.assert_array_equal(inputs["image_features"].numpy(), features[[0, 1, 1, 2]])
    assert inputs["caption_tokens"].shape == (4, 5) and targets.shape == (4, 5)
    np.testing.assert_array_equal(targets[3], [4, 5, 3, 0, 0])


def test_caption_dataset_streams_a_memory_mapped_table_in_the_order_of_the_in_memory_pipeline(tmp_path):
    preprocessor = _preprocessor(["a b c"], max_words=4)
    features = np.random.default_rng(0).standard_normal((500, 256)).astype(np.float32)  # 512 kB
    np.save(tmp_path / "table.npy", features)
    mapped = np.load(tmp_path / "table.npy", mmap_mode="r")
    captions = [["a b", "c"] if i % 2 else ["b"] for i in range(500)]
    in_memory = pipeline.caption_dataset(features, captions, preprocessor, 64, shuffle=True, seed=3)
    streamed = pipeline.caption_dataset(mapped, captions, preprocessor, 64, shuffle=True, seed=3)
    # The order of the pipeline before the table left the graph: (image, caption) pairs shuffled, then batched.
    image_index = np.array([i for i, c in enumerate(captions) for _ in c])
    before = tf.data.Dataset.from_tensor_slices(image_index).shuffle(len(image_index), seed=3).batch(64)
    for epoch in range(2):  # reshuffled each epoch, identically
        for (memory_inputs, memory_targets), (inputs, targets), rows in zip(in_memory, streamed, before):
            np.testing.assert_array_equal(inputs["image_features"].numpy(), features[rows.numpy()])
            np.testing.assert_array_equal(inputs["image_features"].numpy(), memory_inputs["image_features"].numpy())
            np.testing.assert_array_equal(inputs["caption_tokens"].numpy(), memory_inputs["caption_tokens"].numpy())
            np.testing.assert_array_equal(targets.numpy(), memory_targets.numpy())
    assert len(streamed._as_serialized_graph().numpy()) < features.nbytes / 5  # the tokenizer's ops, no table


def test_bench_input_pipeline_at_tiny_size(tmp_path):
    result = run_cli("captioning", "bench", "--preset", "tiny", "--workdir", str(tmp_path),
                     "--set", "bench_training=false", "--set", "bench_feature_dim=512")
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads((tmp_path / "bench.json").read_text())["figures"]
    measured = figures["input_pipeline"]
    assert "speedup" not in figures and measured["full_size"] is False  # bench_training=false: no training part
    assert (measured["images"], measured["captions"], measured["timed_examples"]) == (1182, 5910, 20 * 32)
    assert measured["examples_per_second"] > 0 and measured["memory_after_megabytes"]["peak_rss_megabytes"] > 0
    assert measured["dataset_graph_bytes"] < measured["table_megabytes"] * 2**20 / 4
    assert "input_pipeline.examples_per_second" in result.stdout


def test_preprocessor_round_trips_and_fits_the_training_split_only(tmp_path):
    config = Config.from_preset("tiny", {"train_images": 12, "validation_images": 2, "test_images": 2})
    task = CaptioningTask(config)
    data = task.load_data(None, tmp_path / "work")
    keras.utils.set_random_seed(0)
    fitted = pipeline.Preprocessor.fit(task, data, tmp_path / "work")
    assert fitted.encoder_facts["pretraining"]["epochs"] == 1
    train_words = {w for words in pipeline.tokenize([c for r in data.train for c in r.captions]) for w in words}
    assert set(fitted.vocabulary.words[4:]) == train_words
    fitted.save(tmp_path / "preprocessor")
    loaded = pipeline.Preprocessor.load(tmp_path / "preprocessor")
    assert loaded.get_state() == fitted.get_state() and loaded.encoder_key == fitted.encoder_key
    captions = tf.constant([c for r in data.test for c in r.captions] + ["an unseen zebra", ""])
    for expected, got in zip(fitted.encode(captions), loaded.encode(captions)):
        np.testing.assert_array_equal(got.numpy(), expected.numpy())
    content = tf.constant([Path(r.path).read_bytes() for r in data.test] + [b"not an image"])
    features, problems = fitted.encode_images(content)
    loaded_features, loaded_problems = loaded.encode_images(content)
    np.testing.assert_array_equal(loaded_features.numpy(), features.numpy())
    assert problems.numpy().tolist()[:2] == [b"", b""] and loaded_problems.numpy().tolist() == problems.numpy().tolist()
    # The cached features are the encoder's: the endpoint's decode path and the cache agree.
    cached = loaded.features(data.test, tmp_path / "cache", batch_size=8)
    np.testing.assert_allclose(cached, features.numpy()[:2], rtol=1e-5, atol=1e-6)


def test_preprocessor_fit_names_a_truncated_image(tmp_path):
    folder = tmp_path / "coco"
    (folder / "annotations").mkdir(parents=True)
    shutil.copytree(IMAGES, folder / "images")
    shutil.copy(FIXTURES / "truncated.jpg", folder / "images" / "c.jpg")
    for split in ("train", "val"):
        shutil.copy(FIXTURES / "captions_fixture.json", folder / "annotations" / f"captions_{split}.json")
    task = CaptioningTask(Config.from_preset("tiny"))
    data = task.load_data(folder, tmp_path / "work")  # reads and splits: images are not decoded here
    with pytest.raises(DataError, match="at least 10 training images"):
        pipeline.Preprocessor.fit(task, data, tmp_path / "work")
    task = CaptioningTask(Config.from_preset("tiny", {"encoder_pretrain_epochs": 0}))
    preprocessor = pipeline.Preprocessor.fit(task, data, tmp_path / "work")
    with pytest.raises(DataError, match=r"images/c.jpg' is corrupt or truncated"):
        task.datasets(data, preprocessor)


# --- model and generation -------------------------------------------------------------------------------


def _tiny_model(vocabulary_size=9, feature_dim=6):
    config = Config.from_preset("tiny", {"max_caption_length": 5})
    return config, captioning_model.build_model(config, vocabulary_size=vocabulary_size, feature_dim=feature_dim)


def test_model_shapes_keras_round_trip_and_generation(tmp_path):
    keras.utils.set_random_seed(0)
    config, model = _tiny_model()
    inputs = {"image_features": np.random.rand(2, 6).astype("float32"),
              "caption_tokens": np.array([[2, 4, 5, 0, 0, 0]] * 2, "int32")}
    logits = model(inputs)
    assert logits.shape == (2, 6, 9) and logits.dtype == "float32"
    model.save(tmp_path / "model.keras")
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded(inputs).numpy(), logits.numpy(), rtol=1e-5, atol=1e-6)

    generator = captioning_model.CaptionGenerator(model, max_words=5)
    features = tf.constant(inputs["image_features"])
    greedy, greedy_log_prob = generator.generate(features, beam_width=1)
    beam, beam_score = generator.generate(features, beam_width=3)
    assert greedy.shape == (2, 6) and beam.shape == (2, 6)
    assert np.all(beam_score.numpy() >= greedy_log_prob.numpy() - 1e-4)  # beam never worse than greedy
    assert not np.isin(greedy.numpy(), [pipeline.UNK_ID, pipeline.START_ID]).any()
    # The step function matches the teacher-forced model on the same prefix.
    state = generator.initial_state(features)
    log_probs, _ = generator.step(tf.constant([2, 2]), state)
    expected = tf.nn.log_softmax(logits[:, 0, :]).numpy()
    allowed = np.arange(9) > pipeline.START_ID
    renormalised = expected[:, allowed] - np.log(np.exp(expected[:, allowed]).sum(1, keepdims=True))
    np.testing.assert_allclose(log_probs.numpy()[:, allowed], renormalised, atol=1e-5)


def test_tokens_to_strings_known_answer():
    words = tf.constant(["<pad>", "<unk>", "<start>", "<end>", "a", "red", "circle"])
    tokens = tf.constant([[4, 5, 6, 3, 0], [6, 3, 4, 4, 0], [3, 0, 0, 0, 0], [4, 4, 4, 4, 4]])
    expected = [b"a red circle", b"circle", b"", b"a a a a a"]
    assert pipeline.tokens_to_strings(tokens, words).numpy().tolist() == expected


def test_decoder_lstm_keeps_cudnn_eligible_settings():
    # Keras runs the LSTM on cuDNN only with these settings; any other silently falls back to a loop many
    # times slower on a GPU (keras/src/backend/tensorflow/rnn.py cudnn_ok, keras/src/layers/rnn/lstm.py).
    for preset in ("tiny", "default", "paper"):
        model = captioning_model.build_model(Config.from_preset(preset), vocabulary_size=9, feature_dim=6)
        lstm = model.get_layer("decoder_lstm")
        assert lstm.cell.activation is keras.activations.tanh, preset
        assert lstm.cell.recurrent_activation is keras.activations.sigmoid, preset
        assert lstm.cell.use_bias and not lstm.unroll and lstm.cell.recurrent_dropout == 0, preset
        assert lstm.use_cudnn in ("auto", True), preset
        from keras.src.backend.tensorflow import rnn as keras_rnn  # the exact check Keras makes, where it exists

        check = getattr(keras_rnn, "_do_lstm_arguments_support_cudnn", None)
        if check is not None:
            assert check(lstm.cell.activation, lstm.cell.recurrent_activation, lstm.unroll, lstm.cell.use_bias)


def test_no_caption_reaching_the_masked_decoder_lstm_is_fully_masked(tmp_path):
    # cuDNN rejects a batch holding a fully masked sequence, or one not right-padded (DESIGN rule 15).
    config = Config.from_preset("tiny")
    task = CaptioningTask(config)
    data = task.load_data(None, tmp_path / "work")
    preprocessor = _preprocessor([c for r in data.train for c in r.captions], max_words=config.max_caption_length)
    embedding = captioning_model.build_model(config, len(preprocessor.vocabulary), 4).get_layer("word_embedding")
    test_set = pipeline.caption_dataset(np.zeros((len(data.test), 4), np.float32), [r.captions for r in data.test],
                                        preprocessor, config.batch_size, shuffle=False, seed=0)
    # The edge case: captions without a single kept word (the readers reject only empty ones).
    odd = tf.constant(["...", "!!! ???", "", "a " * 40])
    batches = [inputs["caption_tokens"] for dataset in (*task.datasets(data, preprocessor), test_set)
               for inputs, _ in dataset] + [preprocessor.encode(odd)[0]]
    assert sum(len(tokens) for tokens in batches[:-1]) == sum(len(r.captions) for r in data.train + data.validation
                                                               + data.test)
    for tokens in batches:
        mask = embedding.compute_mask(tokens).numpy()  # what the LSTM receives (Dropout passes it on)
        np.testing.assert_array_equal(mask, tokens.numpy() != pipeline.PAD_ID)
        lengths = mask.sum(axis=1)
        assert lengths.min() >= 1 and np.all(tokens.numpy()[:, 0] == pipeline.START_ID)
        np.testing.assert_array_equal(mask, np.arange(mask.shape[1]) < lengths[:, None])  # right-padded
    assert batches[-1].numpy()[:3, 1].tolist() == [pipeline.PAD_ID] * 3  # only <start> is left of those


def test_tensorboard_caption_examples_in_a_tiny_fit(tmp_path):
    from common import training
    from tasks.captioning import callbacks

    words = ["<pad>", "<unk>", "<start>", "<end>", "a", "red", "circle", "blue", "square"]
    config = Config.from_preset("tiny", {"max_caption_length": 5, "tensorboard": True, "epochs": 2, "verbose": 0,
                                         "logged_examples": 3})
    keras.utils.set_random_seed(0)
    model = training.compile_model(captioning_model.build_model(config, vocabulary_size=9, feature_dim=6), config,
                                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    features = rng.normal(size=(16, 6)).astype("float32")
    tokens = np.array([[2, *rng.integers(4, 9, size=3), 0, 0] for _ in range(16)], "int32")
    targets = np.concatenate([tokens[:, 1:4], np.full((16, 1), 3), np.zeros((16, 2))], axis=1).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices(({"image_features": features, "caption_tokens": tokens},
                                                  targets)).batch(8)
    records = [CaptionedImage(i, f"/images/scene_{i}.jpg", ("A red | circle.", "a circle")) for i in range(5)]
    assert callbacks.caption_examples(dataclasses.replace(config, tensorboard=False), records, features, words,
                                      tmp_path) == []
    examples = callbacks.caption_examples(config, records, features[:5], words, tmp_path)
    assert len(examples) == 1  # one table of logged_examples (3) of the 5 validation images: checked below
    training.fit(model, dataset, dataset, config, tmp_path, extra_callbacks=examples)

    folder = tmp_path / "logs" / "tensorboard" / callbacks.SUBFOLDER
    texts = {}
    for events in sorted(folder.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(events)):  # an events file is a TFRecord file of Events
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                texts[(event.step, value.tag)] = tf.make_ndarray(value.tensor).item().decode("utf-8")
    assert sorted(texts) == [(0, callbacks.TAG), (1, callbacks.TAG)]  # one table per epoch, Keras' epoch index
    table = texts[(1, callbacks.TAG)].splitlines()
    assert table[0] == "Epoch 2: captions generated for validation images (beam 2)."
    assert table[2:4] == ["| image | generated | references |", "|---|---|---|"] and len(table) == 7
    assert table[4].startswith("| scene_0.jpg | ") and table[4].endswith(" | A red \\| circle. / a circle |")
    generated = [row.split(" | ")[1] for row in table[4:]]
    assert all(set(g.split()) <= set(words[4:]) or g == "(empty)" for g in generated)


# --- caption metrics ------------------------------------------------------------------------------------


def test_caption_metrics_known_answers_official_and_approximate():
    references = {1: ["A red circle on white."], 2: ["two blue squares", "a pair of blue squares"]}
    predictions = {1: "a red circle", 2: "two blue squares"}
    scores = caption_metrics.score_caption_sets(
        references,
        {"p": predictions, "same": {1: "a red circle on white", 2: "two blue squares"},
         "bad": {1: "green", 2: "green"}},
        meteor=True,
    )
    official = scores["p"]
    # Hand-checked corpus BLEU: clipped precisions are 1 (7/7 unigrams, 5/5 bigrams, 3/3 trigrams);
    # closest reference lengths 5 and 3, hypothesis lengths 3 and 3: BP = exp(1 - 8/6).
    brevity = math.exp(1 - 8 / 6)
    for n in (1, 2, 3):
        assert official[f"Bleu_{n}"] == pytest.approx(brevity, abs=1e-6)
    assert official["Bleu_4"] < brevity  # image 1 has no 4-gram at all
    # ROUGE-L (β = 1.2): image 1: P = 1, R = 3/5 → 2.44·0.6/(0.6 + 1.44·1); image 2: exact → 1.
    assert official["ROUGE_L"] == pytest.approx((2.44 * 0.6 / (0.6 + 1.44) + 1.0) / 2, abs=1e-6)
    assert list(official)[:7] == list(caption_metrics.OFFICIAL_KEYS)
    assert scores["same"]["Bleu_4"] == pytest.approx(1.0, abs=1e-6) and scores["same"]["METEOR"] > 0.95
    assert scores["bad"]["METEOR"] < official["METEOR"] < scores["same"]["METEOR"]
    assert scores["bad"]["CIDEr"] == 0.0 and scores["same"]["CIDEr"] > official["CIDEr"] > 0
    approximate = caption_metrics.score_captions(references, predictions, protocol="approximate")
    for n in (1, 2, 3):
        assert approximate[f"Bleu_{n}"] == pytest.approx(brevity, abs=1e-6)  # nltk agrees on this easy case
    assert "METEOR" not in approximate and approximate["ROUGE_L"] == pytest.approx(official["ROUGE_L"])


def test_metrics_without_java_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(caption_metrics.shutil, "which", lambda name: None)
    with pytest.raises(caption_metrics.CaptionMetricsError, match="need a Java runtime.*metrics=approximate"):
        caption_metrics.score_captions({1: ["a"]}, {1: "a"})
    scores = caption_metrics.score_captions({1: ["a b"]}, {1: "a b"}, protocol="approximate")
    assert scores["Bleu_1"] == pytest.approx(1.0)


def test_simple_tokenize_mimics_ptb():
    assert caption_metrics.simple_tokenize("A man's dog, running... Fast! Don't.") == "a man 's dog running fast do n't"


def test_score_and_results_file_errors(tmp_path):
    task = CaptioningTask(Config.from_preset("default", {"meteor": False}))
    files = {"annotations": FIXTURES / "captions_fixture.json", "predictions": FIXTURES / "results_fixture.json"}
    # The fixture's results caption 2 of the 4 annotated images: a subset is scored only when asked for.
    with pytest.raises(TaskError, match=r"results_fixture.json' has no caption for 2 of the 4 images in "
                                        r".*captions_fixture.json', e.g. image ids \[102, 204\]; .*--allow-missing"):
        task.score(files)
    with pytest.raises(TaskError, match="--allow-missing"):
        task.score({**files, "allow_missing": False})
    scores = task.score({**files, "allow_missing": True})
    assert scores["images"] == 2 and scores["images_without_prediction"] == 2 and 0 < scores["CIDEr"]
    assert "METEOR" not in scores
    for key, expected in (("predictions", "a COCO results JSON file"), ("annotations", "a COCO captions JSON file")):
        with pytest.raises(DataError, match=f"'{tmp_path}' is a folder; expected {expected}"):
            task.score({**files, key: tmp_path})
    unknown = tmp_path / "unknown.json"
    unknown.write_text(json.dumps([{"image_id": 7, "caption": "x"}]))
    with pytest.raises(DataError, match=r"1 image ids that are not in"):
        task.score({"annotations": FIXTURES / "captions_fixture.json", "predictions": unknown})
    for content, message in [
        ('{"image_id": 101}', "expected a JSON list"),
        ('[{"image_id": 101, "caption": "a"}, {"image_id": 101, "caption": "b"}]', "appears twice"),
        ('[{"image_id": 101}]', r"entry 0: expected \{\"image_id\", \"caption\"\}"),
        ("[", "not valid JSON"),
        ("[]", "is an empty list"),
    ]:
        bad = tmp_path / "bad.json"
        bad.write_text(content)
        with pytest.raises(DataError, match=message):
            read_results_file(bad)


def test_config_validation():
    with pytest.raises(ValueError, match="encoder='vgg16' is not allowed"):
        Config(encoder="vgg16")
    with pytest.raises(ValueError, match="max_objects=7"):
        Config(max_objects=7)
    with pytest.raises(ValueError, match="max_test_images=0 must be at least 1"):
        Config(max_test_images=0)


# --- end to end (the session's tiny run) -------------------------------------------------------------------


def test_tiny_run_results_predictions_and_score(tiny_run, tmp_path):
    workdir = tiny_run("captioning")
    results = json.loads((workdir / "results.json").read_text())
    metrics = results["metrics"]
    assert results["primary_metric"] == "CIDEr" and set(metrics["baselines"]) == {"most_frequent_caption"}
    baseline = metrics["baselines"]["most_frequent_caption"]
    for key in ("Bleu_1", "Bleu_4", "ROUGE_L", "CIDEr"):
        assert 0.0 <= metrics["model"][key] and 0.0 <= baseline[key] and 0.0 <= metrics["greedy_decoding"][key]
    assert isinstance(baseline["caption"], str) and baseline["caption"]
    assert metrics["teacher_forced"]["perplexity"] > 1.0
    assert metrics["encoder"]["weights"].startswith("pretrained on the training images")
    assert results["data"]["images"] == {"train": 48, "validation": 12, "test": 12}
    assert results["export"]["endpoints"]["caption"]["shapes"] == [[3], [3], [3]]
    assert (workdir / "checkpoints" / "preprocessor" / pipeline.ENCODER_WEIGHTS).is_file()
    predictions = workdir / "predictions"
    assert (predictions / "caption_grid.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    submitted = json.loads((predictions / "captions_test_results.json").read_text())
    assert len(submitted) == 12 and set(submitted[0]) == {"image_id", "caption"}
    # The written files score to the evaluation's own numbers (the same protocol, METEOR off in tiny).
    task = CaptioningTask(Config.from_preset("tiny"))
    scored = task.score({"annotations": predictions / "captions_test_annotations.json",
                         "predictions": predictions / "captions_test_results.json"})
    assert scored["CIDEr"] == pytest.approx(metrics["model"]["CIDEr"], abs=1e-9)

    image = Path(results["export"]["predict_example"][-1])
    assert image.suffix == ".jpg" and image.parent.name == "samples"
    broken, empty, text = tmp_path / "broken.jpg", tmp_path / "empty.png", tmp_path / "notes.txt"
    broken.write_bytes(image.read_bytes()[:200])
    empty.write_bytes(b"")
    text.write_text("not an image")
    predicted = run_cli("captioning", "predict", "--json", "--model", str(workdir / "export"), str(image), str(broken),
                        str(empty), str(text))
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    lines = [json.loads(line) for line in predicted.stdout.strip().splitlines()]
    assert lines[0]["image"] == str(image) and isinstance(lines[0]["caption"], str) and "problem" not in lines[0]
    assert lines[1]["caption"] == "" and "truncated JPEG" in lines[1]["problem"]
    assert "empty input" in lines[2]["problem"] and "not a JPEG or PNG" in lines[3]["problem"]

    missing = run_cli("captioning", "predict", "--model", str(workdir / "export"), str(tmp_path / "nowhere.jpg"))
    assert missing.returncode == 2 and "error: Input '" in missing.stderr and "is not a file" in missing.stderr
    missing = run_cli("captioning", "score", "--annotations", str(predictions / "captions_test_annotations.json"),
                      "--predictions", str(tmp_path / "none.json"))
    assert missing.returncode == 2 and "error: Predictions file" in missing.stderr
    assert "does not exist" in missing.stderr
    partial = tmp_path / "partial_results.json"
    partial.write_text(json.dumps(submitted[1:]))  # the first test image has no caption
    refused = run_cli("captioning", "score", "--annotations", str(predictions / "captions_test_annotations.json"),
                      "--predictions", str(partial))
    assert refused.returncode == 2 and "has no caption for 1 of the 12 images" in refused.stderr
    assert f"e.g. image ids [{submitted[0]['image_id']}]" in refused.stderr and "--allow-missing" in refused.stderr


@pytest.mark.slow
@pytest.mark.real_data
def test_cli_tiny_on_real_coco_mini(shared_data, tmp_path):
    workdir = tmp_path / "coco"
    result = run_cli("captioning", "--preset", "tiny", "--data-dir", str(shared_data / "coco_mini"),
                     "--workdir", str(workdir),
                     "--set", "encoder=mobilenet_v3_small", "--set", "image_size=64", "--set", "min_count=2")
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    assert results["data"]["format"] == "coco" and results["data"]["images"]["train"] == 80
    assert "RANDOM weights" in result.stderr


@pytest.mark.slow
def test_bench_cached_features_vs_recomputing_the_cnn(tmp_path):
    from common import training

    config = Config.from_preset("tiny")
    training.setup(config)
    figures = CaptioningTask(config).bench(None, tmp_path)["figures"]
    assert figures["steps_per_epoch"] == 8 and figures["timed_steps"] == 30 and figures["input_pipeline"]["images"]
    assert figures["cached_seconds_per_epoch"] > 0 and figures["speedup"] > 1.0


# --- more bad inputs, each with the message a user reads ------------------------------------------------


def test_more_reader_errors(tmp_path):
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="expected a JSON object at the top level, got a list"):
        read_coco_captions(tmp_path / "list.json", IMAGES)
    (tmp_path / "dataset_x.json").write_text("{not json")
    with pytest.raises(DataError, match="Karpathy split file .*dataset_x.json' is not valid JSON"):
        read_karpathy_split(tmp_path / "dataset_x.json", IMAGES)
    with pytest.raises(DataError, match="Karpathy split file .*missing.json' does not exist"):
        read_karpathy_split(tmp_path / "missing.json", IMAGES)
    folder = tmp_path / "flickr"
    shutil.copytree(FIXTURES / "flickr8k", folder)
    (folder / "Flickr_8k.devImages.txt").write_text("\n")
    with pytest.raises(DataError, match="Flickr_8k.devImages.txt' is empty"):
        read_flickr8k(folder, IMAGES)
    (folder / "Flickr8k.token.txt").write_text("a.jpg#0\t   \n")
    with pytest.raises(DataError, match="line 1: empty caption for a.jpg"):
        read_token_file(folder / "Flickr8k.token.txt")
    with pytest.raises(DataError, match="is not a folder"):
        read_splits(FIXTURES / "captions_fixture.json")
    coco = tmp_path / "coco" / "annotations"
    coco.mkdir(parents=True)
    shutil.copy(FIXTURES / "captions_fixture.json", coco / "captions_train2014.json")
    with pytest.raises(DataError, match="expected annotations/captions_train.*json and annotations/captions_val"):
        read_splits(tmp_path / "coco", require_images=False)


def test_metric_input_errors():
    with pytest.raises(caption_metrics.CaptionMetricsError, match="no predictions"):
        caption_metrics.score_captions({1: ["a"]}, {}, protocol="approximate")
    with pytest.raises(caption_metrics.CaptionMetricsError, match="1 predicted image ids have no references"):
        caption_metrics.score_captions({1: ["a"]}, {2: "a"}, protocol="approximate")
    with pytest.raises(ValueError, match="protocol='bleu'"):
        caption_metrics.score_captions({1: ["a"]}, {1: "a"}, protocol="bleu")


def test_predict_errors(tmp_path):
    from common import export

    task = CaptioningTask(Config())
    with pytest.raises(TaskError, match="is not an exported model"):
        export.predict(task, tmp_path, ["x.jpg"])
    with pytest.raises(TaskError, match="Input 'nowhere.jpg' is not a file"):
        task.predict_arguments(["nowhere.jpg"])
    (arguments,) = task.predict_arguments([str(IMAGES / "a.jpg"), str(FIXTURES / "truncated.jpg")])
    assert arguments.dtype == object and arguments[0][:3] == b"\xff\xd8\xff"
