"""The lecture's 2-layer LSTM, with the signal's normalisation built into the model.

Input (B, 25, 100) in signal units → standardise with train statistics → LSTM(100, sequences) →
LSTM(100) → Dense(100, relu) → Dense(100) → de-standardise → (B, 100) in signal units.
With ``linear_skip`` a linear path from the standardised window is added to the output (a
learned AR predictor), so the LSTM models the residual. ``lstm_layers``, ``dense_units`` (0 = none) and the
head's dropout / L2 size the recurrent part; the defaults are the lecture's.
Because the scaling is inside the model, the loss and every metric are in the signal's own units
(g² for MSE), and the exported model takes raw windows.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from common.optimization import compile_model, learning_rate
from tasks.acceleration.config import HORIZON, STEP_SAMPLES, WINDOW_SAMPLES, WINDOW_STEPS, Config


def build_model(config: Config, mean: float, std: float) -> keras.Model:
    inputs = keras.Input(shape=(WINDOW_STEPS, STEP_SAMPLES), name="window")
    # (x - mean) / std written as x * (1/std) + (-mean/std).
    standardised = keras.layers.Rescaling(scale=1.0 / std, offset=-mean / std, name="standardise")(inputs)
    x = standardised
    # Default activations, no recurrent dropout, unroll=False: eligible for the cuDNN kernel on GPU.
    for index in range(1, config.lstm_layers + 1):
        x = keras.layers.LSTM(units=config.lstm_units, return_sequences=index < config.lstm_layers,
                              name=f"lstm_{index}")(x)
    if config.dense_units:
        x = keras.layers.Dense(units=config.dense_units, activation="relu", name="dense_relu")(x)
    if config.head_dropout:
        x = keras.layers.Dropout(config.head_dropout, name="head_dropout")(x)
    # The head's penalty x std^2: the loss is in signal units, the head's output standardised.
    penalty = keras.regularizers.L2(config.head_l2 * std**2) if config.head_l2 else None
    x = keras.layers.Dense(units=HORIZON, dtype="float32", name="next_samples_standardised",
                           kernel_regularizer=penalty)(x)
    if config.linear_skip:
        flat = keras.layers.Flatten(name="window_flat")(standardised)
        linear_layer = keras.layers.Dense(
            units=HORIZON, dtype="float32", name="linear_ar",
            kernel_regularizer=keras.regularizers.L2(config.linear_skip_l2),
        )
        linear_layer.trainable = config.linear_skip_trainable
        linear = linear_layer(flat)
        x = keras.layers.Add(dtype="float32", name="lstm_plus_linear")([x, linear])
    outputs = keras.layers.Rescaling(scale=std, offset=mean, dtype="float32", name="next_samples")(x)
    model = keras.Model(inputs, outputs, name="acceleration_lstm")
    optimizer = None  # compile_model's Adam(learning_rate(config))
    if config.scale_adam_epsilon:
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate(config), epsilon=1e-7 * std**2)
    return compile_model(
        model, config, loss="mse", metrics=[keras.metrics.RootMeanSquaredError(name="rmse")], optimizer=optimizer
    )


# --- Baselines: computed on the same windows as the LSTM --------------------------------------

def persistence(windows: np.ndarray) -> np.ndarray:
    """Repeats the last 100 samples of each window [M, 2500] → [M, 100]."""
    return windows[:, -HORIZON:].copy()


def constant_mean(windows: np.ndarray, mean: float) -> np.ndarray:
    """Predicts the training mean everywhere: the 'knows nothing' reference (nmse ≈ 1)."""
    return np.full((len(windows), HORIZON), mean, dtype=np.float64)


class RidgeAutoregression:
    """Linear AR predictor: next 100 samples = W · (last ``order`` samples) + b, ridge-regularised.

    Fitted by closed-form least squares on standardised training windows; the ridge strength is
    chosen from a log grid on the validation windows (per output sample), so the test split is
    never seen.
    """

    ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4)

    def __init__(self, order: int, mean: float, std: float):
        self.order, self.mean, self.std = order, mean, std
        self.alpha: float | None = None

    def _features(self, windows: np.ndarray) -> np.ndarray:
        x = (windows[:, -self.order :].astype(np.float64) - self.mean) / self.std
        return np.concatenate([x, np.ones((len(x), 1))], axis=1)

    def fit(self, train: tuple[np.ndarray, np.ndarray], validation: tuple[np.ndarray, np.ndarray]):
        x = self._features(train[0])
        y = (train[1].astype(np.float64) - self.mean) / self.std
        return self._solve(x.T @ x, x.T @ y, validation)

    def fit_streamed(self, batches, validation: tuple[np.ndarray, np.ndarray]):
        """The same ridge from an iterable of (inputs, targets) batches: the Gram matrix is summed
        batch by batch, so any number of training windows fits in memory (dense strides, many files)."""
        gram = moment = None
        for inputs, targets in batches:
            x = self._features(inputs)
            y = (targets.astype(np.float64) - self.mean) / self.std
            gram = x.T @ x if gram is None else gram + x.T @ x
            moment = x.T @ y if moment is None else moment + x.T @ y
        if gram is None:
            raise ValueError("no training windows to fit the ridge on")
        return self._solve(gram, moment, validation)

    def _solve(self, gram: np.ndarray, moment: np.ndarray, validation: tuple[np.ndarray, np.ndarray]):
        validation_x = self._features(validation[0])
        # Each of the 100 outputs is its own ridge problem: near samples want little shrinkage, far
        # ones (close to unpredictable) want a lot, so the strength is chosen per output column.
        best_error = np.full(moment.shape[1], np.inf)
        self.weights = np.zeros((gram.shape[0], moment.shape[1]))
        self.alphas = np.zeros(moment.shape[1])
        for alpha in self.ALPHAS:
            penalty = alpha * np.eye(len(gram))
            penalty[-1, -1] = 0.0  # do not shrink the bias
            weights = np.linalg.solve(gram + penalty, moment)
            error = np.mean((validation_x @ weights * self.std + self.mean - validation[1]) ** 2, axis=0)
            better = error < best_error
            best_error[better] = error[better]
            self.weights[:, better] = weights[:, better]
            self.alphas[better] = alpha
        self.alpha = float(np.median(self.alphas))
        return self

    @classmethod
    def from_weights(cls, order: int, mean: float, std: float, weights: np.ndarray, alphas: np.ndarray):
        """A fitted ridge from saved arrays (the preprocessor's state)."""
        ridge = cls(order, mean, std)
        ridge.weights, ridge.alphas = np.asarray(weights, np.float64), np.asarray(alphas, np.float64)
        ridge.alpha = float(np.median(ridge.alphas))
        return ridge

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return self._features(windows) @ self.weights * self.std + self.mean


def warm_start_linear_path(model: keras.Model, ridge: RidgeAutoregression) -> None:
    """Starts the ``linear_skip`` model at a fitted ridge AR on the whole 2,500-sample window.

    The linear path gets the closed-form ridge weights (fitted on training windows, strength
    chosen on validation) and the LSTM head starts at zero, so training starts from the linear
    predictor and the LSTM learns only the residual; early stopping on validation then keeps the
    LSTM's contribution only where it helps.
    """
    if ridge.order != WINDOW_SAMPLES:
        raise ValueError(
            f"the linear path reads the whole window: expected a ridge of order {WINDOW_SAMPLES}, got {ridge.order}"
        )
    model.get_layer("linear_ar").set_weights(
        [ridge.weights[:-1].astype(np.float32), ridge.weights[-1].astype(np.float32)]
    )
    head = model.get_layer("next_samples_standardised")
    head.set_weights([np.zeros_like(weight) for weight in head.get_weights()])


# --- Recursive multi-window generation ---------------------------------------------------------

def rolling_forecast(predict_fn, windows, steps):
    """Generates ``steps`` future windows, feeding each prediction back in as the newest 100 samples.

    predict_fn: [B, 2500] float32 → [B, 100]. windows: [B, 2500]. Returns [B, steps, 100].
    Step k's input is the previous input shifted left by 100 samples with step k-1's output
    appended, so after 25 steps the model sees only its own predictions. Written with keras.ops
    (a while loop over a fixed-shape buffer), so it runs eagerly, inside the exported SavedModel
    (``steps`` a tensor there) and under the JAX backend alike.
    """
    windows = ops.convert_to_tensor(windows, dtype="float32")
    buffer = ops.zeros((ops.shape(windows)[0], steps, HORIZON), dtype="float32")

    def body(index, state):
        window, buffer = state
        prediction = ops.cast(ops.reshape(predict_fn(window), (-1, HORIZON)), "float32")
        window = ops.concatenate([window[:, HORIZON:], prediction], axis=1)
        return window, ops.slice_update(buffer, (0, index, 0), prediction[:, None, :])

    _, buffer = ops.fori_loop(0, steps, body, (windows, buffer))
    return buffer
