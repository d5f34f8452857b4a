"""Step size and compile settings shared by every task; keras-only, so model code imports without TensorFlow.

``common.training`` re-exports both names, which is how the tasks call them.
"""

from __future__ import annotations

import keras

from common.config import BaseConfig


def replicas_in_sync() -> int:
    """Replicas of the TensorFlow distribution strategy in scope; on the other backends, the devices of the Keras
    distribution set (strategy=data_parallel under JAX), else 1."""
    if keras.backend.backend() != "tensorflow":
        distribution = keras.distribution.distribution()
        return int(distribution.device_mesh.devices.size) if distribution is not None else 1
    import tensorflow as tf  # already imported by Keras on this backend

    return tf.distribute.get_strategy().num_replicas_in_sync


def learning_rate(config: BaseConfig) -> float:
    """The step size to use: ``config.learning_rate``, times the replica count of the strategy in
    scope when ``scale_learning_rate`` is on (batch_size is global, so n replicas see n times the
    examples per step: the linear scaling rule of Goyal et al. 2017)."""
    return config.learning_rate * (replicas_in_sync() if config.scale_learning_rate else 1)


def compile_model(model: keras.Model, config: BaseConfig, loss, metrics=(), optimizer=None) -> keras.Model:
    """Compiles with Adam(learning_rate(config)) unless given an optimizer.

    ``config.jit_compile`` chooses XLA for TensorFlow's graph (off by default: TensorFlow's cuDNN LSTM kernel does
    not run under XLA). On JAX there is no graph without XLA: jit_compile=False would run every training step
    eagerly, op by op (1.9 s vs 3.5 ms per acceleration step on CPU), so JAX always compiles ("auto").
    ``config.steps_per_execution`` batches run per call into the compiled step (see BaseConfig)."""
    if optimizer is None:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate(config))
    if keras.backend.backend() == "jax" and keras.mixed_precision.dtype_policy().compute_dtype != "float32":
        lstms_off_cudnn(model)
    jit_compile = config.jit_compile if keras.backend.backend() == "tensorflow" else "auto"
    model.compile(optimizer=optimizer, loss=loss, metrics=list(metrics), jit_compile=jit_compile,
                  steps_per_execution=config.steps_per_execution)
    return model


def lstms_off_cudnn(model: keras.Model) -> None:
    """JAX's cuDNN RNN kernel (jaxlib gpu_rnn) lowers float32/float64 only: a 16-bit compute dtype fails at
    compilation ("Unknown output type float16"), after Keras' own fallback check. So under a mixed policy the
    LSTMs take Keras' generic loop, which on an H100 was as fast or faster at this suite's sizes (README,
    GPU figures). Masked LSTMs never take the cuDNN path on JAX anyway."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.LSTM):
            layer.use_cudnn = False
