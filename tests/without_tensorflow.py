"""``python tests/without_tensorflow.py SCRIPT ARGS...``: runs SCRIPT as __main__ where ``import tensorflow`` fails,
as on the GPU machine (JAX, no TensorFlow), so a test proves that a code path never needs TensorFlow."""

import runpy
import sys


class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            raise ImportError(f"{name} is blocked: this run must not need TensorFlow")
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, _NoTensorFlow())
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
