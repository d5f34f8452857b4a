"""Greedy and beam search as in-graph loops, shared by translation and captioning.

Both searches drive a ``step_fn`` one token at a time:

    step_fn(tokens: int32 [N], state) -> (log_probs float32 [N, V], new_state)

``state`` is any nested structure (tuple / list / dict) of tensors whose leading dimension is N.
For greedy search N = batch_size; for beam search N = batch_size * beam_width: ``beam_search``
tiles ``initial_state`` with ``ops.repeat(..., beam_width, axis=0)`` (rows b*k .. b*k+k-1 belong to
example b) and reorders it by gathering after every step. Static context such as an attention
memory [N, T, D] can therefore simply ride along inside ``state`` (step_fn returns it unchanged).

Outputs are ``tokens`` int32 [batch_size, max_length]: the generated tokens, the end token
included when it was produced, the start token not, and 0 after the end. Both loops are written
with ``keras.ops`` (``while_loop``, ``top_k``, fixed-shape buffers), so the same code runs on every
Keras backend: under TensorFlow inside ``tf.function`` and in a SavedModel with a dynamic batch
size, under JAX as ``lax.while_loop``; they stop as soon as every sequence has produced the end token.

Length normalisation (beam search): ``score = log_prob / length ** length_penalty`` where
``length`` counts the generated tokens including the end token (``length_penalty=0`` ranks by the
plain log-probability, 1 by the per-token average). Beams are ranked by this score at every step
(alive beams of one step all have the same length, so among them it is the log-probability order);
a finished beam keeps its score and competes with the alive ones until the loop ends.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence

import keras
import numpy as np
from keras import ops, tree

# A log-probability for "impossible" that stays finite, so that sums never produce NaN.
NEGATIVE_INFINITY = -1.0e9
PAD_ID = 0  # written after the end token


def _validate(max_length: Any, beam_width: int | None = None) -> None:
    if isinstance(max_length, int) and max_length < 1:
        raise ValueError(f"max_length={max_length}: expected at least 1")
    if beam_width is not None and (not isinstance(beam_width, int) or beam_width < 1):
        raise ValueError(f"beam_width={beam_width!r}: expected a Python int of at least 1")


def _like(new: Any, old: Any) -> Any:
    """``new`` with ``old``'s shape: a loop variable must keep its (static) shape from step to step, and a
    gather by computed indices would otherwise lose a batch size TensorFlow knew statically."""
    return ops.reshape(new, ops.shape(old))


def _gather_rows(values: Any, rows: Any) -> Any:
    return ops.take(values, rows, axis=0)


def _gather_per_example(values: Any, indices: Any) -> Any:
    """values [B, M, ...], indices int [B, K] → [B, K, ...]: ``values[b, indices[b, k]]``."""
    shape = ops.shape(values)
    batch, width = shape[0], shape[1]
    flat = ops.reshape(values, (-1, *shape[2:]))
    offsets = ops.expand_dims(ops.arange(batch, dtype="int32") * ops.cast(width, "int32"), 1)
    gathered = ops.take(flat, ops.reshape(indices + offsets, (-1,)), axis=0)
    return ops.reshape(gathered, (batch, ops.shape(indices)[1], *shape[2:]))


def greedy_search(
    step_fn: Callable[[Any, Any], tuple[Any, Any]],
    initial_state: Any,
    batch_size: Any,
    start_id: int,
    end_id: int,
    max_length: int,
) -> tuple[Any, Any]:
    """Picks the most probable token at every step.

    Returns ``tokens`` int32 [batch_size, max_length] (0 after the end token) and ``log_prob``
    float32 [batch_size], the summed log-probability of the emitted tokens (end token included).
    """
    _validate(max_length)
    state = tree.map_structure(ops.convert_to_tensor, initial_state)
    tokens = ops.full((batch_size,), start_id, dtype="int32")
    finished = ops.zeros((batch_size,), dtype="bool")
    log_prob = ops.zeros((batch_size,), dtype="float32")
    sequences = ops.zeros((batch_size, max_length), dtype="int32")  # filled in place: fixed shapes for every backend

    def condition(step, tokens, state, finished, log_prob, sequences):
        return ops.logical_and(step < max_length, ops.logical_not(ops.all(finished)))

    def body(step, tokens, state, finished, log_prob, sequences):
        log_probs, new_state = step_fn(tokens, state)
        log_probs = ops.cast(log_probs, "float32")  # [N, V]
        next_tokens = ops.cast(ops.argmax(log_probs, axis=-1), "int32")  # lowest id wins a tie
        chosen = ops.take_along_axis(log_probs, ops.expand_dims(next_tokens, 1), axis=1)[:, 0]  # [N]
        next_tokens = ops.where(finished, ops.zeros_like(next_tokens) + PAD_ID, next_tokens)
        log_prob = log_prob + ops.where(finished, ops.zeros_like(chosen), chosen)
        position = ops.one_hot(step, max_length, dtype="int32")  # [max_length]
        sequences = sequences + ops.expand_dims(next_tokens, 1) * ops.expand_dims(position, 0)
        finished = ops.logical_or(finished, ops.equal(next_tokens, end_id))
        new_state = tree.map_structure(_like, tree.map_structure(ops.convert_to_tensor, new_state), state)
        return step + 1, _like(next_tokens, tokens), new_state, finished, log_prob, sequences

    *_, log_prob, sequences = ops.while_loop(
        condition, body, (ops.convert_to_tensor(0, dtype="int32"), tokens, state, finished, log_prob, sequences),
        maximum_iterations=max_length,
    )
    return sequences, log_prob


def beam_search(
    step_fn: Callable[[Any, Any], tuple[Any, Any]],
    initial_state: Any,
    batch_size: Any,
    start_id: int,
    end_id: int,
    max_length: int,
    beam_width: int,
    length_penalty: float = 0.0,
    return_all_beams: bool = False,
) -> tuple[Any, Any]:
    """Keeps the ``beam_width`` best partial sequences of every example.

    Returns ``tokens`` int32 [batch_size, max_length] of the best beam (0 after the end token) and
    its ``score`` float32 [batch_size] = log_prob / length ** length_penalty. With
    ``return_all_beams`` the results are [batch_size, beam_width, max_length] and [batch_size, beam_width],
    best first.
    """
    _validate(max_length, beam_width)
    width = beam_width
    state = tree.map_structure(lambda s: ops.repeat(ops.convert_to_tensor(s), width, axis=0), initial_state)
    rows = batch_size * width
    tokens = ops.full((rows,), start_id, dtype="int32")
    # All beams start identical, so only beam 0 may expand at the first step.
    first_beam = ops.convert_to_tensor(np.array([0.0] + [NEGATIVE_INFINITY] * (width - 1), np.float32))
    log_prob = ops.zeros((batch_size, width), dtype="float32") + ops.expand_dims(first_beam, 0)  # [B, K]
    finished = ops.zeros((batch_size, width), dtype="bool")
    lengths = ops.zeros((batch_size, width), dtype="int32")
    sequences = ops.zeros((batch_size, width, max_length), dtype="int32")
    penalty = ops.convert_to_tensor(length_penalty, dtype="float32")

    def normalised(log_prob, lengths):
        length = ops.cast(ops.maximum(lengths, 1), "float32")
        return log_prob / ops.power(length, penalty)

    def condition(step, tokens, state, log_prob, finished, lengths, sequences):
        return ops.logical_and(step < max_length, ops.logical_not(ops.all(finished)))

    def body(step, tokens, state, log_prob, finished, lengths, sequences):
        step_log_probs, new_state = step_fn(tokens, state)
        vocabulary = ops.shape(step_log_probs)[-1]
        step_log_probs = ops.reshape(ops.cast(step_log_probs, "float32"), (batch_size, width, vocabulary))
        # A finished beam has one continuation, PAD with log-probability 0, so it survives unchanged.
        pad_only = ops.where(ops.equal(ops.arange(vocabulary), PAD_ID), 0.0, NEGATIVE_INFINITY)
        step_log_probs = ops.where(ops.expand_dims(finished, 2), pad_only[None, None, :], step_log_probs)
        candidates = ops.expand_dims(log_prob, 2) + step_log_probs  # [B, K, V]
        candidate_lengths = lengths + ops.cast(ops.logical_not(finished), "int32")  # [B, K]
        ranking = normalised(candidates, ops.expand_dims(candidate_lengths, 2))
        _, best = ops.top_k(ops.reshape(ranking, (batch_size, -1)), k=width)  # [B, K], ties: lower index
        best = ops.cast(best, "int32")
        parent = best // vocabulary  # [B, K] beam each winner extends
        new_tokens = best % vocabulary
        log_prob = ops.take_along_axis(ops.reshape(candidates, (batch_size, -1)), best, axis=1)
        was_finished = ops.take_along_axis(finished, parent, axis=1)
        lengths = ops.take_along_axis(candidate_lengths, parent, axis=1)
        new_tokens = ops.where(was_finished, ops.zeros_like(new_tokens) + PAD_ID, new_tokens)
        finished = ops.logical_or(was_finished, ops.equal(new_tokens, end_id))
        sequences = _gather_per_example(sequences, parent)
        position = ops.one_hot(step, max_length, dtype="int32")  # [max_length]
        sequences = sequences + ops.expand_dims(new_tokens, 2) * position[None, None, :]
        flat_parent = ops.reshape(parent + ops.expand_dims(ops.arange(batch_size, dtype="int32") * width, 1), (-1,))
        new_state = tree.map_structure(lambda new, old: _like(_gather_rows(ops.convert_to_tensor(new), flat_parent),
                                                              old), new_state, state)
        return (step + 1, _like(new_tokens, tokens), new_state, _like(log_prob, finished), finished,
                _like(lengths, finished), _like(sequences, sequences))

    *_, log_prob, finished, lengths, sequences = ops.while_loop(
        condition, body,
        (ops.convert_to_tensor(0, dtype="int32"), tokens, state, log_prob, finished, lengths, sequences),
        maximum_iterations=max_length,
    )
    scores = normalised(log_prob, lengths)  # [B, K]
    order = ops.cast(ops.argsort(-scores, axis=-1), "int32")  # stable: equal scores keep the beam order
    scores = ops.take_along_axis(scores, order, axis=1)
    sequences = _gather_per_example(sequences, order)
    if return_all_beams:
        return sequences, scores
    return sequences[:, 0, :], scores[:, 0]


def trim(tokens: Any, end_id: int, keep_end: bool = False) -> list[list[int]]:
    """[B, L] token ids → Python lists cut at the first end token (and at padding)."""
    rows = []
    for row in np.asarray(ops.convert_to_numpy(tokens)).tolist():
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
    step_fn: Callable[[Any, Any], tuple[Any, Any]],
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
    _validate(max_length, beam_width)
    width = beam_width
    state = tree.map_structure(lambda s: np.repeat(ops.convert_to_numpy(s), width, axis=0), initial_state)
    tokens = np.full([width], start_id, np.int32)
    log_prob = np.array([0.0] + [NEGATIVE_INFINITY] * (width - 1), np.float32)
    finished = np.zeros([width], bool)
    lengths = np.zeros([width], np.int32)
    sequences = np.zeros([width, max_length], np.int32)
    penalty = np.float32(length_penalty)
    for step in range(max_length):
        if finished.all():
            break
        step_log_probs, new_state = step_fn(ops.convert_to_tensor(tokens),
                                            tree.map_structure(ops.convert_to_tensor, state))
        step_log_probs = np.asarray(ops.convert_to_numpy(step_log_probs), np.float32).copy()
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
        state = tree.map_structure(lambda s: ops.convert_to_numpy(s)[parent], new_state)
        tokens = new_tokens
    scores = log_prob / np.power(np.maximum(lengths, 1).astype(np.float32), penalty)
    best_beam = int(np.argsort(-scores, kind="stable")[0])
    return sequences[best_beam].tolist(), float(scores[best_beam])


def traced(function: Callable, input_signature: Sequence[Any] | None = None) -> Callable:
    """``function`` traced once by tf.function under TensorFlow, exactly the graph a SavedModel endpoint serves;
    unchanged under the other backends (there a search compiles itself: ``compiled``).

    input_signature: TensorSpecs, or (shape, dtype) pairs for callers that do not import TensorFlow, e.g.
    ``[([None, 512], "float32")]`` for any batch size.
    """
    if keras.backend.backend() != "tensorflow":
        return function
    import tensorflow as tf  # imported by Keras already on this backend; this module stays keras-only

    if input_signature is not None:
        input_signature = [spec if isinstance(spec, tf.TensorSpec) else tf.TensorSpec(*spec)
                           for spec in input_signature]
    return tf.function(function, input_signature=input_signature)


def compiled(function: Callable, model: keras.Model, static_argnums: tuple[int, ...] = ()) -> Callable:
    """``function`` (a search over ``model``'s layers) compiled once per input shape under JAX; unchanged elsewhere.

    Under JAX an eager ``ops.while_loop`` is traced and compiled again on every call (its body is a new closure),
    which costs more than the search itself. Here the whole search is one ``jax.jit`` whose arguments include the
    model's weights (read through keras.StatelessScope), so later weight updates are used without recompiling.
    ``static_argnums``: the positions of Python settings (lengths, widths), which select a compilation.
    TensorFlow callers trace with tf.function themselves (the SavedModel endpoints); other backends run eagerly.
    """
    if keras.backend.backend() != "jax":
        return function
    import jax

    variables = model.variables

    def pure(values, *args):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return function(*args)

    jitted = jax.jit(pure, static_argnums=tuple(index + 1 for index in static_argnums))
    signature = inspect.signature(function)

    def call(*args, **kwargs):
        args = signature.bind(*args, **kwargs).args  # keywords too, as positions (jit's static_argnums)
        # Arrays from tf.data or a TF preprocessor arrive as TF tensors: jax.jit takes arrays only.
        args = [arg if index in static_argnums or isinstance(arg, jax.Array) else np.asarray(arg)
                for index, arg in enumerate(args)]
        return jitted([variable.value for variable in variables], *args)

    return call

