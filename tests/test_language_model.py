"""language_model: text reader, synthetic corpus, splits, vocabulary, Kneser-Ney baseline (known answers and
nltk), BPTT/evaluation windows, preprocessor round trip, seeded in-graph generation, the exported endpoint."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import training
from common.config import ConfigError
from common.errors import TaskError
from common.preprocessor import preprocessor_dir
from conftest import run_cli
from data import DataError
from data import text_corpus
from data.synthetic import corpus as synthetic
from tasks.language_model import model as model_lib
from tasks.language_model.config import Config
from tasks.language_model.ngram import KneserNey
from tasks.language_model.pipeline import (BREAK_ID, PAD_ID, UNKNOWN_ID, Preprocessor,
                                           carried_evaluation_windows, evaluation_windows, stream_windows, windows)
from tasks.language_model.task import LanguageModelTask, TextData


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


# --- reader -------------------------------------------------------------------------------------------
def test_reader_reads_a_file_a_folder_and_the_ptb_layout(tmp_path):
    file = write(tmp_path / "one.txt", "\ufeffFirst line\r\nsecond ünïcode line\n\nlast")
    corpus = text_corpus.read_corpus(file)
    assert corpus.format == "text" and corpus.lines == ["First line", "second ünïcode line", "", "last"]
    write(tmp_path / "folder" / "b.txt", "from b\n")
    write(tmp_path / "folder" / "a" / "a.txt", "from a\n")
    write(tmp_path / "folder" / "empty.txt", "\n\n")
    write(tmp_path / "folder" / "notes.md", "not read\n")
    folder = text_corpus.read_corpus(tmp_path / "folder")
    assert folder.lines == ["from a", "from b"] and folder.statistics["empty_files_skipped"] == ["empty.txt"]
    for name, text in (("ptb.train.txt", " a <unk> b \n c d \n"), ("ptb.valid.txt", " a b \n"),
                       ("ptb.test.txt", " <unk> c \n")):
        write(tmp_path / "ptb" / name, text)
    ptb = text_corpus.read_corpus(tmp_path / "ptb")
    assert ptb.format == "ptb" and ptb.splits["test"] == [" <unk> c "] and len(ptb.splits["train"]) == 2
    captions = write(tmp_path / "captions.txt", "img.jpg#0\tA dog runs .\n\nimg.jpg#1\tA cat .\n")
    assert text_corpus.read_corpus(captions, tab_field=1).lines == ["A dog runs .", "A cat ."]


@pytest.mark.parametrize("name, content, fragment", [
    ("latin1.txt", "caf\u00e9\nna\u00efve\n".encode("latin-1"), "is not UTF-8 text: line 1"),
    ("second.txt", b"ok\n\xff\xfe bad\n", "line 2"),
    ("empty.txt", b"", "is empty"),
    ("blank.txt", b"\n  \n\n", "is empty"),
    ("binary.txt", b"abc\x00def", "NUL byte on line 1"),
])
def test_reader_errors_name_the_file_and_line(tmp_path, name, content, fragment):
    path = write(tmp_path / name, content)
    with pytest.raises(DataError, match=fragment) as error:
        text_corpus.read_corpus(path)
    assert name in str(error.value)


def test_reader_errors_for_folders_ptb_parts_and_tab_fields(tmp_path):
    write(tmp_path / "ptb" / "ptb.train.txt", "a b\n")
    with pytest.raises(DataError, match=r"without \['ptb.valid.txt', 'ptb.test.txt'\]"):
        text_corpus.read_corpus(tmp_path / "ptb")
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="holds no .txt file"):
        text_corpus.read_corpus(tmp_path / "none")
    with pytest.raises(DataError, match="does not exist"):
        text_corpus.read_corpus(tmp_path / "missing.txt")
    bad = write(tmp_path / "tabs.txt", "x\tfirst\nno tab here\n")
    with pytest.raises(DataError, match="line 2 has 1 tab-separated field"):
        text_corpus.read_corpus(bad, tab_field=1)


def test_ptb_layout_keeps_its_official_splits_and_its_own_unk(tmp_path):
    for name, text in (("ptb.train.txt", " the <unk> fell N \n the market rose \n"),
                       ("ptb.valid.txt", " the market \n"), ("ptb.test.txt", " the <unk> rose \n")):
        write(tmp_path / "ptb" / name, text)
    task = LanguageModelTask(Config.from_preset("tiny", {"level": "word", "max_lines": 1}))
    data = task.load_data(tmp_path / "ptb", tmp_path)
    assert data.info["format"] == "ptb" and data.train == [" the <unk> fell N "]  # max_lines cuts train only
    assert data.test == [" the <unk> rose "] and data.validation == [" the market "]
    preprocessor = Preprocessor.fit(task, data, tmp_path)
    assert "<unk>" in preprocessor.vocabulary and "market" not in preprocessor.vocabulary
    stream = preprocessor.stream(data.test)
    assert stream.tolist() == [BREAK_ID, preprocessor.vocabulary.index("the"), preprocessor.vocabulary.index("<unk>"),
                               UNKNOWN_ID, BREAK_ID]


def test_a_bad_text_file_is_one_error_line_and_leaves_no_workdir(tmp_path):
    path = write(tmp_path / "essay.txt", "fine\nna\xefve\n".encode("latin-1"))
    result = run_cli("language_model", "--preset", "tiny", "--data-dir", str(path), "--workdir", str(tmp_path / "w"))
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1 and "essay.txt" in errors[0] and "line 2" in errors[0]
    assert "Traceback" not in result.stderr and not (tmp_path / "w").exists()


def test_split_by_position_keeps_order_and_shares_no_line():
    lines = [f"line {i} " + "x" * (i % 7) for i in range(200)]
    splits = text_corpus.split_by_position(lines, 0.1, 0.2)
    assert splits["train"] + splits["validation"] + splits["test"] == lines  # contiguous, in order, complete
    sizes = {name: sum(len(line) + 1 for line in part) for name, part in splits.items()}
    total = sum(sizes.values())
    assert abs(sizes["validation"] / total - 0.1) < 0.02 and abs(sizes["test"] / total - 0.2) < 0.02
    assert text_corpus.split_by_position(["a", "b", "c"], 0.1, 0.1) == {"train": ["a"], "validation": ["b"],
                                                                        "test": ["c"]}
    with pytest.raises(DataError, match="needs at least 3 lines"):
        text_corpus.split_by_position(["one", "two"], 0.1, 0.1)


# --- synthetic corpus ---------------------------------------------------------------------------------
def test_generator_is_seeded_and_every_line_keeps_its_rules(tmp_path):
    lines = synthetic.generate(400, seed=7)
    assert lines == synthetic.generate(400, seed=7) and lines != synthetic.generate(400, seed=8)
    language = synthetic.Language(7)
    assert all(all(language.check_line(line).values()) for line in lines)
    tokens = [line.split() for line in lines]
    depth = max(max(np.cumsum([(t in synthetic.BRACKETS) - (t in synthetic.CLOSING) for t in row])) for row in tokens)
    assert depth == 3  # nesting reaches the maximum depth
    # Agreement over distance: some subject is separated from its verb by a noun of the other number.
    attractors = [row for row in tokens if any(p in row for p in synthetic.PREPOSITIONS) and "(" in row]
    assert len(attractors) > 20
    # Repeated vocabulary: a line reuses its small cast of nouns.
    nouns = [sum(t.rstrip("s") in language.nouns or t in language.nouns for t in row) for row in tokens]
    assert np.mean(nouns) > 4
    path = synthetic.write(tmp_path, 50, seed=7)
    assert path.read_text(encoding="utf-8").splitlines() == synthetic.generate(50, seed=7)


def test_check_line_catches_broken_brackets_and_agreement():
    language = synthetic.Language(3)
    noun, verb = language.nouns[0], language.verbs[0]
    good = f"the {noun} ( that the {noun}s {verb} ) {verb}s ."
    assert language.check_line(good) == {"brackets": True, "agreement": True, "cast": True}
    assert not language.check_line(good.replace(")", "]"))["brackets"]
    assert not language.check_line(f"the {noun} ( that the {noun}s {verb} ) {verb} .")["agreement"]  # plural verb
    assert not language.check_line(f"the {noun} {verb}s")["agreement"]  # unfinished sentence
    assert not any(language.check_line("")[rule] for rule in ("brackets", "agreement"))


# --- Kneser-Ney ---------------------------------------------------------------------------------------
def test_kneser_ney_known_answer_by_hand():
    # Stream "a b a b c" as ids a=1, b=2, c=3; V = 3; bigram model, discounts D1 = 0.5, D2 = 0.5.
    model = KneserNey.fit([1, 2, 1, 2, 3], order=2, vocabulary_size=3, discounts=[0.5, 0.5])
    # Continuation counts: b follows a (1 type), a follows b, c follows b → N1+(•a)=1, N1+(•b)=1, N1+(•c)=1; 3 types.
    # p1(w) = (1 - 0.5)/3 + 0.5 · 3/3 · 1/3 = 1/3 for each of a, b, c.
    assert model.probability(1, []) == pytest.approx(1 / 3)
    # Top order after "b": c(b a) = 1, c(b c) = 1, c(b •) = 2, two types:
    # p(a | b) = (1 - 0.5)/2 + 0.5 · 2/2 · 1/3 = 1/4 + 1/6.
    assert model.probability(1, [2]) == pytest.approx(1 / 4 + 1 / 6)
    assert model.probability(2, [2]) == pytest.approx(1 / 6)  # never seen after b: only the lower order
    assert model.probability(2, [3]) == pytest.approx(1 / 3)  # "c" never a context: the unigram passes through
    assert np.allclose(model.log2_probabilities([2, 1]), [math.log2(1 / 4 + 1 / 6)])


def test_kneser_ney_matches_nltk_and_sums_to_one():
    from nltk.lm import KneserNeyInterpolated
    from nltk.util import everygrams

    words = "x a b c a b d a b c x a b d c x b a".split()
    ids = {w: i + 1 for i, w in enumerate(sorted(set(words)))}
    stream = [ids[w] for w in words]
    for order in (2, 3):
        ours = KneserNey.fit(stream, order, len(ids), discounts=[0.0] + [0.1] * (order - 1))  # nltk: no D at 1
        reference = KneserNeyInterpolated(order, discount=0.1)
        reference.fit([list(everygrams(words, max_len=order))], vocabulary_text=words)
        for j in range(len(words)):
            context = words[max(0, j - order + 1): j]
            for word in ids:
                assert ours.probability(ids[word], [ids[c] for c in context]) == pytest.approx(
                    reference.score(word, context), abs=1e-12)
        estimated = KneserNey.fit(stream, order, len(ids))  # discounts from the counts of counts
        for context in ([], [1], [2, 3], [5, 5]):
            assert sum(estimated.probability(w, context) for w in ids.values()) == pytest.approx(1.0)
        loaded = KneserNey.from_arrays(estimated.arrays(), order, len(ids), estimated.discounts)
        assert np.array_equal(loaded.log2_probabilities(stream), estimated.log2_probabilities(stream))


# --- windows ------------------------------------------------------------------------------------------
def test_bptt_windows_use_every_target_once():
    stream = np.arange(1, 24, dtype=np.int32)  # 23 ids → 22 targets
    inputs, targets = windows(stream, 5)
    assert inputs.shape == (5, 5)
    assert list(targets[targets != PAD_ID]) == list(stream[1:])
    assert np.array_equal(inputs[0], [1, 2, 3, 4, 5]) and np.array_equal(targets[0], [2, 3, 4, 5, 6])
    assert np.array_equal(targets[-1], [22, 23, 0, 0, 0])


@pytest.mark.parametrize("length, size", [(6, 40), (7, 41), (35, 10), (35, 36), (35, 37), (2, 9)])
def test_evaluation_windows_score_every_target_once_with_context(length, size):
    stream = np.arange(1, size + 1, dtype=np.int32)
    inputs, targets, scored = evaluation_windows(stream, length)
    counted = targets[scored > 0]
    assert sorted(counted.tolist()) == list(stream[1:])  # every target exactly once
    for row in range(len(inputs)):
        for position in np.flatnonzero(scored[row]):
            assert targets[row, position] == inputs[row, position] + 1  # inputs are the stream, shifted by one
            if row > 0:
                assert position >= length - length // 2  # at least that many earlier tokens in the window


def test_stream_windows_continue_each_row_from_batch_to_batch():
    stream = np.arange(1, 32, dtype=np.int32)  # 31 ids → 30 targets; 3 rows of 10 targets, windows of 4
    inputs, targets = stream_windows(stream, length=4, rows=3)
    assert inputs.shape == targets.shape == (9, 4)  # 3 windows per row (the last padded) × 3 rows
    batches = inputs.reshape(3, 3, 4)  # [batch, row, position]
    for row in range(3):
        read = np.concatenate(list(batches[:, row]))  # the row across consecutive batches
        assert read[:10].tolist() == list(range(1 + 10 * row, 11 + 10 * row)) and not read[10:].any()
    kept = targets != PAD_ID
    assert np.array_equal(targets[kept], inputs[kept] + 1) and kept.sum() == 30
    with pytest.raises(TaskError, match="cannot fill 40 rows"):
        stream_windows(stream, length=4, rows=40)


@pytest.mark.parametrize("length, size, rows, warmup", [(5, 60, 4, 5), (4, 9, 16, 4), (6, 100, 3, 0), (3, 2, 2, 3)])
def test_carried_evaluation_scores_every_target_once_after_a_warmup(length, size, rows, warmup):
    stream = np.arange(1, size + 1, dtype=np.int32)
    inputs, targets, scored = carried_evaluation_windows(stream, length, rows, warmup)
    assert sorted(targets[scored > 0].tolist()) == list(stream[1:])  # every target exactly once
    for row in range(inputs.shape[1]):
        read = np.concatenate(list(inputs[:, row]))  # the row's windows in order: a contiguous piece of the stream
        kept = read[read != PAD_ID]
        assert np.array_equal(kept, np.arange(kept[0], kept[0] + len(kept)))
        first_scored = np.concatenate(list(targets[:, row]))[np.concatenate(list(scored[:, row])) > 0][0]
        assert first_scored - kept[0] >= min(warmup, first_scored - 1)  # context read before the first score


# --- preprocessor -------------------------------------------------------------------------------------
def _data(train, validation, test) -> TextData:
    return TextData(train=list(train), validation=list(validation), test=list(test), synthetic=False)


def _preprocessor(level="char", **overrides):
    config = Config.from_preset("tiny", {"level": level, **overrides})
    task = LanguageModelTask(config)
    data = _data(["abc abd", "abcab"], ["abq"], ["zzz ab"])
    return task, data, Preprocessor.fit(task, data, Path("."))


def test_vocabulary_is_fitted_on_train_only_and_unknowns_map_to_unk():
    task, data, preprocessor = _preprocessor()
    assert preprocessor.vocabulary[:3] == ["", "[UNK]", "\n"]
    assert set(preprocessor.vocabulary[3:]) == set("abcd ")  # not q or z (validation / test only)
    assert preprocessor.vocabulary[3] in ("a", "b")  # most frequent first
    test_stream = preprocessor.stream(data.test)
    assert test_stream[0] == BREAK_ID and test_stream[-1] == BREAK_ID
    assert list(test_stream[1:4]) == [UNKNOWN_ID] * 3 and len(test_stream) == 1 + len("zzz ab") + 1
    words = _preprocessor("word")[2]
    assert words.vocabulary[:3] == ["", "[UNK]", "<eos>"] and set(words.vocabulary[3:]) == {"abc", "abd", "abcab"}
    ids = words.encode(tf.constant(["ABC zzz\nabd", ""])).to_list()
    assert ids == [[words.vocabulary.index("abc"), UNKNOWN_ID, BREAK_ID, words.vocabulary.index("abd")], []]
    text = words.decode(tf.constant([[words.vocabulary.index("abc"), BREAK_ID, words.vocabulary.index("abd")]]))
    assert text.numpy()[0].decode() == "abc\nabd"


def test_preprocessor_round_trip_gives_the_same_ids_and_baseline(tmp_path):
    task, data, preprocessor = _preprocessor(ngram_order=3)
    folder = preprocessor_dir(tmp_path)
    preprocessor.save(folder)
    loaded = Preprocessor.load(folder)
    assert loaded.get_state() == preprocessor.get_state()
    stream = preprocessor.stream(data.test + data.train)
    assert np.array_equal(loaded.stream(data.test + data.train), stream)
    assert np.array_equal(loaded.ngram.log2_probabilities(stream), preprocessor.ngram.log2_probabilities(stream))
    prompts = tf.constant(["ab", "", "x" * 500])
    for left, right in zip(loaded.encode_prompts(prompts), preprocessor.encode_prompts(prompts)):
        assert np.array_equal(left.numpy(), right.numpy())
    ids, lengths = preprocessor.encode_prompts(prompts)
    assert lengths.numpy().tolist() == [3, 1, task.config.sequence_length] and (ids.numpy()[:, 0] == BREAK_ID).all()


# --- model and generation -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small_model():
    task, data, preprocessor = _preprocessor()
    training.setup(task.config)
    return task, preprocessor, task.build_model(data, preprocessor)


def test_prompt_state_and_steps_match_the_training_model(small_model):
    _, preprocessor, model = small_model
    generator = model_lib.Generator(model)
    ids, lengths = preprocessor.encode_prompts(tf.constant(["abcab", "", "ab"]))  # rows of different lengths
    logits, states = generator.prime(ids, lengths)
    full = model(ids, training=False).numpy()
    for row, length in enumerate(lengths.numpy()):
        expected = model(ids[row: row + 1, :length], training=False).numpy()[0, -1]
        assert np.allclose(logits.numpy()[row, 1:], expected[1:], atol=1e-5)  # padding id 0 is masked out
        assert np.allclose(full[row, length - 1, 1:], expected[1:], atol=1e-5)
    token = tf.constant([3, 4, 5])
    next_logits, _ = generator.step(token, states)
    row = tf.concat([ids[0:1, : lengths[0]], [[3]]], axis=1)
    assert np.allclose(next_logits.numpy()[0, 1:], model(row, training=False).numpy()[0, -1, 1:], atol=1e-5)


def test_generation_is_seeded_greedy_ignores_the_seed_and_top_1_is_greedy(small_model):
    task, preprocessor, model = small_model
    generator = model_lib.Generator(model)
    ids, lengths = preprocessor.encode_prompts(tf.constant(["ab", ""]))

    def run(temperature, seed, chosen=generator):
        return chosen.generate(ids, lengths, tf.constant(30), tf.constant(temperature), tf.constant(seed)).numpy()

    first = run(1.0, 5)
    assert first.shape == (2, 30) and (first != PAD_ID).all()
    assert np.array_equal(first, run(1.0, 5)) and not np.array_equal(first, run(1.0, 6))
    assert np.array_equal(run(0.0, 5), run(0.0, 6))
    assert np.array_equal(run(1.0, 5, model_lib.Generator(model, top_k=1)), run(0.0, 9))
    none = generator.generate(ids, lengths, tf.constant(0), tf.constant(1.0), tf.constant(1))
    assert none.shape == (2, 0)


_JAX_GENERATION = """
import json, sys
class NoTensorFlow:  # like the GPU machine
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "tensorflow":
            raise ImportError(f"{name} is blocked")
