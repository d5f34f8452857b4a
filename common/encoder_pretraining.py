"""Fitting an image encoder on the training images: the stand-in for ImageNet pretraining.

``pretrain_encoder`` trains a CNN encoder (common/encoders.py) in place to predict multi-hot labels of its
images (caption words, object attributes) through a sigmoid head that is then dropped; the tasks call it
when no pretrained weights are given, on pixels from ``common.images.load_pixels``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def pretrain_encoder(
    encoder: keras.Model,
    pixels: np.ndarray,
    targets: np.ndarray,
    *,
    epochs: int,
    batch_size: int,
    verbose: int,
    jit_compile: bool = False,
    rectify: bool = False,
) -> dict[str, list[float]]:
    """Trains ``encoder`` in place to predict multi-hot ``targets`` of its images; returns the history.

    pixels: uint8 [N, S, S, 3]; targets: float32 [N, T] (1 where label t applies to image n). A
    sigmoid head on the pooled features is trained with the encoder and then dropped, so the
    encoder's features carry what the labels name (caption words, object attributes): the stand-in
    for ImageNet pretraining when no pretrained weights are given. ``rectify`` puts a ReLU between
    the features and the head (for encoders whose features are linear). 10% of the images validate.
    """
    images = keras.Input(shape=tuple(pixels.shape[1:]), name="images")
    features = encoder(images)
    if rectify:
        features = keras.layers.ReLU(name="pretraining_relu")(features)
    outputs = keras.layers.Dense(units=targets.shape[1], activation="sigmoid", dtype="float32", name="labels")(features)
    model = keras.Model(images, outputs, name="encoder_pretraining")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")], jit_compile=jit_compile)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        history = model.fit(pixels.astype("float32"), targets, batch_size=batch_size, epochs=epochs,
                            validation_split=0.1, shuffle=True, verbose=verbose)
    else:
        # Under a multi-device strategy every batch must split evenly across the replicas (Keras builds
        # on the first batch averaged across them), so the same split goes through tf.data with
        # batches trimmed to a multiple of the replica count.
        from common.training import _even_batches

        cut = len(pixels) - int(len(pixels) * 0.1)  # validation_split=0.1 takes the last 10%

        def batches(x, y, shuffle):
            dataset = tf.data.Dataset.from_tensor_slices((x.astype("float32"), y))
            if shuffle:
                dataset = dataset.shuffle(len(x), reshuffle_each_iteration=True)
            return _even_batches(dataset.batch(batch_size), replicas)

        history = model.fit(batches(pixels[:cut], targets[:cut], True), epochs=epochs, verbose=verbose,
                            validation_data=batches(pixels[cut:], targets[cut:], False))
    return {key: [float(v) for v in values] for key, values in history.history.items()}
