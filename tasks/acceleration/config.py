"""Configuration of the acceleration-signal task; the defaults are the benchmark run."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Optional

from common.config import BaseConfig, ConfigError, check_split_fractions

# The problem's shape is fixed by the lecture's model, so it is not a config field:
# the input is 25 steps of 100 consecutive samples (2,500 samples) and the target the next 100.
WINDOW_STEPS = 25
STEP_SAMPLES = 100
WINDOW_SAMPLES = WINDOW_STEPS * STEP_SAMPLES
HORIZON = STEP_SAMPLES


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    # Windowing and split (by time, no sample shared between splits).
    stride: int = 50  # samples between consecutive TRAINING windows (overlap is fine inside train)
    validation_fraction: float = 0.15  # of the signal's samples, taken after the training part
    test_fraction: float = 0.15  # of the signal's samples, the last part; its windows never overlap
    # Blocked time splits (for averaging over test periods): 0 = the fractions above (test last); B >= 3 cuts
    # each recording into B equal time blocks: block test_block is the test split, the block before it (after
    # it for block 0) validation, the rest training; windows never cross a gap left by a removed block.
    blocks: int = 0
    test_block: int = -1  # which of the `blocks` blocks is the test split (0-based); -1 = the last
    # Model sizes (the lecture: LSTM(100) -> LSTM(100) -> Dense(100, relu) -> Dense(100)).
    lstm_units: int = 100
    dense_units: int = 100
    # Stronger variant (on by default; off = exactly the lecture's model, the `paper` preset): a linear
    # autoregressive path from the whole
    # standardised input window to the output, so the LSTM only has to learn what a linear
    # predictor cannot (on vibration data the ridge AR baseline is hard to beat otherwise).
    linear_skip: bool = True
    linear_skip_trainable: bool = True  # False freezes the warm-started linear path: the LSTM then only adds a residual
    # L2 penalty on the skip's 2,500x100 weights (1e-5 had the lower validation loss on the CWRU inner-race file)
    linear_skip_l2: float = 1e-5
    # Training.
    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 1e-3  # the lecture's 1e-4 is the `paper` preset; 1e-3 converges in minutes on CPU
    early_stopping_patience: int = 10
    reduce_lr_patience: int = 4  # halve the step size on validation plateaus: the last digits of MSE need it
    # Baselines and evaluation.
    ridge_order: int = 500  # samples of history the linear AR (ridge) baseline sees
    # 0 = the linear path starts at the ridge_ar_window baseline (fitted on windows `stride` apart, at most
    # 20,000). N > 0: it starts at the same 2,500-sample ridge fitted on ALL training windows N samples apart
    # (baseline ridge_ar_window_dense; ~10x more windows than weights, where the baseline has fewer).
    ridge_fit_stride: int = 0
    recursive_windows: int = 10  # windows generated recursively (each fed back in) for the rolling test
    # Data source: the file format chooses the reader; these pick the signal inside the file.
    signal_key: Optional[str] = None  # .npz array / .mat variable, e.g. "DE" for CWRU files
    column: Optional[str] = None  # .csv / DataFrame column
    # Synthetic default (used when --data-dir is not given).
    synthetic_seconds: float = 20.0  # 240,000 samples at 12 kHz
    synthetic_sample_rate: int = 12_000  # Hz

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # Seconds: a tenth of the data, narrow layers, two epochs. For tests.
        "tiny": {"synthetic_seconds": 2.0, "lstm_units": 16, "dense_units": 16, "epochs": 2, "stride": 100,
                 "recursive_windows": 3, "ridge_order": 200, "tensorboard": False},
        # Exactly the lecture: LSTM(100) -> LSTM(100) -> Dense(100, relu) -> Dense(100), Adam 1e-4.
        "paper": {"linear_skip": False, "learning_rate": 1e-4, "epochs": 200, "early_stopping_patience": 20},
        # The LSTM learns the residual of a FROZEN linear path set to the 2,500-sample ridge refitted on every
        # 5th training window (~17,000 on a CWRU file, vs ~1,650 for the baseline ridge_ar_window: the
        # baseline has fewer windows than weights). Stride 5 had lower validation MSE than 10 on all four CWRU
        # recordings; frozen, so that training cannot undo the linear fit and the LSTM only adds to it.
        "residual": {"ridge_fit_stride": 5, "linear_skip_trainable": False},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        check_split_fractions(self.validation_fraction, self.test_fraction)
        if self.stride < 1:
            raise ConfigError(f"stride={self.stride} must be at least 1")
        if self.ridge_fit_stride < 0:
            raise ConfigError(f"ridge_fit_stride={self.ridge_fit_stride} must be 0 (the baseline fit) or at least 1")
        if self.blocks != 0 and self.blocks < 3:
            raise ConfigError(f"blocks={self.blocks}: expected 0 (split by the fractions) or at least 3 time blocks "
                              "(test, validation and at least one training block)")
        if self.test_block != -1 and not 0 <= self.test_block < max(self.blocks, 1):
            raise ConfigError(f"test_block={self.test_block}: expected -1 (the last block) or a block index in "
                              f"[0, {self.blocks - 1}]" if self.blocks else
                              f"test_block={self.test_block} needs blocks >= 3 (e.g. --set blocks=5); with the "
                              "default blocks=0 the test split is the last test_fraction of each recording")
        if not 1 <= self.ridge_order <= WINDOW_SAMPLES:
            raise ConfigError(f"ridge_order={self.ridge_order} must be in [1, {WINDOW_SAMPLES}]")
