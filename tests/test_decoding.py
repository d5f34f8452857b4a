"""common.decoding: greedy and beam search on hand-built step functions with known answers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf

from common import decoding

PAD, START, END = 0, 1, 2


def make_step_fn(table: np.ndarray, history_weight: float = 0.0):
    """A "model" whose next-token distribution depends on the example, the previous token and the prefix.

    table: [examples, vocabulary, vocabulary] probabilities P(next | previous) per example. The state
    is (example id [N, 1], history [N, 2] = (steps, sum of the tokens fed so far)) as floats: beam
    search must tile it per example and reorder it with the beams. With ``history_weight`` > 0 the
    log-probabilities also depend on the history, so a wrong reorder changes the scores.
    """
    log_table = tf.constant(np.log(np.maximum(table, 1e-30)), tf.float32)
    vocabulary = table.shape[-1]

    def step_fn(tokens, state):
        example, history = state
        example_ids = tf.cast(example[:, 0], tf.int32)
        new_history = history + tf.stack([tf.ones_like(history[:, 0]), tf.cast(tokens, tf.float32)], axis=1)
        logits = tf.gather_nd(log_table, tf.stack([example_ids, tokens], axis=1))
        logits += history_weight * tf.sin(new_history[:, 1:2] * tf.range(1, vocabulary + 1, dtype=tf.float32))
        return tf.nn.log_softmax(logits), (example, new_history)

    return step_fn


def sequence_log_prob(table: np.ndarray, example: int, tokens: list[int], history_weight: float = 0.0) -> float:
    """The log-probability that make_step_fn's model gives ``tokens`` (computed independently)."""
    previous, fed_sum, total = START, 0.0, 0.0
    vocabulary = table.shape[-1]
    for token in tokens:
        fed_sum += previous
        logits = np.log(np.maximum(table[example, previous], 1e-30))
        logits = logits + history_weight * np.sin(fed_sum * np.arange(1, vocabulary + 1))
        logits = logits - logits.max()
        total += logits[token] - np.log(np.exp(logits).sum())
        if token == END:
            break
        previous = token
    return total


def initial_state(batch: int):
    return (tf.range(batch, dtype=tf.float32)[:, None], tf.zeros([batch, 2]))


def random_table(examples: int, vocabulary: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(examples, vocabulary, vocabulary)) * 2.0
    logits[:, :, PAD] = -np.inf  # the model never emits padding or the start symbol
    logits[:, :, START] = -np.inf
    probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return probabilities / probabilities.sum(axis=-1, keepdims=True)


def greedy_trap_table() -> np.ndarray:
    """Greedy takes A (0.5) and is then stuck in a flat distribution; B then END scores 0.4*0.9."""
    vocabulary = 5  # PAD, START, END, A=3, B=4
    table = np.full((1, vocabulary, vocabulary), 1e-9)
    table[0, START, [END, 3, 4]] = [0.1, 0.5, 0.4]
    table[0, 3, [END, 3, 4]] = [0.32, 0.34, 0.34]
    table[0, 4, [END, 3, 4]] = [0.9, 0.05, 0.05]
    table[0, PAD, END] = 1.0
    return table / table.sum(axis=-1, keepdims=True)