sys.meta_path.insert(0, NoTensorFlow())
import keras, numpy as np
from tasks.language_model import model as model_lib
model, arrays = keras.saving.load_model(sys.argv[1]), np.load(sys.argv[2])
def run(temperature, seed, top_k=0):
    generator = model_lib.Generator(model, top_k)
    return np.asarray(generator.generate(arrays["ids"], arrays["lengths"], 30, temperature, seed)).tolist()
empty = model_lib.Generator(model).generate(arrays["ids"], arrays["lengths"], 0, 1.0, 1)
print(json.dumps({"backend": keras.backend.backend(), "sampled": run(1.0, 5), "again": run(1.0, 5),
                  "other_seed": run(1.0, 6), "greedy": run(0.0, 5), "greedy_other_seed": run(0.0, 6),
                  "top_1": run(1.0, 9, top_k=1), "empty_shape": list(np.shape(empty))}))
"""


def test_generation_runs_under_jax_without_tensorflow_seeded_and_greedy_like_tensorflow(small_model, tmp_path):
    """The Generator on Keras' JAX backend in a child process that cannot import TensorFlow: seeded sampling
    repeats, greedy is the TensorFlow backend's greedy (sampled draws differ by backend: model._categorical)."""
    import os
    import subprocess
    import sys

    from conftest import ROOT

    pytest.importorskip("jax", reason="the JAX tests need tests/requirements.txt (pip install -r it)")
    _, preprocessor, model = small_model
    model.save(tmp_path / "model.keras")
    ids, lengths = preprocessor.encode_prompts(tf.constant(["ab", "", "abcab"]))
    np.savez(tmp_path / "prompts.npz", ids=ids.numpy(), lengths=lengths.numpy())
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", _JAX_GENERATION, tmp_path / "model.keras", tmp_path / "prompts.npz"],
                            cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["backend"] == "jax" and np.array(found["sampled"]).shape == (3, 30)
    assert found["sampled"] == found["again"] != found["other_seed"] and PAD_ID not in np.ravel(found["sampled"])
    assert found["greedy"] == found["greedy_other_seed"] == found["top_1"] and found["empty_shape"] == [3, 0]
    greedy = model_lib.Generator(model).generate(ids, lengths, tf.constant(30), tf.constant(0.0), tf.constant(5))
    assert found["greedy"] == greedy.numpy().tolist()


