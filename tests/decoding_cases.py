"""Known-answer decoding cases written with keras.ops, so the same step function runs on every Keras backend
(tests/test_backends.py runs ``main`` under JAX and compares with TensorFlow in the parent)."""

import json
import sys

import numpy as np
from keras import ops

from common import decoding

START, END = 1, 2


def make_step_fn(table: np.ndarray, history_weight: float = 0.5):
    """P(next | example, previous token), plus a history-dependent term (so a wrong state reorder shows)."""
    examples, vocabulary, _ = table.shape
    log_table = ops.convert_to_tensor(np.log(np.maximum(table, 1e-30)).reshape(-1, vocabulary).astype(np.float32))
    frequencies = ops.convert_to_tensor(np.arange(1, vocabulary + 1, dtype=np.float32))

    def step_fn(tokens, state):
        example, history = state
        rows = ops.cast(example[:, 0], "int32") * vocabulary + tokens
        new_history = history + ops.stack([ops.ones_like(history[:, 0]), ops.cast(tokens, "float32")], axis=1)
        logits = ops.take(log_table, rows, axis=0) + history_weight * ops.sin(new_history[:, 1:2] * frequencies)
        return ops.log_softmax(logits, axis=-1), (example, new_history)

    return step_fn


def table(examples: int = 3, vocabulary: int = 9, seed: int = 21) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(examples, vocabulary, vocabulary)) * 2.0
    logits[:, :, [0, START]] = -np.inf  # never padding or the start symbol
    probabilities = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return probabilities / probabilities.sum(axis=-1, keepdims=True)


def results() -> dict:
    probabilities = table()
    step_fn = make_step_fn(probabilities)
    batch = probabilities.shape[0]
    state = (np.arange(batch, dtype=np.float32)[:, None], np.zeros((batch, 2), np.float32))
    found = {}
    greedy, greedy_score = decoding.greedy_search(step_fn, state, batch, START, END, 7)
    found["greedy"] = ops.convert_to_numpy(greedy).tolist()
    found["greedy_score"] = ops.convert_to_numpy(greedy_score).tolist()
    for width, penalty in ((1, 0.0), (3, 0.0), (3, 0.6)):
        tokens, scores = decoding.beam_search(step_fn, state, batch, START, END, 7, beam_width=width,
                                              length_penalty=penalty)
        found[f"beam{width}_{penalty}"] = ops.convert_to_numpy(tokens).tolist()
        found[f"beam{width}_{penalty}_score"] = ops.convert_to_numpy(scores).tolist()
        found[f"python{width}_{penalty}"] = [
            decoding.python_beam_search(step_fn, tuple(s[e : e + 1] for s in state), START, END, 7, width, penalty)
            for e in range(batch)]
    return found


if __name__ == "__main__":
    print(json.dumps(results()))
    sys.exit(0)