def test_greedy_is_suboptimal_and_beam_finds_the_better_sequence():
    table = greedy_trap_table()
    step_fn = make_step_fn(table)
    greedy_tokens, greedy_log_prob = decoding.greedy_search(step_fn, initial_state(1), 1, START, END, max_length=6)
    beam_tokens, beam_score = decoding.beam_search(step_fn, initial_state(1), 1, START, END, 6, beam_width=2)
    greedy_row = greedy_tokens.numpy()[0].tolist()
    assert greedy_row[:2] == [3, 3]  # greedy commits to A
    assert beam_tokens.numpy()[0].tolist() == [4, END, 0, 0, 0, 0]
    assert beam_score.numpy()[0] == pytest.approx(np.log(0.4 * 0.9), abs=1e-5)
    assert beam_score.numpy()[0] > greedy_log_prob.numpy()[0] + 0.5
    assert greedy_log_prob.numpy()[0] == pytest.approx(sequence_log_prob(table, 0, greedy_row), abs=1e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_width_one_equals_greedy(seed):
    table = random_table(examples=4, vocabulary=7, seed=seed)
    step_fn = make_step_fn(table)
    greedy_tokens, greedy_log_prob = decoding.greedy_search(step_fn, initial_state(4), 4, START, END, 8)
    beam_tokens, beam_score = decoding.beam_search(step_fn, initial_state(4), 4, START, END, 8, beam_width=1)
    np.testing.assert_array_equal(beam_tokens.numpy(), greedy_tokens.numpy())
    np.testing.assert_allclose(beam_score.numpy(), greedy_log_prob.numpy(), rtol=1e-6, atol=1e-5)


def best_by_enumeration(table: np.ndarray, example: int, max_length: int) -> tuple[float, list[int]]:
    vocabulary = table.shape[-1]
    best = (-np.inf, [])
    for length in range(1, max_length + 1):
        for body in itertools.product(range(3, vocabulary), repeat=length - 1):
            for last in ([END] if length < max_length else [END, *range(3, vocabulary)]):
                tokens = [*body, last]
                score = sequence_log_prob(table, example, tokens)
                if score > best[0]:
                    best = (score, tokens)
    return best


def test_wide_beam_finds_the_exact_optimum_per_example():
    # 3 content tokens, max length 4: the exhaustive optimum is reachable with beam width 27.
    table = random_table(examples=3, vocabulary=6, seed=7)
    step_fn = make_step_fn(table)
    tokens, scores = decoding.beam_search(step_fn, initial_state(3), 3, START, END, 4, beam_width=27)
    for example in range(3):
        expected_score, expected_tokens = best_by_enumeration(table, example, 4)
        row = decoding.trim(tokens[example : example + 1], END, keep_end=True)[0]
        assert row == expected_tokens
        assert scores.numpy()[example] == pytest.approx(expected_score, abs=1e-4)


def test_beam_scores_match_the_returned_sequences_and_examples_are_independent():
    # The model's scores depend on the whole prefix (through the state), so every returned beam's
    # score equals the independently computed log-probability of its tokens only if the state was
    # reordered with the beams. Decoding examples together or one at a time must agree.
    table = random_table(examples=5, vocabulary=8, seed=3)
    step_fn = make_step_fn(table, history_weight=1.0)
    tokens, scores = decoding.beam_search(
        step_fn, initial_state(5), 5, START, END, 6, beam_width=3, return_all_beams=True
    )
    assert tokens.shape == (5, 3, 6) and scores.shape == (5, 3)
    for example in range(5):
        for beam in range(3):
            row = tokens.numpy()[example, beam].tolist()
            expected = sequence_log_prob(table, example, row, history_weight=1.0)
            assert scores.numpy()[example, beam] == pytest.approx(expected, abs=1e-4)
        assert np.all(np.diff(scores.numpy()[example]) <= 1e-6)  # best first

    def single_step_fn(example):
        def step(tokens, history):
            example_column = tf.fill([tf.shape(tokens)[0], 1], float(example))
            log_probs, (_, new_history) = step_fn(tokens, (example_column, history))
            return log_probs, new_history

        return step

    best_tokens, _ = decoding.beam_search(step_fn, initial_state(5), 5, START, END, 6, beam_width=3)
    for example in range(5):
        alone, _ = decoding.beam_search(single_step_fn(example), tf.zeros([1, 2]), 1, START, END, 6, beam_width=3)
        np.testing.assert_array_equal(alone.numpy()[0], best_tokens.numpy()[example])


def test_stop_symbol_ends_a_sequence_and_padding_follows():
    table = greedy_trap_table()
    tokens, _ = decoding.beam_search(make_step_fn(table), initial_state(1), 1, START, END, 8, beam_width=2)
    row = tokens.numpy()[0].tolist()
    assert END in row
    assert all(token == 0 for token in row[row.index(END) + 1 :])
    greedy, _ = decoding.greedy_search(make_step_fn(random_table(3, 6, 5)), initial_state(3), 3, START, END, 10)
    for row in greedy.numpy().tolist():
        if END in row:
            assert all(token == 0 for token in row[row.index(END) + 1 :])


def test_maximum_length_is_respected_when_the_end_never_comes():
    table = random_table(examples=2, vocabulary=6, seed=0)
    table[:, :, END] = 0.0  # END impossible
    table = table / table.sum(axis=-1, keepdims=True)
    for tokens, _ in (
        decoding.greedy_search(make_step_fn(table), initial_state(2), 2, START, END, 5),
        decoding.beam_search(make_step_fn(table), initial_state(2), 2, START, END, 5, beam_width=3),
    ):
        assert tokens.shape == (2, 5)
        assert np.all(tokens.numpy() >= 3)


def test_length_penalty_prefers_longer_sequences():
    # START: END 0.4 (short) or A 0.6; A: END 0.5. Raw log-prob: END (-0.92) > A END (-1.20);
    # per-token average (penalty 1): A END (-0.60) > END (-0.92).
    table = np.full((1, 4, 4), 1e-12)
    table[0, START, [END, 3]] = [0.4, 0.6]
    table[0, 3, [END, 3]] = [0.5, 0.5]
    table[0, PAD, END] = 1.0
    step_fn = make_step_fn(table)
    plain, plain_score = decoding.beam_search(step_fn, initial_state(1), 1, START, END, 4, beam_width=2)
    penalised, penalised_score = decoding.beam_search(
        step_fn, initial_state(1), 1, START, END, 4, beam_width=2, length_penalty=1.0
    )
    assert plain.numpy()[0].tolist() == [END, 0, 0, 0]
    assert penalised.numpy()[0].tolist() == [3, END, 0, 0]
    assert plain_score.numpy()[0] == pytest.approx(np.log(0.4), abs=1e-5)
    assert penalised_score.numpy()[0] == pytest.approx(np.log(0.6 * 0.5) / 2, abs=1e-5)


def test_runs_in_a_tf_function_and_a_saved_model_with_dynamic_batch(tmp_path):
    table = random_table(examples=1, vocabulary=7, seed=4)
    log_table = tf.constant(np.log(np.maximum(table[0], 1e-30)), tf.float32)

    class Decoder(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def decode(self, memory):
            def step_fn(tokens, state):
                # The attention-like memory rides along in the state: [N, 3].
                bias = tf.reduce_sum(state, axis=1, keepdims=True) * 0.0
                return tf.gather(log_table, tokens) + bias, state

            greedy, _ = decoding.greedy_search(step_fn, memory, tf.shape(memory)[0], START, END, 6)
            beam, score = decoding.beam_search(step_fn, memory, tf.shape(memory)[0], START, END, 6, beam_width=3)
            return {"greedy": greedy, "beam": beam, "score": score}

    module = Decoder()
    tf.saved_model.save(module, str(tmp_path / "decoder"))
    loaded = tf.saved_model.load(str(tmp_path / "decoder"))
    for batch in (1, 4):
        outputs = loaded.decode(tf.zeros([batch, 3]))
        assert outputs["beam"].shape == (batch, 6) and outputs["greedy"].shape == (batch, 6)
        expected = module.decode(tf.zeros([batch, 3]))
        np.testing.assert_array_equal(outputs["beam"].numpy(), expected["beam"].numpy())


def test_bad_arguments_are_rejected_with_a_clear_message():
    step_fn = make_step_fn(greedy_trap_table())
    with pytest.raises(ValueError, match="beam_width=0"):
        decoding.beam_search(step_fn, initial_state(1), 1, START, END, 4, beam_width=0)
    with pytest.raises(ValueError, match="max_length=0"):
        decoding.greedy_search(step_fn, initial_state(1), 1, START, END, 0)


def test_trim_cuts_at_end_and_padding():
    assert decoding.trim([[5, 6, END, 0], [7, 0, 0, 0], [3, 4, 5, 6]], END) == [[5, 6], [7], [3, 4, 5, 6]]
    assert decoding.trim([[5, END, 0]], END, keep_end=True) == [[5, END]]


@pytest.mark.parametrize("length_penalty", [0.0, 0.6])
def test_python_loop_reference_gives_the_same_beams(length_penalty):
    table = random_table(examples=3, vocabulary=9, seed=21)
    step_fn = make_step_fn(table, history_weight=0.5)
    tokens, scores = decoding.beam_search(
        step_fn, initial_state(3), 3, START, END, 7, beam_width=3, length_penalty=length_penalty
    )
    for example in range(3):
        example_state = tuple(s[example : example + 1] for s in initial_state(3))
        row, score = decoding.python_beam_search(step_fn, example_state, START, END, 7, 3, length_penalty)
        assert row == tokens.numpy()[example].tolist()
        assert score == pytest.approx(float(scores.numpy()[example]), abs=1e-5)
