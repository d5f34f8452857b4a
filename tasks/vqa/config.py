"""Configuration of the VQA task; the defaults are the benchmark run on the synthetic shape scenes."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Optional

from common.config import BaseConfig, ConfigError, check_split_fractions


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    # --- data -------------------------------------------------------------------------------------
    max_answers: int = 1000  # K: the answer vocabulary = the K most frequent (normalised) training answers
    max_question_length: int = 14  # tokens kept per question (right-padded); VQA questions rarely exceed 14
    validation_fraction: float = 0.1  # of the training split's IMAGES held out for early stopping
    test_fraction: float = 0.2  # of the images, used as test only when the data has a single split
    image_dir: Optional[str] = None  # folder of the COCO images of --data-dir; None = <data-dir>/<split>
    # (or <data-dir>/images/<split>)
    soft_targets: bool = True  # train on the 10 answers' official scores (normalised) instead of the top answer
    # --- synthetic default (when --data-dir is not given): VQA v2 JSON + JPEGs under WORKDIR/data ---
    train_images: int = 3000  # scenes in the "train2014" split (train + validation)
    test_images: int = 500  # scenes in the "val2014" split (the test split, as in VQA practice)
    questions_per_image: int = 5  # questions asked about each scene
    max_objects: int = 4  # shapes per scene, 1..max_objects
    answer_error_rate: float = 0.1  # chance that one of the 10 simulated annotators answers wrongly
    # --- image side ---------------------------------------------------------------------------------
    image_size: int = 48  # pixels per side fed to the CNN (synthetic scenes are drawn at this size)
    image_features: str = "cached"  # "cached": frozen CNN features cached on disk (the paper);
    # "end_to_end": the CNN trains with the model
    encoder: str = "strided_cnn"  # strided_cnn (tasks/vqa/model.py) or a common.encoders encoder:
    # small_cnn | resnet50 | inception_v3 | mobilenet_v3_small
    encoder_pretrain_epochs: int = 15  # cached mode on synthetic data: epochs pretraining the encoder on the
    # scenes' object attributes (the stand-in for ImageNet pretraining) before its features are cached; 0 = off
    # path to the encoder's weights (ImageNet *_notop.h5), or "imagenet" (keras.applications fetches them: needs
    # --download); None = random init
    encoder_weights: Optional[str] = None
    encoder_feature_dim: int = 256  # output width of strided_cnn / small_cnn (the keras.applications widths are fixed)
    feature_cache_dir: Optional[str] = None  # where cached features go; None = WORKDIR/features
    # --- model: deeper LSTM Q + norm I (Antol et al. 2015) --------------------------------------------
    embedding_dim: int = 64  # word vectors (VQA_LSTM_CNN: 200)
    lstm_units: int = 128  # per LSTM layer (paper: 512); question code = [h, c] of every layer
    lstm_layers: int = 2  # stacked LSTMs ("deeper LSTM Q")
    common_dim: int = 256  # image and question are projected (tanh) to this width and multiplied (paper: 1024)
    hidden_units: int = 256  # tanh layer after the fusion (paper: 1000)
    dropout: float = 0.3  # on the embedding, the fused vector and the hidden layer (paper: 0.5)
    # --- training -------------------------------------------------------------------------------------
    optimizer: str = "adam"  # "adam" | "rmsprop" (VQA_LSTM_CNN used RMSprop)
    epochs: int = 20  # at most; early stopping on the validation loss
    batch_size: int = 64
    learning_rate: float = 1e-3
    early_stopping_patience: int = 5
    logged_examples: int = 6  # test questions whose (question, human answers, prediction) evaluation logs
    # --- bench (`python run.py vqa bench`: the input pipeline alone, tasks/vqa/bench.py) ---------------
    bench_full_size: bool = True  # a VQA v2 train-sized stand-in (443,757 questions, 82,783 images); False: 1/100
    bench_feature_dim: int = 2048  # width of the stand-in feature table (ResNet-50 pooled features: 2,048)
    bench_batches: int = 500  # batches timed after the first (which waits for the full shuffle buffer)

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        **BaseConfig.CHOICES,
        "image_features": ("end_to_end", "cached"),
        "encoder": ("strided_cnn", "small_cnn", "resnet50", "inception_v3", "mobilenet_v3_small"),
        "optimizer": ("adam", "rmsprop"),
    }
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # Seconds end to end: 60 scenes, a narrow model, 2 epochs. For tests; the number means nothing.
        "tiny": {
            "train_images": 60, "test_images": 20, "questions_per_image": 3, "image_size": 32,
            "encoder_feature_dim": 32, "embedding_dim": 16, "lstm_units": 16, "common_dim": 32,
            "hidden_units": 32, "epochs": 2, "batch_size": 32, "encoder_pretrain_epochs": 1, "tensorboard": False,
            "bench_full_size": False, "bench_feature_dim": 32, "bench_batches": 20,
        },
        # VQA_LSTM_CNN (Antol et al. 2015 / the authors' Torch code) on real VQA v2 with cached CNN features:
        # 2x512 LSTM, 200-d words, 1024 common space, 1000 hidden, top-1000 answers, RMSprop 3e-4, batch 500.
        "paper": {
            "image_features": "cached", "encoder": "resnet50", "encoder_weights": "imagenet", "image_size": 224,
            "embedding_dim": 200,
            "lstm_units": 512, "lstm_layers": 2, "common_dim": 1024, "hidden_units": 1000, "dropout": 0.5,
            "max_answers": 1000, "max_question_length": 26, "optimizer": "rmsprop", "learning_rate": 3e-4,
            "batch_size": 500, "epochs": 50, "early_stopping_patience": 5, "validation_fraction": 0.05,
        },
    }  # fmt: skip

    def __post_init__(self) -> None:
        super().__post_init__()
        check_split_fractions(self.validation_fraction, self.test_fraction)
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")
        if not 0 <= self.answer_error_rate < 0.5:
            raise ConfigError(
                f"answer_error_rate={self.answer_error_rate} must be in [0, 0.5): most annotators are right"
            )
        for key in ("max_answers", "max_question_length", "train_images", "test_images", "questions_per_image",
                    "max_objects", "embedding_dim", "lstm_units", "lstm_layers", "common_dim", "hidden_units",
                    "encoder_feature_dim", "bench_feature_dim", "bench_batches"):  # fmt: skip
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be at least 1")
        if self.max_answers < 2:
            raise ConfigError(f"max_answers={self.max_answers} must be at least 2")
        if self.max_objects > 6:
            raise ConfigError(f"max_objects={self.max_objects}: at most 6 shapes fit in a scene")
        if self.encoder_pretrain_epochs < 0:
            raise ConfigError(f"encoder_pretrain_epochs={self.encoder_pretrain_epochs} must be 0 (off) or more")
        if self.logged_examples < 0:
            raise ConfigError(f"logged_examples={self.logged_examples} must be 0 (none) or more")
        if self.image_size < 16:
            raise ConfigError(f"image_size={self.image_size} must be at least 16 pixels")
