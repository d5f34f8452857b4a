"""Translation with subword units (config.subword_vocabulary) and the target data's apostrophe: fitted on
train, saved with the preprocessor, inside the exported SavedModel; the default and tiny presets keep words."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import export, subwords, text
from common.config import ConfigError
from common.task import TaskError
from data import pairs as pair_reader
from tasks.translation import plots
from tasks.translation.config import Config
from tasks.translation.pipeline import Preprocessor, majority_apostrophe
from tasks.translation.task import TranslationData, TranslationTask, translate_all

pair = pair_reader.Pair


def tiny_config(**overrides):
    return Config.from_preset("tiny", {"synthetic_pairs": 200, **overrides})


def tiny_data(train):
    return TranslationData(train=train, validation=train[:2], test=train[:2], test_sources=[train[0].source],
                           test_references=[[train[0].target]])


def test_best_preset_uses_subword_units_and_words_stay_one_set_away():
    # Chosen on validation over three paired seeds (the task's README); --set subword_vocabulary=0 gives words.
    assert Config.from_preset("best").subword_vocabulary == 2000
    assert Config.from_preset("best", ["subword_vocabulary=0"]).subword_vocabulary == 0


def test_default_and_tiny_presets_keep_word_tokens_and_the_plain_apostrophe(tmp_path):
    assert Config().subword_vocabulary == 0 and Config.from_preset("tiny").subword_vocabulary == 0
    task = TranslationTask(tiny_config())
    preprocessor = Preprocessor.fit(task, task.load_data(None, tmp_path), tmp_path)
    assert not preprocessor.subwords and preprocessor.serving_imports == ()
    assert preprocessor.apostrophe == "'" and preprocessor.get_state()["subwords"] is False
    assert [layer.name for layer in preprocessor.layers()] == ["source_lookup", "target_lookup", "target_words"]


@pytest.mark.parametrize("override, message", [
    ({"subword_vocabulary": 3}, "subword_vocabulary=3 must be 0"),
    ({"subword_model": "wordpiece"}, "subword_model='wordpiece' is not allowed"),
    ({"target_apostrophe": "curly"}, "target_apostrophe='curly' is not allowed"),
])
def test_config_rejects_bad_subword_and_apostrophe_values(override, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_preset("default", override)


def test_a_subword_vocabulary_smaller_than_the_alphabet_is_an_error_naming_the_key(tmp_path):
    task = TranslationTask(tiny_config(subword_vocabulary=8))
    with pytest.raises(TaskError, match=r"subword_vocabulary=8 \(source side of the training split\)"):
        Preprocessor.fit(task, task.load_data(None, tmp_path), tmp_path)


# Two of three training targets write the typographic apostrophe.
APOSTROPHE_PAIRS = [pair("I saw it.", "Je l’ai vu."), pair("It's sad.", "C’est triste."),
                    pair("Help!", "À l'aide !")]


@pytest.mark.parametrize("subword_vocabulary", [0, 40])
def test_the_output_writes_the_apostrophe_most_training_targets_write(tmp_path, subword_vocabulary):
    assert majority_apostrophe([p.target for p in APOSTROPHE_PAIRS]) == "\u2019"
    assert majority_apostrophe(["l'eau", "d’eau"]) == "'" and majority_apostrophe(["Oui."]) == "'"  # ties: plain
    for setting, expected in (("majority", ["Je l’ai vu.", "À l’aide !"]), ("plain", ["Je l'ai vu.", "À l'aide !"]),
                              ("typographic", ["Je l’ai vu.", "À l’aide !"])):
        task = TranslationTask(tiny_config(target_apostrophe=setting, subword_vocabulary=subword_vocabulary))
        preprocessor = Preprocessor.fit(task, tiny_data(APOSTROPHE_PAIRS), tmp_path)
        ids = preprocessor.encode_target(tf.constant(["Je l'ai vu.", "À l’aide !"]))[:, 1:]  # either form in
        assert [t.decode() for t in preprocessor.decode(ids).numpy()] == expected, setting
        assert preprocessor.join_target([["l'ai"]]) == [expected[0][3:7]]  # the baseline writes it too
    preprocessor.save(tmp_path / "saved")
    assert Preprocessor.load(tmp_path / "saved").apostrophe == "\u2019"


@pytest.fixture(scope="module")
def subword_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("translation_subwords")
    config = tiny_config(subword_vocabulary=120, reverse_source=True, max_target_tokens=30, max_source_tokens=30)
    keras.utils.set_random_seed(config.seed)
    task = TranslationTask(config)
    data = task.load_data(None, workdir)
    preprocessor = Preprocessor.fit(task, data, workdir)
    return task, data, preprocessor, task.build_model(data, preprocessor), workdir


def test_subword_preprocessor_is_fitted_on_train_saved_with_its_models_and_reloaded(subword_run, tmp_path):
    task, data, preprocessor, _, _ = subword_run
    assert preprocessor.subwords and preprocessor.serving_imports == ("tensorflow_text",)
    assert 4 < len(preprocessor.source_vocabulary) <= 120 and preprocessor.target_vocabulary[:4] == list(text.RESERVED)
    # Deterministic for a seed: a second fit gives the same models.
    again = Preprocessor.fit(task, data, tmp_path)
    assert again.source_subwords == preprocessor.source_subwords
    assert again.target_subwords == preprocessor.target_subwords
    preprocessor.save(tmp_path / "preprocessor")
    assert {p.name for p in (tmp_path / "preprocessor").iterdir()} == {"preprocessor.json", "source.subwords",
                                                                       "target.subwords"}
    loaded = Preprocessor.load(tmp_path / "preprocessor")
    assert loaded.get_state() == preprocessor.get_state()
    sentences = tf.constant([p.source for p in data.test[:5]] + ["", "Unknown WORDS, «here» !", "x " * 100])
    targets = tf.constant([p.target for p in data.test[:5]] + ["", "zz", "y " * 100])
    np.testing.assert_array_equal(loaded.encode(sentences), preprocessor.encode(sentences))
    np.testing.assert_array_equal(loaded.encode_target(targets), preprocessor.encode_target(targets))
    # A training target, framed and decoded, reads exactly as written (case and spacing kept).
    short = data.train[0].target
    assert loaded.decode(loaded.encode_target(tf.constant([short]))[:, 1:]).numpy()[0].decode() == short
    # Labels of the pieces (attention picture) carry no SentencePiece mark; the word statistics stay words.
    units = loaded.source_units([data.train[0].source])[0]
    assert not any(unit.startswith(subwords.WORD_START) for unit in units if unit != subwords.WORD_START)
    assert "".join(units).replace(subwords.WORD_START, "") == data.train[0].source.replace(" ", "")
    assert loaded.unknown_rates([data.train[0].source], [short]) == {"source": 0.0, "target": 0.0}
    (tmp_path / "preprocessor" / "target.subwords").unlink()
    with pytest.raises(TaskError, match="uses subword units but target.subwords is missing"):
        Preprocessor.load(tmp_path / "preprocessor")


def test_subword_export_takes_and_returns_raw_strings_in_a_fresh_process(subword_run, tmp_path):
    task, data, preprocessor, model, _ = subword_run
    # export_task reloads the folder in a fresh `python -I` (tensorflow_text imported first) and calls every
    # endpoint on raw strings (a real sentence, an empty one, unknown words, 2,000 characters): its outputs'
    # digests must be those of the same functions run here.
    record = export.export_task(task, model, preprocessor, data, tmp_path / "export")
    examples, outputs = task.export_examples(data), {}
    for name, (function, signature) in task.endpoints(model, preprocessor).items():
        here = tf.function(function, input_signature=signature)(tf.constant(examples[name][0]))
        outputs[name] = tf.nest.map_structure(lambda t: t.numpy(), here)
        assert record["endpoints"][name]["sha256"] == export._digest(outputs[name]), name
    assert export.check_export_folder(task, tmp_path / "export")["imports"] == ["tensorflow_text"]
    # predict in its own process: tensorflow-text's SentencePiece resources are owned by the op kernels, so
    # loading the export here would free the live preprocessor's (a fresh process is what users run anyway).
    from conftest import run_cli

    result = run_cli("translation", "predict", "--model", str(tmp_path / "export"), data.test_sources[0])
    assert result.returncode == 0, result.stderr[-3000:]
    assert outputs["translate"]["translation"][0].decode() in result.stdout


def test_subword_translations_keep_case_spacing_and_apostrophes_of_the_training_targets(tmp_path):
    """Memorised pairs through the serving functions: names capitalised, French " !" and "’" as written."""
    names, verbs = ["Tom", "Marie", "Paris"], [("sleeps", "dort"), ("runs", "court"), ("sings", "chante")]
    train = [pair(f"{name} {en}.", f"{name} {fr} !") for name in names for en, fr in verbs]
    train += [pair(f"Does {name} sing?", f"{name} l’a chanté ?") for name in names]
    config = tiny_config(embedding_dim=32, lstm_units=64, dropout=0.0, learning_rate=0.01, beam_width=2,
                         subword_vocabulary=60, max_target_tokens=30)
    keras.utils.set_random_seed(0)
    task = TranslationTask(config)
    preprocessor = Preprocessor.fit(task, tiny_data(train), tmp_path)
    assert preprocessor.apostrophe == "\u2019"
    model = task.build_model(tiny_data(train), preprocessor)
    inputs, targets = preprocessor.arrays(train * 60)
    model.fit(inputs, targets, epochs=1, batch_size=12, verbose=0)
    sources = [p.source for p in train]
    for name, (function, signature) in task.endpoints(model, preprocessor).items():
        translations = translate_all(tf.function(function, input_signature=signature), sources, 16)
        assert translations == [p.target for p in train], name
    (source, generated, weights), = plots.attention_examples(model, preprocessor, sources[-1:], 31)
    assert weights.shape == (len(generated), len(source)) and generated[-1] == "[END]"
    assert not any(label.startswith("\u2581") and len(label) > 1 for label in source + generated)


_TRANSLATE_UNDER_JAX = r"""
import json, sys
import keras
from common import decoding
from tasks.translation.config import Config
from tasks.translation.evaluation import translate_all
from tasks.translation.pipeline import Preprocessor
from tasks.translation.task import TranslationTask
assert keras.backend.backend() == "jax"
overrides, folder, model_path, sentences = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
task = TranslationTask(Config.from_preset("tiny", overrides))
preprocessor, model = Preprocessor.load(folder), keras.saving.load_model(model_path)
print(json.dumps({name: translate_all(decoding.traced(function, signature), sentences, 4)
                  for name, (function, signature) in task.endpoints(model, preprocessor).items()}))
