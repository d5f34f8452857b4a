"""Greedy and beam search as in-graph loops, shared by translation and captioning.

Both searches drive a ``step_fn`` one token at a time:

    step_fn(tokens: int32 [N], state) -> (log_probs float32 [N, V], new_state)

``state`` is any nested structure (tuple / list / dict) of tensors whose leading dimension is N.
For greedy search N = batch_size; for beam search N = batch_size * beam_width: ``beam_search``
tiles ``initial_state`` with ``tf.repeat(..., beam_width, axis=0)`` (rows b*k .. b*k+k-1 belong to
example b) and reorders it by gathering after every step. Static context such as an attention
memory [N, T, D] can therefore simply ride along inside ``state`` (step_fn returns it unchanged).

Outputs are ``tokens`` int32 [batch_size, max_length]: the generated tokens, the end token
included when it was produced, the start token not, and 0 after the end. Both loops are
``tf.while_loop``s, so they run inside ``tf.function`` and in a SavedModel with a dynamic batch
size, and they stop as soon as every sequence has produced the end token.

Length normalisation (beam search): ``score = log_prob / length ** length_penalty`` where
``length`` counts the generated tokens including the end token (``length_penalty=0`` ranks by the
plain log-probability, 1 by the per-token average). Beams are ranked by this score at every step
(alive beams of one step all have the same length, so among them it is the log-probability order);
a finished beam keeps its score and competes with the alive ones until the loop ends.
"""

from __future__ import annotations

from typing import Any, Callable

import tensorflow as tf

# A log-probability for "impossible" that stays finite, so that sums never produce NaN.
NEGATIVE_INFINITY = -1.0e9
PAD_ID = 0  # written after the end token


def _validate(max_length: Any, beam_width: int | None = None) -> None:
    if isinstance(max_length, int) and max_length < 1:
        raise ValueError(f"max_length={max_length}: expected at least 1")
    if beam_width is not None and (not isinstance(beam_width, int) or beam_width < 1):
        raise ValueError(f"beam_width={beam_width!r}: expected a Python int of at least 1")


def _relaxed_shape(tensor: tf.Tensor) -> tf.TensorShape:
    # The leading (batch) dimension may be dynamic: loops must not pin it to the first value's shape.
    shape = tf.TensorShape(tensor.shape)
    if shape.rank is None or shape.rank == 0:
        return shape
    return tf.TensorShape([None]).concatenate(shape[1:])


def _state_invariants(state: Any) -> Any:
    return tf.nest.map_structure(_relaxed_shape, state)


def _as_tensors(state: Any) -> Any:
    return tf.nest.map_structure(tf.convert_to_tensor, state)