def test_models_are_stateless_cudnn_eligible_and_gru_builds(small_model):
    task, preprocessor, model = small_model
    assert all(not layer.stateful for layer in model_lib.Generator(model).rnns)  # each window starts from zeros
    gru = model_lib.build_model(Config.from_preset("tiny", {"cell": "gru"}), len(preprocessor.vocabulary))
    report = training.recurrent_layers_report(gru)
    assert [entry["kind"] for entry in report] == ["GRU", "GRU"] and all(e["cudnn_eligible"] for e in report)
    generator = model_lib.Generator(gru)
    ids, lengths = preprocessor.encode_prompts(tf.constant(["ab"]))
    assert generator.generate(ids, lengths, tf.constant(4), tf.constant(0.5), tf.constant(1)).shape == (1, 4)


def _carried_model(batch_size=2, cell="lstm"):
    config = Config.from_preset("tiny", {"carry_state": True, "batch_size": batch_size, "dropout": 0.0, "cell": cell})
    training.setup(config)
    return config, model_lib.build_model(config, vocabulary_size=9)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_carried_state_flows_across_training_batches_only(cell):
    config, model = _carried_model(cell=cell)
    rng = np.random.default_rng(0)
    first, second = (rng.integers(1, 9, size=(2, 7)).astype(np.int32) for _ in range(2))
    whole = model(np.concatenate([first, second], axis=1), training=False).numpy()
    model(first, training=True)
    carried = model(second, training=True).numpy()  # starts where `first` left each row
    assert np.allclose(carried, whole[:, 7:], atol=1e-5)
    fresh = model(second, training=False).numpy()  # inference: zeros, whatever was carried
    assert not np.allclose(fresh, carried, atol=1e-3)
    callback = model_lib.ResetCarriedState()
    callback.set_model(model)
    callback.on_epoch_begin(0)
    assert np.allclose(model(second, training=True).numpy(), fresh, atol=1e-5)
    layer = model.get_layer("rnn_1")
    copy = type(layer).from_config(layer.get_config())  # custom layers round-trip through their config
    assert copy.carry_batch == 2 and copy.units == layer.units and copy.get_config() == layer.get_config()
    assert all(not rnn.stateful for rnn in model_lib.Generator(model).rnns)
    # results.json's parameter count leaves the carried states out: 2 rows × (h, c) or (h) per layer
    parameters = training.model_report(model)["parameters"]
    assert parameters == sum(int(np.prod(w.shape)) for w in model.trainable_weights) < model.count_params()


