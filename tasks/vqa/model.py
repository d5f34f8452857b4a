"""Deeper LSTM Q + norm I (Antol et al. 2015, "VQA: Visual Question Answering", section 5).

    question tokens [B, L] → Embedding → dropout → LSTM × lstm_layers (right-padded, masked)
        → concat of every layer's final [h, c]  [B, 2 · layers · units] → Dense(common_dim, tanh)
    image [B, D] cached CNN features (centred by a parameter-free BatchNormalization)
          or [B, S, S, 3] pixels → CNN trained end to end (image_features="end_to_end")
        → l2 normalisation ("norm I") → × sqrt(D) (unit RMS) → Dense(common_dim, tanh)
    element-wise product (fusion) → dropout → Dense(hidden_units, tanh) → dropout
        → Dense(K answers, softmax, float32)

The LSTMs keep the cuDNN-eligible configuration (tanh/sigmoid, no recurrent dropout, no unroll).
Two additions to the paper's model (reasons in the comments of build_model; not ablated separately):
centring the all-positive cached features before the l2 norm, and the sqrt(D) gain after it. No custom
layers: the model loads from a .keras file with plain Keras (plus common.encoders' ImagePreprocessing
when a common.encoders encoder is used end to end).
"""

from __future__ import annotations

import keras

from common import encoders
from common.optimization import learning_rate
from tasks.vqa.config import Config


def build_strided_cnn(image_size: int, feature_dim: int) -> keras.Model:
    """A small CNN for the synthetic scenes: pixels [B, S, S, 3] in [0, 255] → [B, feature_dim].

    Four 3×3 convolutions (stride 2, 2, 2, 1) with batch normalisation and ReLU, then the S/8 × S/8
    grid is flattened (positions matter: "left of") and projected to ``feature_dim``.
    Batch normalisation is what lets it learn from scratch within a few epochs; it costs a quarter of
    common.encoders' small_cnn (no full-resolution convolution).
    """
    images = keras.Input(shape=(image_size, image_size, 3), name="images")
    x = keras.layers.Rescaling(scale=1.0 / 255.0, name="unit_pixels")(images)
    for index, (filters, strides) in enumerate(((32, 2), (64, 2), (64, 2), (64, 1))):
        x = keras.layers.Conv2D(filters=filters, kernel_size=3, strides=strides, padding="same", use_bias=False,
                                name=f"conv{index + 1}")(x)
        x = keras.layers.BatchNormalization(name=f"conv{index + 1}_norm")(x)
        x = keras.layers.ReLU(name=f"conv{index + 1}_relu")(x)
    x = keras.layers.Flatten(name="grid")(x)  # [B, (S/8)² · 64]
    # Linear features: signed components, so that l2-normalised vectors of different images differ in direction.
    features = keras.layers.Dense(units=feature_dim, name="features")(x)
    return keras.Model(images, features, name="strided_cnn")


def build_image_encoder(name: str, image_size: int, feature_dim: int, weights_path: str | None = None) -> keras.Model:
    """The image CNN: pixels in [0, 255] → [B, D]. ``strided_cnn`` is defined here; the others come
    from common.encoders (small_cnn, keras.applications networks).

    name: ``Config.encoder``; feature_dim: output width of strided_cnn / small_cnn (the
    keras.applications widths are fixed). weights_path: a weights file to load (the fitted
    preprocessor's ``.weights.h5``, or an ImageNet ``*_notop.h5`` for the keras.applications
    networks); None = random initial weights.
    """
    if name == "strided_cnn":
        encoder = build_strided_cnn(image_size, feature_dim)
        if weights_path is not None:
            encoder.load_weights(weights_path)
        return encoder
    return encoders.build_encoder(name, image_size, weights_path=weights_path, feature_dim=feature_dim)