def greedy_search(
    step_fn: Callable[[tf.Tensor, Any], tuple[tf.Tensor, Any]],
    initial_state: Any,
    batch_size: Any,
    start_id: int,
    end_id: int,
    max_length: int,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Picks the most probable token at every step.

    Returns ``tokens`` int32 [batch_size, max_length] (0 after the end token) and ``log_prob``
    float32 [batch_size], the summed log-probability of the emitted tokens (end token included).
    """
    _validate(max_length)
    state = _as_tensors(initial_state)
    batch_size = tf.cast(batch_size, tf.int32)
    tokens = tf.fill([batch_size], tf.constant(start_id, tf.int32))
    finished = tf.zeros([batch_size], tf.bool)
    log_prob = tf.zeros([batch_size], tf.float32)
    outputs = tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=tf.TensorShape([None]))

    def condition(step, tokens, state, finished, log_prob, outputs):
        return tf.logical_and(step < max_length, tf.logical_not(tf.reduce_all(finished)))

    def body(step, tokens, state, finished, log_prob, outputs):
        log_probs, new_state = step_fn(tokens, state)
        log_probs = tf.cast(log_probs, tf.float32)  # [N, V]
        next_tokens = tf.argmax(log_probs, axis=-1, output_type=tf.int32)  # lowest id wins a tie
        chosen = tf.gather(log_probs, next_tokens, axis=1, batch_dims=1)  # [N]
        next_tokens = tf.where(finished, tf.constant(PAD_ID, tf.int32), next_tokens)
        log_prob = log_prob + tf.where(finished, tf.zeros_like(chosen), chosen)
        outputs = outputs.write(step, next_tokens)
        finished = tf.logical_or(finished, tf.equal(next_tokens, end_id))
        return step + 1, next_tokens, _as_tensors(new_state), finished, log_prob, outputs

    _, _, _, _, log_prob, outputs = tf.while_loop(
        condition,
        body,
        (tf.constant(0), tokens, state, finished, log_prob, outputs),
        shape_invariants=(
            tf.TensorShape([]),
            tf.TensorShape([None]),
            _state_invariants(state),
            tf.TensorShape([None]),
            tf.TensorShape([None]),
            tf.TensorShape(None),
        ),
        maximum_iterations=max_length,
    )
    # [B, steps_run]; no step runs for an empty batch, and an empty TensorArray of unknown element
    # shape cannot be stacked, so that case gets its [0, 0] result directly.
    generated = tf.cond(outputs.size() > 0, lambda: tf.transpose(outputs.stack()),
                        lambda: tf.zeros([batch_size, 0], tf.int32))
    generated = tf.reshape(generated, [batch_size, -1])
    padding = max_length - tf.shape(generated)[1]
    tokens = tf.pad(generated, [[0, 0], [0, padding]])
    tokens = tf.ensure_shape(tokens, [None, max_length] if isinstance(max_length, int) else [None, None])
    return tokens, log_prob


def beam_search(
    step_fn: Callable[[tf.Tensor, Any], tuple[tf.Tensor, Any]],
    initial_state: Any,
    batch_size: Any,
    start_id: int,
    end_id: int,
    max_length: int,
    beam_width: int,
    length_penalty: float = 0.0,
    return_all_beams: bool = False,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Keeps the ``beam_width`` best partial sequences of every example.

    Returns ``tokens`` int32 [batch_size, max_length] of the best beam (0 after the end token) and
    its ``score`` float32 [batch_size] = log_prob / length ** length_penalty. With
    ``return_all_beams`` the results are [batch_size, beam_width, max_length] and
    [batch_size, beam_width], best first.
    """
    _validate(max_length, beam_width)
    width = beam_width
    batch_size = tf.cast(batch_size, tf.int32)
    state = tf.nest.map_structure(lambda s: tf.repeat(tf.convert_to_tensor(s), width, axis=0), initial_state)
    rows = batch_size * width
    tokens = tf.fill([rows], tf.constant(start_id, tf.int32))
    # All beams start identical, so only beam 0 may expand at the first step.
    first_beam = tf.concat([tf.zeros([1]), tf.fill([width - 1], NEGATIVE_INFINITY)], axis=0)
    log_prob = tf.tile(first_beam[tf.newaxis, :], [batch_size, 1])  # [B, K]
    finished = tf.zeros([batch_size, width], tf.bool)
    lengths = tf.zeros([batch_size, width], tf.int32)
    sequences = tf.zeros([batch_size, width, max_length], tf.int32)
    length_penalty = tf.constant(length_penalty, tf.float32)

    def normalised(log_prob, lengths):
        length = tf.cast(tf.maximum(lengths, 1), tf.float32)
        return log_prob / tf.pow(length, length_penalty)

    def condition(step, tokens, state, log_prob, finished, lengths, sequences):
        return tf.logical_and(step < max_length, tf.logical_not(tf.reduce_all(finished)))

    def body(step, tokens, state, log_prob, finished, lengths, sequences):
        step_log_probs, new_state = step_fn(tokens, state)
        vocabulary = tf.shape(step_log_probs)[-1]
        step_log_probs = tf.reshape(tf.cast(step_log_probs, tf.float32), [batch_size, width, vocabulary])
        # A finished beam has one continuation, PAD with log-probability 0, so it survives unchanged.
        pad_only = tf.where(
            tf.equal(tf.range(vocabulary), PAD_ID), 0.0, NEGATIVE_INFINITY
        )[tf.newaxis, tf.newaxis, :]
        step_log_probs = tf.where(finished[:, :, tf.newaxis], pad_only, step_log_probs)
        candidates = log_prob[:, :, tf.newaxis] + step_log_probs  # [B, K, V]
        candidate_lengths = lengths + tf.cast(tf.logical_not(finished), tf.int32)  # [B, K]
        ranking = normalised(candidates, candidate_lengths[:, :, tf.newaxis])
        _, best = tf.math.top_k(tf.reshape(ranking, [batch_size, -1]), k=width)  # [B, K], ties: lower index
        parent = best // vocabulary  # [B, K] beam each winner extends
        new_tokens = best % vocabulary
        log_prob = tf.gather(tf.reshape(candidates, [batch_size, -1]), best, batch_dims=1)
        was_finished = tf.gather(finished, parent, batch_dims=1)
        lengths = tf.gather(candidate_lengths, parent, batch_dims=1)
        new_tokens = tf.where(was_finished, tf.constant(PAD_ID, tf.int32), new_tokens)
        finished = tf.logical_or(was_finished, tf.equal(new_tokens, end_id))
        sequences = tf.gather(sequences, parent, batch_dims=1)
        position = tf.one_hot(step, max_length, dtype=tf.int32)  # [max_length]
        sequences = sequences + new_tokens[:, :, tf.newaxis] * position[tf.newaxis, tf.newaxis, :]
        flat_parent = tf.reshape(parent + tf.range(batch_size)[:, tf.newaxis] * width, [-1])  # [B*K]
        new_state = tf.nest.map_structure(lambda s: tf.gather(s, flat_parent, axis=0), _as_tensors(new_state))
        return step + 1, tf.reshape(new_tokens, [-1]), new_state, log_prob, finished, lengths, sequences

    _, _, _, log_prob, finished, lengths, sequences = tf.while_loop(
        condition,
        body,
        (tf.constant(0), tokens, state, log_prob, finished, lengths, sequences),
        shape_invariants=(
            tf.TensorShape([]),
            tf.TensorShape([None]),
            _state_invariants(state),
            tf.TensorShape([None, width]),
            tf.TensorShape([None, width]),
            tf.TensorShape([None, width]),
            tf.TensorShape([None, width, max_length] if isinstance(max_length, int) else [None, width, None]),
        ),
        maximum_iterations=max_length,
    )
    scores = normalised(log_prob, lengths)  # [B, K]
    order = tf.argsort(scores, axis=-1, direction="DESCENDING", stable=True)
    scores = tf.gather(scores, order, batch_dims=1)
    sequences = tf.gather(sequences, order, batch_dims=1)
    if return_all_beams:
        return sequences, scores
    return sequences[:, 0, :], scores[:, 0]


def trim(tokens: Any, end_id: int, keep_end: bool = False) -> list[list[int]]:
    """[B, L] token ids → Python lists cut at the first end token (and at padding)."""
    rows = []
    for row in tf.convert_to_tensor(tokens).numpy().tolist():
        kept = []
        for token in row:
            if token == end_id:
                if keep_end:
                    kept.append(token)
                break
            if token == PAD_ID:
                break
            kept.append(token)
        rows.append(kept)
    return rows


def python_beam_search(
    step_fn: Callable[[tf.Tensor, Any], tuple[tf.Tensor, Any]],
    initial_state: Any,
    start_id: int,
    end_id: int,
    max_length: int,
    beam_width: int,
    length_penalty: float = 0.0,
) -> tuple[list[int], float]:
    """Beam search for ONE example with the bookkeeping in a Python loop (NumPy), step by step.

    The same algorithm and tie-breaking as ``beam_search`` (the reference it is tested against,
    and the "one sentence at a time" side of the translation benchmark). ``initial_state`` has
    leading dimension 1. Returns (tokens of the best beam, padded to max_length, score).
    """
    import numpy as np

    _validate(max_length, beam_width)
    width = beam_width
    state = tf.nest.map_structure(lambda s: np.repeat(np.asarray(s), width, axis=0), initial_state)
    tokens = np.full([width], start_id, np.int32)
    log_prob = np.array([0.0] + [NEGATIVE_INFINITY] * (width - 1), np.float32)
    finished = np.zeros([width], bool)
    lengths = np.zeros([width], np.int32)
    sequences = np.zeros([width, max_length], np.int32)
    penalty = np.float32(length_penalty)
    for step in range(max_length):
        if finished.all():
            break
        step_log_probs, new_state = step_fn(tf.constant(tokens), tf.nest.map_structure(tf.constant, state))
        step_log_probs = np.asarray(step_log_probs, np.float32).copy()
        vocabulary = step_log_probs.shape[-1]
        step_log_probs[finished] = NEGATIVE_INFINITY
        step_log_probs[finished, PAD_ID] = 0.0
        candidates = log_prob[:, None] + step_log_probs  # [K, V]
        candidate_lengths = lengths + (~finished).astype(np.int32)
        divisor = np.power(np.maximum(candidate_lengths, 1).astype(np.float32), penalty)
        ranking = (candidates / divisor[:, None]).reshape(-1)
        best = np.argsort(-ranking, kind="stable")[:width]  # ties: lower index first, like top_k
        parent, new_tokens = best // vocabulary, (best % vocabulary).astype(np.int32)
        log_prob = candidates.reshape(-1)[best]
        was_finished = finished[parent]
        lengths = candidate_lengths[parent]
        new_tokens[was_finished] = PAD_ID
        finished = was_finished | (new_tokens == end_id)
        sequences = sequences[parent]
        sequences[:, step] = new_tokens
        state = tf.nest.map_structure(lambda s: np.asarray(s)[parent], new_state)
        tokens = new_tokens
    scores = log_prob / np.power(np.maximum(lengths, 1).astype(np.float32), penalty)
    best_beam = int(np.argsort(-scores, kind="stable")[0])
    return sequences[best_beam].tolist(), float(scores[best_beam])