def test_carried_scoring_of_windows_equals_one_pass_over_the_stream(tmp_path):
    _, model = _carried_model()
    model.save(tmp_path / "carried.keras")  # registered: saves and loads like the plain model
    model = keras.saving.load_model(tmp_path / "carried.keras")
    rng = np.random.default_rng(1)
    stream = rng.integers(1, 9, size=(3, 13)).astype(np.int32)
    once, _ = model_lib.token_log_probabilities(model)(stream[:, :-1], stream[:, 1:])
    score, states, pieces = model_lib.carried_token_log_probabilities(model), None, []
    for start in range(0, 12, 4):
        log2_p, _, states = score(stream[:, start: start + 4], stream[:, start + 1: start + 5], states)
        pieces.append(np.asarray(log2_p))
    assert np.allclose(np.concatenate(pieces, axis=1), np.asarray(once), atol=1e-5)


def test_carried_training_and_evaluation_run_end_to_end(tmp_path):
    config = Config.from_preset("tiny", {"carry_state": True, "batch_size": 4, "sequence_length": 10})
    task = LanguageModelTask(config)
    data = _data(["to be or not to be"] * 20, ["that is the question"] * 3, ["to be, or not"] * 3)
    preprocessor = Preprocessor.fit(task, data, tmp_path)
    training.setup(config)
    model = task.build_model(data, preprocessor)
    train, _ = task.datasets(data, preprocessor)
    assert all(inputs.shape[0] == 4 for inputs, _ in train)  # every batch exactly batch_size rows
    model.fit(train, epochs=1, verbose=0, shuffle=False, callbacks=[model_lib.ResetCarriedState()])
    assert np.abs(model.get_layer("rnn_1").carried[0].numpy()).sum() > 0  # the compiled train step carried it
    bits, correct, tokens = model_lib.score_stream(model, preprocessor.stream(data.test), config)
    assert tokens == sum(len(line) + 1 for line in data.test) and 0 < bits / tokens < 8 and 0 <= correct <= tokens


