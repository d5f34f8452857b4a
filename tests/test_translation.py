"""Translation task pieces: pair reader, split, synthetic corpus, text helpers, BLEU, layers, model,
preprocessor (fit on train, save/load round trip), endpoints, bench."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import text
from common.config import ConfigError
from common.layers import SequenceAttention
from common.metrics import bleu
from common.preprocessor import preprocessor_dir
from common.task import TaskError
from data import DataError
from data import pairs as pair_reader
from data.synthetic import parallel
from tasks.translation import model as translation_model
from tasks.translation import callbacks, plots
from tasks.translation.config import Config
from tasks.translation.pipeline import Preprocessor
from tasks.translation.task import TranslationData, TranslationTask, translate_all


# --- pair reader -------------------------------------------------------------------------------------
def write(path: Path, content: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(content.encode(encoding))
    return path


def test_reader_handles_two_and_three_columns_blank_lines_empty_sides_and_duplicates(tmp_path):
    file = write(
        tmp_path / "fra.txt",
        "Go.\tVa !\n"
        "Hi.\tSalut !\n"
        "\n"
        "Hi.\tSalut !\n"  # exact duplicate: dropped
        "Hi.\tSalut.\n"  # same source, another target: a second reference
        " \tVide\n"  # empty side: skipped
        "Run!\tCours\u202f!\r\n",
    )
    result = pair_reader.read_pairs(file)
    assert [(p.source, p.target) for p in result.pairs] == [
        ("Go.", "Va !"), ("Hi.", "Salut !"), ("Hi.", "Salut."), ("Run!", "Cours\u202f!")
    ]
    assert result.statistics == {"lines": 7, "blank_lines": 1, "empty_side": 1, "duplicates": 1, "pairs": 4,
                                 "unique_sources": 3}
    swapped = pair_reader.read_pairs(tmp_path, direction="second-to-first")  # the folder's one .txt file
    assert swapped.pairs[0] == pair_reader.Pair("Va !", "Go.")
    (tmp_path / "three").mkdir()
    three = write(tmp_path / "three" / "fra.txt", "Go.\tVa !\tCC-BY 2.0 (France) #1\n\nHi.\tSalut !\tCC-BY #2\n")
    assert [(p.source, p.target) for p in pair_reader.read_pairs(three).pairs] == [("Go.", "Va !"), ("Hi.", "Salut !")]


@pytest.mark.parametrize(
    "content, message",
    [
        ("Go.\tVa !\nno tab here\n", r"fra.txt:2: found 1 tab-separated field"),
        ("Go.\tVa !\ta\tb\n", r"fra.txt:1: found 4 tab-separated field"),
        ("\n\t\n", r"no usable sentence pairs"),
    ],
)
def test_reader_rejects_malformed_files_naming_the_line(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        pair_reader.read_pairs(write(tmp_path / "fra.txt", content))


def test_reader_errors_for_encoding_missing_files_folders_and_direction(tmp_path):
    with pytest.raises(DataError, match="not UTF-8"):
        pair_reader.read_pairs(write(tmp_path / "latin.txt", "Ça\tva\n", encoding="latin-1"))
    with pytest.raises(DataError, match="does not exist"):
        pair_reader.read_pairs(tmp_path / "missing.txt")
    write(tmp_path / "second.txt", "a\tb\n")
    with pytest.raises(DataError, match="holds 2 candidate pair files"):
        pair_reader.read_pairs(tmp_path)
    with pytest.raises(DataError, match="direction='sideways'"):
        pair_reader.read_pairs(tmp_path / "second.txt", direction="sideways")


def test_split_keeps_every_source_sentence_in_one_split_and_is_seeded():
    pairs = [pair_reader.Pair(f"Sentence {i % 50}.", f"Phrase {i}.") for i in range(200)]
    pairs += [pair_reader.Pair(f"SENTENCE {i}.", f"Autre {i}.") for i in range(50)]  # same sources, other case
    train, validation, test = pair_reader.split_by_source(pairs, 0.1, 0.2, seed=3)
    assert len(train) + len(validation) + len(test) == len(pairs)
    keys = [{p.source.casefold() for p in split} for split in (train, validation, test)]
    assert not keys[0] & keys[2] and not keys[0] & keys[1] and not keys[1] & keys[2]
    assert len(keys[2]) == 10 and len(keys[1]) == 5
    again = pair_reader.split_by_source(pairs, 0.1, 0.2, seed=3)
    assert again[2] == test
    assert pair_reader.split_by_source(pairs, 0.1, 0.2, seed=4)[2] != test
    with pytest.raises(DataError, match="too few"):
        pair_reader.split_by_source(pairs[:2], 0.1, 0.2, seed=3)


# --- synthetic corpus --------------------------------------------------------------------------------
def test_synthetic_corpus_is_seeded_sized_and_follows_its_grammar():
    pairs = parallel.generate(300, seed=5)
    assert pairs == parallel.generate(300, seed=5)
    assert pairs != parallel.generate(300, seed=6)
    assert len({source for source, _ in pairs}) == 300
    lengths = [len(source.rstrip(".").split()) for source, _ in pairs]
    assert min(lengths) >= 3 and max(lengths) <= 20
    grammar = parallel.Grammar(5)
    # Agreement: the singular definite article is "le" before a masculine noun, "la" before a feminine one.
    for index, noun in enumerate(grammar.target_nouns[:20]):
        for source, target in pairs:
            words = target.lower().rstrip(".").split()
            if noun in words:
                position = words.index(noun)
                if words[position - 1] in ("le", "la"):
                    assert words[position - 1] == ("la" if grammar.feminine[index] else "le")
    # Word order: a one-adjective noun phrase is inverted ("the ADJ NOUN" → "le/la NOUN ADJ").
    clauses = [(None, {"subject": {"determiner": "definite", "adjectives": [0], "noun": 1, "plural": True},
                       "verb": 0, "object": None, "preposition": None})]
    source, target = grammar.source_words(clauses), grammar.target_words(clauses)
    assert source == ["the", grammar.source_adjectives[0], grammar.source_nouns[1] + "s", grammar.source_verbs[0]]
    adjective = grammar.target_adjectives[0] + ("e" if grammar.feminine[1] else "") + "s"
    assert target == ["les", grammar.target_nouns[1] + "s", adjective, grammar.target_verbs[0] + "nt"]


def test_synthetic_file_is_reused_only_with_the_same_parameters(tmp_path):
    path = parallel.write(tmp_path, 50, seed=1)
    first = path.read_text()
    assert pair_reader.read_pairs(path).statistics["pairs"] == 50
    stamp = path.stat().st_mtime_ns
    assert parallel.write(tmp_path, 50, seed=1) == path and path.stat().st_mtime_ns == stamp
    parallel.write(tmp_path, 50, seed=2)
    assert path.read_text() != first
    assert json.loads((tmp_path / "parameters.json").read_text())["seed"] == 2


# --- text helpers ------------------------------------------------------------------------------------
def test_tokenize_standardizes_case_punctuation_and_typographic_characters():
    assert text.tokenize(["Va !", "À l\u2019aide\u202f!", "Peut-être, « oui » ?", "", "  Hello   WORLD.  "]) == [
        ["va", "!"], ["à", "l'aide", "!"], ["peut-être", ",", "«", "oui", "»", "?"], [], ["hello", "world", "."]
    ]


def test_vocabulary_encode_and_decode_with_tensorflow_ops():
    words = text.fit_vocabulary([["b", "a", "b"], ["c", "a", "b"], ["d"]], max_size=7)
    assert words == ["b", "a", "c"]  # by count, then alphabetical; 4 reserved + 3 = 7
    vocabulary = text.full_vocabulary(words)
    assert vocabulary[: 4] == ["", "[UNK]", "[START]", "[END]"]
    lookup = text.lookup_layer(vocabulary)
    ids = text.encode(tf.constant(["A zz c", "b " * 9]), lookup, 6, add_start=True, add_end=True)
    np.testing.assert_array_equal(ids, [[2, 5, 1, 6, 3, 0], [2, 4, 4, 4, 4, 3]])
    reversed_ids = text.encode(tf.constant(["a b c", ""]), lookup, 5, reverse=True, empty_as_unknown=True)
    np.testing.assert_array_equal(reversed_ids, [[6, 4, 5, 0, 0], [1, 0, 0, 0, 0]])  # empty: one [UNK]
    inverse = text.lookup_layer(vocabulary, invert=True)
    decoded = text.decode(tf.constant([[2, 5, 1, 6, 3, 5], [4, 0, 5, 5, 5, 5]]), inverse).numpy()
    assert [d.decode() for d in decoded] == ["a [UNK] c", "b"]  # stops at the end marker or padding
    tokens = ["«", "oui", "»", ",", "dit-il", "."]
    assert text.join_tokens(tf.ragged.constant([tokens])).numpy()[0].decode() == "«oui», dit-il."
    with pytest.raises(ValueError, match="max_size=3"):
        text.fit_vocabulary([["a"]], max_size=3)
    with pytest.raises(ValueError, match="reserved tokens"):
        text.lookup_layer(["a", "b"])


# --- BLEU --------------------------------------------------------------------------------------------
def test_bleu_known_answers():
    # Unsmoothed by construction: 4/5, 3/4, 2/3, 1/2 n-gram precisions, equal lengths → (0.2) ** 0.25.
    scores = bleu.corpus_scores(["a b c d e"], [["a b c d f"]])
    assert scores["bleu"] == pytest.approx(100 * 0.2**0.25, abs=1e-3)
    assert scores["bleu_precisions"] == pytest.approx([80.0, 75.0, 66.6667, 50.0], abs=1e-3)
    assert bleu.corpus_scores(["The cat sat."], [["the cat sat ."]], lowercase=True)["bleu"] == pytest.approx(100)
    assert bleu.corpus_scores(["x y z w"], [["a b c d"]])["bleu"] == pytest.approx(0)
    # Several references, uneven counts: the second reference of sentence 1 matches exactly.
    multi = bleu.corpus_scores(["a b c d", "e f g h"], [["q r s t", "a b c d"], ["e f g h"]])
    assert multi["bleu"] == pytest.approx(100) and "nrefs:var" in multi["bleu_signature"]
    assert "case:lc" in bleu.corpus_scores(["a"], [["a"]], lowercase=True)["bleu_signature"]
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference lists"):
        bleu.corpus_scores(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="at least one reference"):
        bleu.corpus_scores(["a"], [[]])
    with pytest.raises(ValueError, match="No hypotheses"):
        bleu.corpus_scores([], [])


# --- attention layer, metric, model ------------------------------------------------------------------
@pytest.mark.parametrize("score", ["dot", "general", "additive"])
def test_attention_masks_memory_and_round_trips_its_config(score):
    layer = SequenceAttention(score=score, units=4, name="attention")
    query = tf.random.stateless_normal([2, 3, 6], seed=[1, 2])
    memory = tf.random.stateless_normal([2, 5, 6], seed=[3, 4])
    mask = tf.constant([[True, True, False, False, False], [False] * 5])
    context, weights = layer(query, memory, mask)
    assert context.shape == (2, 3, 6) and weights.shape == (2, 3, 5)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)
    assert np.all(weights.numpy()[0, :, 2:] == 0.0)  # masked memory steps get no weight
    np.testing.assert_allclose(weights.numpy()[1], 0.2, rtol=1e-5)  # fully masked row: uniform, no NaN
    np.testing.assert_allclose(context.numpy()[0], weights.numpy()[0, :, :2] @ memory.numpy()[0, :2],
                               rtol=1e-4, atol=1e-5)
    clone = SequenceAttention.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(query, memory, mask)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(query, memory, mask)[0].numpy(), context.numpy(), rtol=1e-6)


def test_attention_rejects_bad_arguments():
    with pytest.raises(ValueError, match="score='cosine'"):
        SequenceAttention(score="cosine")
    with pytest.raises(ValueError, match="equal query and memory sizes"):
        SequenceAttention(score="dot")(tf.zeros([1, 2, 3]), tf.zeros([1, 2, 4]))


def test_masked_token_accuracy_known_answer():
    metric = translation_model.MaskedTokenAccuracy()
    y_true = tf.constant([[5, 6, 0], [7, 0, 0]])
    y_pred = tf.one_hot([[5, 1, 6], [7, 0, 0]], 8)  # 2 of 3 real tokens right; the padding is ignored
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(2 / 3)


def test_word_by_word_baseline_learns_the_lexicon_not_the_order():
    baseline = translation_model.WordByWordBaseline.fit(
        [["big", "dog"], ["dog", "runs"], ["big", "cat"], ["cat", "runs"]],
        [["chien", "grand"], ["chien", "court"], ["chat", "grand"], ["chat", "court"]],
    )
    assert baseline.translate([["big", "dog", "runs", "unknown"]]) == [["grand", "chien", "court"]]
    assert translation_model.WordByWordBaseline(baseline.lexicon).translate([["cat"]]) == [["chat"]]


def tiny_config(**overrides):
    return Config.from_preset("tiny", {"synthetic_pairs": 200, **overrides})


@pytest.mark.parametrize("attention", ["none", "general", "additive"])
def test_step_by_step_decoder_matches_the_teacher_forced_model(attention):
    keras.utils.set_random_seed(0)
    model = translation_model.build_model(tiny_config(attention=attention, dropout=0.0), 30, 40)
    source = np.array([[5, 6, 7, 8], [9, 10, 0, 0]], np.int32)
    decoder_input = np.array([[2, 11, 12, 13], [2, 14, 15, 16]], np.int32)
    logits = model({"source": source, "decoder_input": decoder_input}).numpy()
    logits[:, :, [text.PAD_ID, text.START_ID]] = -1e9  # the step function forbids padding and START
    translator = translation_model.Translator(model)
    state = translator.encode(tf.constant(source))
    for position in range(4):
        log_probs, state = translator.step(tf.constant(decoder_input[:, position]), state)
        expected = tf.nn.log_softmax(logits[:, position]).numpy()
        np.testing.assert_allclose(log_probs.numpy(), expected, rtol=1e-4, atol=1e-4)


def test_model_round_trips_through_a_keras_file(tmp_path):
    model = translation_model.build_model(tiny_config(), 30, 40)
    loss, metrics = translation_model.loss_and_metrics()
    model.compile(optimizer="adam", loss=loss, metrics=metrics)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    inputs = {"source": np.array([[5, 6, 0]], np.int32), "decoder_input": np.array([[2, 7]], np.int32)}
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(), rtol=1e-6)
    assert loaded.get_layer("attention").score == "general"


def test_masked_loss_ignores_padding():
    loss, _ = translation_model.loss_and_metrics()
    logits = tf.random.stateless_normal([1, 3, 5], seed=[0, 1])
    full = float(loss(tf.constant([[4, 3, 0]]), logits))
    expected = -np.mean([tf.nn.log_softmax(logits[0, i]).numpy()[t] for i, t in ((0, 4), (1, 3))])
    assert full == pytest.approx(expected, rel=1e-5)


# --- config ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override, message",
    [
        ({"attention": "cosine"}, "attention='cosine' is not allowed"),
        ({"beam_width": 0}, "beam_width=0 must be at least 1"),
        ({"test_fraction": 0.5, "validation_fraction": 0.45}, "at least 10%"),
        ({"max_vocabulary": 3}, "max_vocabulary=3"),
        ({"max_pairs": 0}, "max_pairs=0"),
        ({"lstm_units": 33}, "lstm_units=33 must be even"),
        ({"dropout": 1.0}, "dropout=1.0"),
    ],
)
def test_config_rejects_bad_values(override, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_preset("default", override)


# --- preprocessor, endpoints, bench ----------------------------------------------------------------
@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """An untrained model on the tiny synthetic corpus, Sutskever-style (reversed source, no attention)."""
    workdir = tmp_path_factory.mktemp("translation")
    config = tiny_config(attention="none", reverse_source=True, max_target_tokens=8)
    keras.utils.set_random_seed(config.seed)
    task = TranslationTask(config)
    data = task.load_data(None, workdir)
    preprocessor = Preprocessor.fit(task, data, workdir)
    model = task.build_model(data, preprocessor)
    return task, data, preprocessor, model, workdir


def test_preprocessor_fits_on_the_training_split_only(tmp_path):
    pair = pair_reader.Pair
    data = TranslationData(
        train=[pair("The big dog.", "Le grand chien."), pair("A dog.", "Un chien.")],
        validation=[pair("A cat.", "Un chat.")], test=[pair("The cat.", "Le chat.")],
        test_sources=["The cat."], test_references=[["Le chat."]],
    )
    preprocessor = Preprocessor.fit(TranslationTask(tiny_config()), data, tmp_path)
    assert "cat" not in preprocessor.source_vocabulary and "chat" not in preprocessor.target_vocabulary
    assert (preprocessor.source_length, preprocessor.target_length) == (4, 4)  # "the big dog ." is 4 tokens
    ids = preprocessor.encode(tf.constant(["The cat."])).numpy()[0]
    assert ids[1] == text.UNKNOWN_ID and ids.tolist() == [
        preprocessor.source_vocabulary.index("the"), 1, preprocessor.source_vocabulary.index("."), 0]
    assert preprocessor.lexicon["big"] == "grand"  # Dice 1 (tie with "le": the alphabetically first wins)


def test_preprocessor_round_trips_with_identical_encodings(untrained, tmp_path):
    task, data, preprocessor, _, _ = untrained
    preprocessor.save(tmp_path / "preprocessor")
    loaded = Preprocessor.load(tmp_path / "preprocessor")
    assert loaded.get_state() == preprocessor.get_state() and loaded.reverse_source
    sentences = tf.constant([p.source for p in data.test[:5]] + ["", "Unknown WORDS, «here» !", "x " * 100])
    targets = tf.constant([p.target for p in data.test[:5]] + ["", "zz", "y " * 100])
    np.testing.assert_array_equal(loaded.encode(sentences), preprocessor.encode(sentences))
    np.testing.assert_array_equal(loaded.encode_target(targets), preprocessor.encode_target(targets))
    ids = preprocessor.encode_target(targets)
    np.testing.assert_array_equal(loaded.decode(ids[:, 1:]), preprocessor.decode(ids[:, 1:]))
    # A short training target, framed and decoded, reads as its standardised (lower-cased) self.
    short = next(p.target for p in data.train if len(text.tokenize([p.target])[0]) <= preprocessor.target_length)
    decoded = loaded.decode(loaded.encode_target(tf.constant([short]))[:, 1:]).numpy()[0].decode()
    assert decoded == short.lower()
    with pytest.raises(TaskError, match="fitted by task 'translation', not 'sentiment'"):
        type("Other", (Preprocessor,), {"task": "sentiment"}).load(tmp_path / "preprocessor")


def test_training_arrays_frame_targets_for_teacher_forcing(untrained):
    _, data, preprocessor, _, _ = untrained
    inputs, targets = preprocessor.arrays(data.train[:7])
    assert inputs["source"].shape == (7, preprocessor.source_length) and inputs["source"].dtype == np.int32
    assert inputs["decoder_input"].shape == targets.shape == (7, preprocessor.target_length + 1)
    assert np.all(inputs["decoder_input"][:, 0] == text.START_ID)
    np.testing.assert_array_equal(inputs["decoder_input"][:, 1:], targets[:, :-1])
    assert np.all((targets == text.END_ID).sum(axis=1) == 1)


def test_endpoints_translate_awkward_strings_like_the_evaluation(untrained):
    task, data, preprocessor, model, _ = untrained
    endpoints = task.endpoints(model, preprocessor)
    assert set(endpoints) == {"translate", "translate_greedy"}
    sentences = data.test_sources[:3] + ["", "qqqq zzzz " * 30, "x" * 2000]
    for name, (function, signature) in endpoints.items():
        translate = tf.function(function, input_signature=signature)
        outputs = translate(tf.constant(sentences))
        assert outputs["translation"].shape == (6,) and np.all(np.isfinite(outputs["score"].numpy()))
        # Batches of any size give the same translations (evaluation decodes in batches).
        batched = translate_all(translate, sentences, batch_size=4)
        assert batched == [t.decode() for t in outputs["translation"].numpy()]
    results = task.predict_results(["a", "b"], {"translation": np.array([b"x", b""]),
                                                "score": np.array([-1.5, np.nan], np.float32)})
    assert results == [{"source": "a", "translation": "x", "score": -1.5},
                       {"source": "b", "translation": "", "score": None}]


def test_bench_compares_batched_and_python_loop_beam_search(untrained):
    task, _, preprocessor, model, workdir = untrained
    (workdir / "checkpoints").mkdir(exist_ok=True)
    model.save(workdir / "checkpoints" / "best.keras")
    preprocessor.save(preprocessor_dir(workdir))
    result = task.bench(None, workdir)
    figures = result["figures"]
    assert figures["sentences"] == 10
    assert figures["identical_outputs_fraction"] == 1.0
    assert figures["speedup"] > 0 and not result["model_trained_in_this_run"]


def test_bench_refuses_a_checkpoint_without_its_preprocessor(tmp_path, untrained):
    task, _, _, model, _ = untrained
    (tmp_path / "checkpoints").mkdir()
    model.save(tmp_path / "checkpoints" / "best.keras")
    with pytest.raises(TaskError, match="has no fitted preprocessor beside it"):
        task.bench(None, tmp_path)


def test_bench_trains_in_an_empty_workdir_then_reuses_model_and_preprocessor(tmp_path):
    task = TranslationTask(tiny_config(epochs=1, bench_sentences=3, max_target_tokens=8))
    first = task.bench(None, tmp_path)
    assert first["model_trained_in_this_run"] and (preprocessor_dir(tmp_path) / "preprocessor.json").is_file()
    second = task.bench(None, tmp_path)
    assert not second["model_trained_in_this_run"] and second["figures"]["identical_outputs_fraction"] == 1.0


# --- attention picture, TensorBoard examples ------------------------------------------------------------
def test_attention_examples_follow_the_greedy_translation_and_sum_to_one(tmp_path, caplog):
    config = tiny_config(reverse_source=True, max_target_tokens=8)
    keras.utils.set_random_seed(config.seed)
    task = TranslationTask(config)
    data = task.load_data(None, tmp_path)
    preprocessor = Preprocessor.fit(task, data, tmp_path)
    model = task.build_model(data, preprocessor)
    sentences = data.test_sources[:2] + [""]
    examples = plots.attention_examples(model, preprocessor, sentences, max_length=9)
    greedy = tf.function(task.endpoints(model, preprocessor)["translate_greedy"][0])
    translations = [t.decode() for t in greedy(tf.constant(sentences))["translation"].numpy()]
    for sentence, translation, (source, generated, weights) in zip(sentences, translations, examples):
        assert source == (text.tokenize([sentence])[0][::-1] or ["[UNK]"])  # reversed, as the encoder read it
        assert weights.shape == (len(generated), len(source))
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
        assert len(generated) == 9 or generated[-1] == "[END]"
        ids = [preprocessor.target_vocabulary.index(word) for word in generated]
        assert preprocessor.decode(tf.constant([ids])).numpy()[0].decode() == translation
    assert plots.write_attention(tmp_path / "attention.png", model, preprocessor, sentences, 9)
    assert (tmp_path / "attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sizes = len(preprocessor.source_vocabulary), len(preprocessor.target_vocabulary)
    without = translation_model.build_model(tiny_config(attention="none"), *sizes)
    with caplog.at_level("INFO", logger="tasks.translation.plots"):
        assert not plots.write_attention(tmp_path / "none.png", without, preprocessor, sentences, 9)
    assert "no attention" in caplog.text and not (tmp_path / "none.png").exists()


def test_tensorboard_text_of_validation_translations_in_a_tiny_fit(tmp_path):
    config = tiny_config(tensorboard=True, max_target_tokens=8, logged_examples=2)
    keras.utils.set_random_seed(config.seed)
    task = TranslationTask(config)
    data = task.load_data(None, tmp_path)
    preprocessor = Preprocessor.fit(task, data, tmp_path)
    model = task.build_model(data, preprocessor)
    examples = callbacks.translation_examples(config, data.validation, preprocessor, tmp_path)
    train, _ = task.datasets(data, preprocessor)
    model.fit(train.take(2), epochs=2, callbacks=examples, verbose=0, shuffle=False)
    events = sorted((tmp_path / "logs" / "tensorboard" / callbacks.SUBFOLDER).glob("events.out.tfevents.*"))
    assert events, "no events file under logs/tensorboard/examples"
    tables = [(event.step, value.tensor.string_val[0].decode()) for path in events
              for event in tf.compat.v1.train.summary_iterator(str(path))
              for value in event.summary.value if value.tag == callbacks.TAG]
    assert [step for step, _ in tables] == [0, 1]  # one table per epoch, at Keras' epoch index
    rows = tables[1][1].splitlines()
    assert rows[0].startswith("Epoch 2:") and rows[2] == "| source | reference | greedy |" and len(rows) == 4 + 2
    sources, references = pair_reader.group_references(data.validation)
    assert rows[4].startswith(f"| {sources[0]} | {' / '.join(references[0])} | ")


def test_fit_adds_the_tensorboard_text_callback_only_when_tensorboard_is_on(untrained, monkeypatch):
    from common import training
    from common.examples import TextExamples

    _, data, preprocessor, model, workdir = untrained
    passed = []
    monkeypatch.setattr(training, "fit", lambda *args, extra_callbacks=None, **kwargs: passed.append(extra_callbacks))
    for tensorboard in (True, False):
        TranslationTask(tiny_config(tensorboard=tensorboard)).fit(model, data, preprocessor, workdir)
    assert [[type(c) for c in extra] for extra in passed] == [[TextExamples], []]
    assert passed[0][0].log_dir == workdir / "logs" / "tensorboard" / "examples"


def test_markdown_table_escapes_cell_separators():
    from common.examples import markdown_table

    table = markdown_table(["source", "reference", "greedy"], [["a | b", "x / y|z", ""]], "Epoch 3: t").splitlines()
    assert table[0] == "Epoch 3: t" and table[-1] == "| a \\| b | x / y\\|z | (empty) |"


@pytest.mark.real_data
def test_real_data_reads_tatoeba_and_a_short_training_reduces_the_loss(shared_data, tmp_path):
    file = shared_data / "tatoeba_fra_eng" / "fra.txt"
    result = pair_reader.read_pairs(file)
    assert result.statistics["pairs"] == 16_262 and result.statistics["duplicates"] == 3
    config = tiny_config(max_pairs=400)
    keras.utils.set_random_seed(config.seed)
    task = TranslationTask(config)
    data = task.load_data(file, tmp_path)
    assert data.info["pairs"]["train"] > 300
    preprocessor = Preprocessor.fit(task, data, tmp_path)
    assert len(preprocessor.target_vocabulary) > 300
    model = task.build_model(data, preprocessor)
    inputs, targets = next(iter(task.datasets(data, preprocessor)[0]))
    before = model.test_on_batch(inputs, targets, return_dict=True)["loss"]
    for _ in range(5):
        model.train_on_batch(inputs, targets)
    assert model.test_on_batch(inputs, targets, return_dict=True)["loss"] < before


def test_config_lists_the_attention_scores_of_the_layer():
    from common.layers import SCORES
    from tasks.translation import config

    assert config.SCORES == SCORES
