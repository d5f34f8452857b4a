"""Reserved ids shared by the text vocabularies (common/text.py) and the keras-only models and decoders.

Kept apart from common/text.py, which is TensorFlow ops, so that model code imports without TensorFlow
(issue 13: the GPU machine runs Keras on JAX and has no TensorFlow).
"""

PAD_ID, UNKNOWN_ID, START_ID, END_ID = 0, 1, 2, 3
