"""Captioning config: defaults = the synthetic benchmark run (`python run.py captioning`)."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from common.config import BaseConfig, ConfigError


@dataclasses.dataclass(frozen=True)
class Config(BaseConfig):
    # --- data ---
    dataset: str = "auto"  # real --data-dir format: auto-detected from its files, or coco / flickr8k / karpathy
    train_images: int = 2000  # synthetic default: training images (5 captions each)
    validation_images: int = 200  # synthetic default: validation images (early stopping, checkpoint)
    test_images: int = 300  # synthetic default: test images (all metrics)
    max_objects: int = 3  # synthetic default: shapes per scene, 1..max_objects
    max_test_images: int | None = None  # evaluate on at most this many test images (None = all): caps slow test sets
    # --- image encoder ---
    image_size: int = 64  # pixels per side fed to the CNN (Inception in Show and Tell: 299)
    encoder: str = "small_cnn"  # common.encoders.ENCODERS; small_cnn is trained from scratch here
    # local weights file (.h5) for keras.applications, or "imagenet" (Keras fetches them: needs --download);
    # None = random (warned)
    encoder_weights: str | None = None
    encoder_feature_dim: int = 256  # output width of small_cnn (the others have fixed widths)
    encoder_pretrain_epochs: int = 6  # small_cnn only: epochs of word-presence pretraining; 0 = keep random weights
    feature_batch_size: int = 64  # images per CNN call while filling the feature cache
    # --- decoder ---
    embedding_dim: int = 256  # image and word embedding width (paper: 512)
    lstm_units: int = 256  # LSTM state size (paper: 512)
    dropout: float = 0.3  # on embeddings and LSTM outputs (the paper found dropout essential)
    min_count: int = 1  # words rarer than this in the training captions become <unk> (COCO: 5)
    max_caption_length: int = 16  # words kept per caption (longer ones are cut); + <end> = decode length
    # --- generation and evaluation ---
    beam_width: int = 3  # beam search width; 1 = greedy (Show and Tell: 3)
    length_penalty: float = 0.0  # score = log p / length**penalty; 0 = plain log-probability
    metrics: str = "official"  # official = pycocoevalcap with Java; approximate = nltk BLEU, no METEOR (not comparable)
    meteor: bool = True  # official protocol only: METEOR 1.5 (its Java start costs 10-30 s; tiny skips it)
    grid_images: int = 12  # images in the PNG grid of generated vs reference captions
    # (image, reference, prediction) triples written to the log by evaluate, and (with tensorboard on) validation
    # images whose captions TensorBoard shows after every epoch (WORKDIR/logs/tensorboard/examples)
    logged_examples: int = 5
    # --- training (BaseConfig fields with this task's benchmark values) ---
    epochs: int = 12  # decoder epochs (validation loss flattens after about 10 on the synthetic default)
    batch_size: int = 64  # captions per step
    learning_rate: float = 2e-3  # Adam
    # --- bench (`python run.py captioning bench`, tasks/captioning/bench.py) ---
    bench_training: bool = True  # time a training step on cached features vs recomputing the CNN (fits a preprocessor)
    bench_full_size: bool = True  # input pipeline on a COCO train-sized stand-in (118,287 x 5 captions); False: 1/100
    bench_feature_dim: int = 2048  # width of the stand-in feature table (Inception-v3 / ResNet-50 pooled: 2,048)
    bench_batches: int = 500  # input-pipeline batches timed after the first (which waits for the full shuffle buffer)

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        **BaseConfig.CHOICES,
        "dataset": ("auto", "coco", "flickr8k", "karpathy"),
        "encoder": ("small_cnn", "inception_v3", "resnet50", "mobilenet_v3_small"),
        "metrics": ("official", "approximate"),
    }
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        # End to end in seconds: for tests and a first look.
        "tiny": {
            "train_images": 48, "validation_images": 12, "test_images": 12, "image_size": 32,
            "encoder_feature_dim": 32, "encoder_pretrain_epochs": 1, "embedding_dim": 32, "lstm_units": 32,
            "max_caption_length": 12, "beam_width": 2, "epochs": 3, "batch_size": 32, "learning_rate": 1e-2,
            "grid_images": 4,
            "logged_examples": 2, "tensorboard": False, "meteor": False,
            "bench_full_size": False, "bench_feature_dim": 32, "bench_batches": 20,
        },
        # Show and Tell on real data (COCO Karpathy split or Flickr8k): InceptionV3 at 299 px with
        # ImageNet weights (fetched by Keras on --download, or --set encoder_weights=PATH to a local notop .h5),
        # 512-wide embedding and LSTM, beam 3.
        "paper": {
            "image_size": 299, "encoder": "inception_v3", "encoder_weights": "imagenet", "embedding_dim": 512,
            "lstm_units": 512,
            "dropout": 0.5, "min_count": 5, "max_caption_length": 20, "beam_width": 3,
            "epochs": 20, "batch_size": 128, "learning_rate": 1e-3, "encoder_pretrain_epochs": 0,
            "max_test_images": 5000,
        },
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("train_images", "validation_images", "test_images", "image_size", "embedding_dim", "lstm_units",
                    "max_caption_length", "beam_width", "max_objects", "min_count", "feature_batch_size",
                    "encoder_feature_dim", "bench_feature_dim", "bench_batches"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")
        if self.max_objects > 6:
            raise ConfigError(f"max_objects={self.max_objects}: at most 6 shapes fit in a synthetic scene")
        for key in ("encoder_pretrain_epochs", "grid_images", "logged_examples"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}={getattr(self, key)} must not be negative")
        if self.max_test_images is not None and self.max_test_images < 1:
            raise ConfigError(f"max_test_images={self.max_test_images} must be at least 1 (or None for all)")