def build_model(
    config: Config, question_vocabulary_size: int, num_answers: int, image_feature_dim: int | None = None
) -> keras.Model:
    """Functional model {"image", "question_tokens"} → answer probabilities [B, num_answers].

    image_feature_dim: width of cached features (image_features="cached"); ignored in end_to_end mode,
    where the image input is the pixel array [S, S, 3] and the CNN is part of the model.
    """
    if config.image_features == "cached":
        if not image_feature_dim:
            raise ValueError("image_features='cached' needs image_feature_dim (the cached feature width), got None")
        image = keras.Input(shape=(image_feature_dim,), dtype="float32", name="image")
        image_features = image
    else:
        image = keras.Input(shape=(config.image_size, config.image_size, 3), dtype="float32", name="image")
        encoder = build_image_encoder(config.encoder, config.image_size, config.encoder_feature_dim)
        image_features = encoder(image)  # [B, D]
    question_tokens = keras.Input(shape=(config.max_question_length,), dtype="int32", name="question_tokens")

    # --- question: deeper LSTM Q ---------------------------------------------------------------------
    x = keras.layers.Embedding(
        input_dim=question_vocabulary_size, output_dim=config.embedding_dim, mask_zero=True, name="word_embedding"
    )(question_tokens)  # [B, L, E]
    x = keras.layers.Dropout(rate=config.dropout, name="embedding_dropout")(x)
    states = []
    for layer in range(config.lstm_layers):
        last = layer == config.lstm_layers - 1
        outputs = keras.layers.LSTM(
            units=config.lstm_units, return_sequences=not last, return_state=True, name=f"question_lstm_{layer + 1}"
        )(x)
        x, hidden, cell = outputs
        states += [hidden, cell]  # each [B, units]
    question_code = states[0] if len(states) == 1 else keras.layers.Concatenate(name="question_states")(states)
    question = keras.layers.Dense(units=config.common_dim, activation="tanh", name="question_projection")(question_code)

    # --- image: norm I -------------------------------------------------------------------------------
    # Cached CNN features are all positive (ReLU), so the vectors of different images point in nearly
    # the same direction and l2 normalisation would leave little to tell images apart: centre them first.
    if config.image_features == "cached":
        image_features = keras.layers.BatchNormalization(
            center=False, scale=False, dtype="float32", name="image_centring"
        )(image_features)
    # float32 up to the projection: under mixed_float16 the l2 norm's epsilon (1e-12) underflows to 0,
    # so a zero vector (a per-replica batch of one, centred) would give 0 · inf = NaN.
    normalised = keras.layers.UnitNormalization(axis=-1, dtype="float32", name="image_l2_norm")(image_features)
    # Unit l2 norm leaves components of size 1/sqrt(D); rescale to unit RMS so that the glorot-initialised
    # projection starts with tanh inputs of order 1 instead of learning a sqrt(D) gain first.
    width = int(image_features.shape[-1])
    normalised = keras.layers.Rescaling(scale=float(width) ** 0.5, dtype="float32", name="image_unit_rms")(normalised)
    picture = keras.layers.Dense(units=config.common_dim, activation="tanh", name="image_projection")(normalised)

    # --- fusion and classifier -----------------------------------------------------------------------
    fused = keras.layers.Multiply(name="fusion")([question, picture])  # [B, common_dim]
    fused = keras.layers.Dropout(rate=config.dropout, name="fusion_dropout")(fused)
    hidden = keras.layers.Dense(units=config.hidden_units, activation="tanh", name="hidden")(fused)
    hidden = keras.layers.Dropout(rate=config.dropout, name="hidden_dropout")(hidden)
    # float32 output layer so that softmax and loss stay exact under mixed precision.
    answers = keras.layers.Dense(units=num_answers, activation="softmax", dtype="float32", name="answers")(hidden)
    inputs = {"image": image, "question_tokens": question_tokens}
    return keras.Model(inputs=inputs, outputs=answers, name="deeper_lstm_q_norm_i")


def make_optimizer(config: Config) -> keras.optimizers.Optimizer:
    rate = learning_rate(config)  # scaled with the replica count when scale_learning_rate is on
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=rate)
    return keras.optimizers.Adam(learning_rate=rate)