def test_carried_state_restarts_with_each_pass_when_an_epoch_repeats_a_short_text():
    positions = []

    class Recording(model_lib.ResetCarriedState):
        def _reset(self):
            positions.append(self._base + self._batch)

        def on_train_batch_begin(self, batch, logs=None):
            self._batch = batch
            super().on_train_batch_begin(batch, logs)

    callback = Recording(period=3)  # 3 batches per pass, epochs of 5 batches: passes start at 0, 3, 6, 9
    callback.on_train_begin()
    for epoch in range(2):
        callback.on_epoch_begin(epoch)
        for batch in range(5):
            callback.on_train_batch_begin(batch)
            callback.on_train_batch_end(batch)
    assert positions == [0, 3, 6, 9]
    positions.clear()
    callback.on_train_begin()  # a resumed process: its iterator starts at the streams' beginnings again
    callback.on_epoch_begin(2)
    callback.on_train_batch_begin(0)
    assert positions == [0]


def test_min_steps_per_epoch_repeats_a_short_text(tmp_path):
    config = Config.from_preset("tiny", {"carry_state": True, "batch_size": 4, "sequence_length": 10,
                                         "logged_examples": 0})
    task = LanguageModelTask(config)
    data = _data(["to be or not to be"] * 20, ["that is the question"] * 3, ["to be, or not"] * 3)
    preprocessor = Preprocessor.fit(task, data, tmp_path)
    per_pass = int(task.datasets(data, preprocessor)[0].cardinality().numpy())
    task = LanguageModelTask(dataclasses.replace(config, min_steps_per_epoch=2 * per_pass + 1))
    training.setup(task.config)
    model = task.build_model(data, preprocessor)
    result = task.fit(model, data, preprocessor, tmp_path / "run")
    assert len(result["history"]["loss"]) == config.epochs
    assert int(model.optimizer.iterations.numpy()) == config.epochs * (2 * per_pass + 1)
    with pytest.raises(ConfigError, match="min_steps_per_epoch=-1 must be 0 or more"):
        Config(min_steps_per_epoch=-1)


