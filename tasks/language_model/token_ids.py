"""Reserved ids of the language model's vocabularies (pipeline.py describes them), for the keras-only model code.

Kept apart from pipeline.py, which is TensorFlow ops, so that model.py imports without TensorFlow (issue 13:
the GPU machine runs Keras on JAX and has no TensorFlow); pipeline.py re-exports them.
"""

from common.token_ids import PAD_ID, UNKNOWN_ID

BREAK_ID = 2  # the line break ("\n" or <eos>); this task has no start or end token

__all__ = ["PAD_ID", "UNKNOWN_ID", "BREAK_ID"]