"""


def test_subword_translation_is_the_same_under_jax(subword_run, tmp_path):
    """The tf.data/serving string ops stay TensorFlow under JAX; the decoder between them is keras.ops:
    a saved subword preprocessor and model translate raw strings alike under both backends."""
    import json
    import os
    import subprocess
    import sys

    pytest.importorskip("jax", reason="the JAX tests need tests/requirements.txt (pip install -r it)")
    from conftest import ROOT

    task, data, preprocessor, model, _ = subword_run
    preprocessor.save(tmp_path / "preprocessor")
    preprocessor = Preprocessor.load(tmp_path / "preprocessor")  # its own tokenizers (see the export test)
    model.save(tmp_path / "model.keras")
    sentences = data.test_sources[:3] + ["", "Tom l’a vu !"]
    expected = {name: translate_all(tf.function(function, input_signature=signature), sentences, 4)
                for name, (function, signature) in task.endpoints(model, preprocessor).items()}
    overrides = {key: getattr(task.config, key) for key in ("synthetic_pairs", "subword_vocabulary", "reverse_source",
                                                             "max_target_tokens", "max_source_tokens")}
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", _TRANSLATE_UNDER_JAX, json.dumps(overrides),
                          str(tmp_path / "preprocessor"), str(tmp_path / "model.keras"), json.dumps(sentences)],
                         cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == expected