def test_config_presets_and_schedule():
    paper = Config.from_preset("paper")
    assert (paper.level, paper.units, paper.layers, paper.dropout, paper.epochs) == ("word", 650, 2, 0.5, 39)
    schedule = model_lib.learning_rate_schedule(paper, 1.0)
    assert [schedule(e) for e in range(6)] == [1.0] * 6 and schedule(6) == pytest.approx(1 / 1.2)
    assert Config().effective_ngram_order == 7 and Config(level="word").effective_sample_tokens == 40
    with pytest.raises(ConfigError, match="level='bytes' is not allowed"):
        Config.from_preset("default", {"level": "bytes"})
    text = Config.from_preset("text")  # the recipe for real prose: characters, the state carried across batches
    assert text.level == "char" and text.carry_state and text.dropout > 0 and text.learning_rate_decay < 1


# --- the registry's tiny run: metrics, samples, the exported endpoint, predict -------------------------
def test_tiny_run_reports_bits_against_kneser_ney_and_the_endpoint_generates(tiny_run):
    workdir = tiny_run("language_model")
    results = json.loads((workdir / "results.json").read_text())
    metrics = results["metrics"]
    assert metrics["primary"] == "bits_per_token" and "kneser_ney_4gram" in metrics["baselines"]
    model = metrics["model"]
    assert model["perplexity"] == pytest.approx(2 ** model["bits_per_token"])
    assert metrics["test_tokens"] == results["data"]["characters"]["test"]  # every character once (+ line breaks)
    assert (workdir / "samples.txt").read_text().count("prompt: ") == len(metrics["samples"])
    exported = tf.saved_model.load(str(workdir / "export"))
    out = exported.generate(tf.constant(["", "", "my"]), tf.constant(12), tf.constant(0.7), tf.constant(3))["text"]
    again = exported.generate(tf.constant(["", "", "my"]), tf.constant(12), tf.constant(0.7), tf.constant(3))["text"]
    texts = [t.decode() for t in out.numpy()]
    assert texts == [t.decode() for t in again.numpy()]  # seeded: the same call gives the same text
    assert all(len(t) >= 12 for t in texts)  # 12 characters (an [UNK] would print as 5)
    predicted = run_cli("language_model", "predict", "--json", "--model", str(workdir / "export"), "", "these")
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    lines = [json.loads(line) for line in predicted.stdout.strip().splitlines()]
    assert [line["prompt"] for line in lines] == ["", "these"] and all(len(line["text"]) >= 40 for line in lines)


