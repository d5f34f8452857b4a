"""Configuration of the language_model task; the defaults are the benchmark run (synthetic corpus, characters)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Optional

from common.config import BaseConfig, ConfigError, check_split_fractions

LEVELS = ("char", "word")
CELLS = ("lstm", "gru")
OPTIMIZERS = ("adam", "sgd")


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    # Data.
    level: str = "char"  # "char": tokens are characters (bits per character); "word": words (perplexity)
    # Keep only this 0-based tab-separated field of each line, e.g. 1 for Flickr8k.token.txt's captions; None = all.
    tab_field: Optional[int] = None
    max_lines: Optional[int] = None  # read at most this many lines (PTB: of its train split); None = all
    validation_fraction: float = 0.1  # of the characters, cut by position at a line boundary (not for PTB files)
    test_fraction: float = 0.1  # the last lines of the text (PTB files: ptb.test.txt)
    max_vocabulary: Optional[int] = 20_000  # ids incl. padding, [UNK] and the line break; rarer tokens → [UNK]
    min_count: int = 1  # tokens seen fewer times in the training split become [UNK]
    synthetic_lines: int = 3_000  # lines the generator writes (about 130 characters each)
    # Model: Embedding → `layers` stacked recurrent layers (dropout between them, Zaremba et al. 2014) → softmax.
    cell: str = "lstm"  # "lstm" or "gru" (reset_after=True); both keep cuDNN-eligible settings
    embedding_dim: int = 48  # floats per token
    units: int = 256  # per recurrent layer
    layers: int = 2  # stacked recurrent layers
    dropout: float = 0.1  # after the embedding, between recurrent layers and before the softmax (not recurrent)
    init_scale: Optional[float] = None  # every weight uniform in [-s, s] (Zaremba: 0.05); None = Keras defaults
    # Training: truncated BPTT on non-overlapping windows of `sequence_length` tokens, each starting from a zero state,
    # or, with carry_state, from the state its row ended the previous batch with (batch_size contiguous streams).
    sequence_length: int = 100  # tokens per window (the gradient's horizon)
    carry_state: bool = False  # char-rnn / Zaremba: the state flows across batches; evaluation reads text likewise
    epochs: int = 12
    batch_size: int = 64  # windows per step
    learning_rate: float = 3e-3  # Adam (SGD in the paper preset: 1.0)
    optimizer: str = "adam"  # "adam" or "sgd" (plain, as Zaremba et al.)
    clip_norm: Optional[float] = 5.0  # global gradient-norm clip; None = no clipping
    learning_rate_decay: float = 1.0  # multiply the learning rate by this each epoch after `decay_after_epochs`
    decay_after_epochs: int = 0  # epochs at the full learning rate before the decay starts
    # An epoch is one pass over the training text, or this many updates when a pass makes fewer (the text repeats, the
    # carried state restarting at each pass): the schedule and early stopping then count the same amount of training
    # on a short text as on a long one. 0 = always one pass.
    min_steps_per_epoch: int = 0
    early_stopping_patience: int = 3
    # Evaluation: every test token is scored once, with at least `sequence_length` // 2 tokens of context (carry_state:
    # 64 streams with a carried state, each after `sequence_length` tokens of warm-up: at least that much context).
    # Baseline: interpolated Kneser-Ney n-grams on the same token ids.
    ngram_order: Optional[int] = None  # None = 7 for characters, 3 for words
    ngram_discount: Optional[float] = None  # None = per order n1/(n1+2·n2) (Ney et al. 1994)
    # Generation (log, TensorBoard text each epoch, predict's defaults).
    sample_tokens: Optional[int] = None  # tokens generated per sample; None = 200 characters or 40 words
    temperature: float = 0.8  # sampling temperature; 0 = greedy
    top_k: int = 0  # sample among the k likeliest tokens only; 0 = all
    logged_examples: int = 3  # samples written to the log (and TensorBoard) per epoch and after evaluation
    structure_samples: int = 40  # synthetic data: generated lines checked for brackets/agreement; 0 = none
    # Benchmark (run.py language_model bench).
    bench_prompts: int = 32  # test prompts continued batched in-graph and one at a time in a Python loop
    bench_train_steps: int = 20  # timed training steps

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        **BaseConfig.CHOICES, "level": LEVELS, "cell": CELLS, "optimizer": OPTIMIZERS,
    }
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # Seconds: a small corpus, a small network, two epochs. For tests.
        "tiny": {"synthetic_lines": 150, "embedding_dim": 16, "units": 32, "sequence_length": 40, "epochs": 2,
                 "batch_size": 32, "tensorboard": False, "logged_examples": 1, "ngram_order": 4,
                 "sample_tokens": 40, "structure_samples": 4, "early_stopping_patience": 0, "bench_prompts": 4,
                 "bench_train_steps": 3},
        # Real prose at character level, any UTF-8 text, trained as char-rnn is: 2 × 384 LSTM, dropout 0.25, the state
        # carried across batches, Adam 2e-3 decayed by 0.85 per epoch after 8, 20 epochs (12 epochs with the decay after
        # 4 still improved on tiny Shakespeare's validation split at the end). An epoch is at least 140 updates (one
        # pass over tiny Shakespeare's training split), so a shorter text gets the same 2,800 updates: 20 passes of a
        # 480k-character text were too few to beat Kneser-Ney. A short text overfits before the 20th epoch (a
        # 480k-character one peaked at 13): training stops 3 epochs after validation's best, which is kept.
        # Baseline: Kneser-Ney 6-gram (the best order on that validation split; 7 is the char default). See the
        # task's README.
        "text": {"level": "char", "embedding_dim": 64, "units": 384, "layers": 2, "dropout": 0.25, "carry_state": True,
                 "sequence_length": 100, "batch_size": 64, "epochs": 20, "learning_rate": 2e-3, "clip_norm": 5.0,
                 "learning_rate_decay": 0.85, "decay_after_epochs": 8, "min_steps_per_epoch": 140,
                 "early_stopping_patience": 3, "ngram_order": 6},
        # Zaremba et al. 2014 "small" (no dropout): word level, 2 × 200 LSTM, SGD lr 1 halved per epoch after 4,
        # 13 epochs, 20 steps, batch 20; published PTB test perplexity 114.5. Runs on a CPU (tens of minutes for PTB).
        "small": {"level": "word", "embedding_dim": 200, "units": 200, "layers": 2, "dropout": 0.0,
                  "init_scale": 0.1, "sequence_length": 20, "epochs": 13, "batch_size": 20, "learning_rate": 1.0,
                  "optimizer": "sgd", "clip_norm": 5.0, "learning_rate_decay": 0.5, "decay_after_epochs": 4,
                  "early_stopping_patience": 0, "max_vocabulary": None, "ngram_order": 5},
        # Zaremba, Sutskever & Vinyals 2014, "medium": word level on PTB, 2 × 650 LSTM, dropout 0.5, SGD lr 1 decayed
        # by 1/1.2 per epoch after 6, 39 epochs, clip 5, 35 steps, batch 20. Published PTB test perplexity 82.7
        # (with the state carried across batches). Needs a GPU (hours on a CPU).
        "paper": {"level": "word", "embedding_dim": 650, "units": 650, "layers": 2, "dropout": 0.5,
                  "init_scale": 0.05, "sequence_length": 35, "epochs": 39, "batch_size": 20, "learning_rate": 1.0,
                  "optimizer": "sgd", "clip_norm": 5.0, "learning_rate_decay": 1 / 1.2, "decay_after_epochs": 6,
                  "early_stopping_patience": 0, "max_vocabulary": None, "ngram_order": 5},
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        check_split_fractions(self.validation_fraction, self.test_fraction)
        for key in ("embedding_dim", "units", "layers", "sequence_length", "synthetic_lines", "min_count",
                    "bench_prompts", "bench_train_steps"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be at least 1")
        if self.sequence_length < 2:
            raise ConfigError(f"sequence_length={self.sequence_length} must be at least 2")
        for key in ("tab_field", "decay_after_epochs", "min_steps_per_epoch", "top_k", "logged_examples",
                    "structure_samples"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ConfigError(f"{key}={value} must be 0 or more")
        for key in ("max_lines", "ngram_order", "sample_tokens"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"{key}={value} must be None or at least 1")
        if self.max_vocabulary is not None and self.max_vocabulary < 4:
            raise ConfigError(f"max_vocabulary={self.max_vocabulary} must be None or at least 4 (3 reserved ids)")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")
        if self.init_scale is not None and not self.init_scale > 0:
            raise ConfigError(f"init_scale={self.init_scale} must be None or positive")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ConfigError(f"clip_norm={self.clip_norm} must be None or positive")
        if not 0 < self.learning_rate_decay <= 1:
            raise ConfigError(f"learning_rate_decay={self.learning_rate_decay} must be in (0, 1]")
        if self.ngram_discount is not None and not 0 < self.ngram_discount < 1:
            raise ConfigError(f"ngram_discount={self.ngram_discount} must be None or in (0, 1)")
        if self.temperature < 0:
            raise ConfigError(f"temperature={self.temperature} must be 0 (greedy) or positive")

    # Level-dependent defaults (one place, so the task, the preprocessor and predict agree).
    @property
    def effective_ngram_order(self) -> int:
        return self.ngram_order or (7 if self.level == "char" else 3)

    @property
    def effective_sample_tokens(self) -> int:
        return self.sample_tokens or (200 if self.level == "char" else 40)