# --- real data ----------------------------------------------------------------------------------------
@pytest.mark.real_data
def test_flickr8k_captions_as_text(shared_data):
    path = shared_data / "flickr8k_text" / "Flickr8k.token.txt"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    config = Config.from_preset("tiny", {"tab_field": 1, "max_lines": 4000, "ngram_order": 5})
    task = LanguageModelTask(config)
    data = task.load_data(path, Path("."))
    assert data.info["lines"] == {"train": len(data.train), "validation": len(data.validation),
                                  "test": len(data.test)} and sum(data.info["lines"].values()) == 4000
    assert not any("\t" in line or ".jpg" in line for line in data.train)  # captions only
    preprocessor = Preprocessor.fit(task, data, Path("."))
    stream = preprocessor.stream(data.test)
    bits = -np.mean(preprocessor.ngram.log2_probabilities(stream))
    assert 1.5 < bits < 3.2, bits  # a 5-gram on English captions: about 2 bits per character
    words = LanguageModelTask(Config.from_preset("tiny", {"tab_field": 1, "max_lines": 4000, "level": "word"}))
    word_preprocessor = Preprocessor.fit(words, data, Path("."))
    word_stream = word_preprocessor.stream(data.test)
    perplexity = 2 ** -np.mean(word_preprocessor.ngram.log2_probabilities(word_stream))
    assert 20 < perplexity < 200, perplexity
