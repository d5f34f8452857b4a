"""PyTorch peers of gpu-bench's paper-sized models: ``run.py gpu-bench --peer torch`` (issue 22).

Each peer is the task's Keras model written the way a PyTorch user would write it: the same layer sizes, batch
and optimizer (with Keras' hyperparameters: Adam/RMSprop epsilon 1e-7, RMSprop rho 0.9), ``nn.LSTM`` (cuDNN
when on a CUDA device: torch.backends.cudnn stays enabled), stacked layers in one ``nn.LSTM``, and
``pack_padded_sequence`` wherever the Keras model masks padding (``Embedding(mask_zero=True)``). It trains on
the very arrays the Keras model trains on in the same run, batch by batch from host memory (as Keras' NumPy
adapter feeds them), and is timed the same way: two warm-up epochs dropped, then the median epoch, each epoch
ending with the loss read back (so queued GPU work is counted).

Two deliberate departures from a plain PyTorch port, so that both sides compute the same function with the
same trainable weights: ``nn.LSTM`` has two bias vectors where Keras has one, so the recurrent one (``bias_hh``)
is zeroed and frozen; and where Keras ends in a softmax/sigmoid the peer ends in logits and uses the fused
log-softmax/logit losses (the same loss, the numerically usual way). tests/test_gpu_bench.py checks that every
pair has the same trainable parameter count and output shape.

PyTorch is optional: ``available()`` says whether it imports, and gpu-bench skips the peers with a message
where it does not. This module imports torch only inside its functions.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np

# Keras' optimizer defaults, so that "the same optimizer" means the same update rule on both sides.
KERAS_EPSILON = 1e-7
KERAS_RMSPROP_RHO = 0.9


def available() -> str | None:
    """None when PyTorch imports, else why not (the message gpu-bench prints)."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        return f"PyTorch is not installed ({error}); the peers need  python -m pip install torch"
    return None


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def facts() -> dict[str, Any]:
    """What the peers ran on: versions, device, cuDNN."""
    import torch

    found = {"torch": torch.__version__, "device": device(), "threads": torch.get_num_threads()}
    if found["device"] == "cuda":
        found["gpu"] = torch.cuda.get_device_name(0)
        found["cudnn_enabled"] = bool(torch.backends.cudnn.enabled)
        found["cudnn"] = torch.backends.cudnn.version()
    return found


def _lstm(torch, input_size: int, units: int, layers: int = 1, bidirectional: bool = False, dropout: float = 0.0):
    """nn.LSTM (batch first) with Keras' single bias: bias_hh zeroed and frozen (see the module docstring)."""
    lstm = torch.nn.LSTM(input_size, units, num_layers=layers, bidirectional=bidirectional, batch_first=True,
                         dropout=dropout)
    for name, parameter in lstm.named_parameters():
        if name.startswith("bias_hh"):
            parameter.data.zero_()
            parameter.requires_grad_(False)
    return lstm


def _lengths(torch, ids):
    """Unpadded lengths [B] (int64, on the CPU as pack_padded_sequence wants) of right-padded ids (0 = padding).
    The training loop passes them in, counted on the host: counting on the GPU would make the host wait for every
    step to finish before queueing the next (a PyTorch data loader counts them on the host too)."""
    return (ids != 0).sum(dim=1).cpu()


def _packed(torch, vectors, lengths):
    return torch.nn.utils.rnn.pack_padded_sequence(vectors, lengths, batch_first=True, enforce_sorted=False)


def _unpacked(torch, packed, total_length: int):
    return torch.nn.utils.rnn.pad_packed_sequence(packed, batch_first=True, total_length=total_length)[0]


def build(name: str, config, sizes: dict[str, int]):
    """(module, loss(outputs, targets), optimizer factory) of task ``name``'s peer at ``config``'s sizes;
    ``sizes`` holds what gpu-bench's workload took from its stand-in data (vocabulary, feature width)."""
    import torch
    from torch import nn
    from torch.nn import functional

    def adam(module):
        return torch.optim.Adam(_trainable(module), lr=config.learning_rate, eps=KERAS_EPSILON)

    if name == "acceleration":
        class Acceleration(nn.Module):
            """(B, 25, 100) → LSTM(100) ×2 → Dense(100, relu) → Dense(100); the paper preset has no linear skip."""

            def __init__(self):
                super().__init__()
                if config.linear_skip:
                    raise ValueError("the acceleration peer is the lecture's model: expected linear_skip=False "
                                     "(the paper preset)")
                self.lstm = _lstm(torch, sizes["step_samples"], config.lstm_units, config.lstm_layers)
                self.hidden = nn.Linear(config.lstm_units, config.dense_units)
                self.output = nn.Linear(config.dense_units, sizes["horizon"])

            def forward(self, window, lengths=None):
                sequence, _ = self.lstm(window)
                return self.output(functional.relu(self.hidden(sequence[:, -1])))

        return Acceleration(), functional.mse_loss, adam

    if name == "sentiment":
        class Sentiment(nn.Module):
            """Embedding (masked) → BiLSTM(64) ×2 → last state of each direction → Dense(1) logit."""

            def __init__(self):
                super().__init__()
                if config.architecture != "stacked" or config.spatial_dropout or config.dropout:
                    raise ValueError("the sentiment peer is keras-io's stacked BiLSTM without dropout (the paper "
                                     f"preset); got architecture={config.architecture!r}")
                self.embedding = nn.Embedding(sizes["vocabulary"], config.embedding_dim, padding_idx=0)
                self.lstm = _lstm(torch, config.embedding_dim, config.lstm_units, 2, bidirectional=True)
                self.output = nn.Linear(2 * config.lstm_units, 1)

            def forward(self, token_ids, lengths=None):
                lengths = _lengths(torch, token_ids) if lengths is None else lengths[0]
                _, (hidden, _) = self.lstm(_packed(torch, self.embedding(token_ids), lengths))
                return self.output(torch.cat([hidden[-2], hidden[-1]], dim=-1))  # the last layer's two directions

        return Sentiment(), functional.binary_cross_entropy_with_logits, adam

    if name == "translation":
        class Translation(nn.Module):
            """Sutskever et al.: encoder LSTM's final state starts the decoder LSTM; teacher forcing; logits."""

            def __init__(self):
                super().__init__()
                if config.attention != "none" or config.bidirectional_encoder:
                    raise ValueError("the translation peer is the paper preset's model: expected attention='none' "
                                     "and bidirectional_encoder=False")
                self.source_embedding = nn.Embedding(sizes["vocabulary"], config.embedding_dim, padding_idx=0)
                self.target_embedding = nn.Embedding(sizes["vocabulary"], config.embedding_dim, padding_idx=0)
                self.encoder = _lstm(torch, config.embedding_dim, config.lstm_units)
                self.decoder = _lstm(torch, config.embedding_dim, config.lstm_units)
                self.dropout = nn.Dropout(config.dropout)
                self.logits = nn.Linear(config.lstm_units, sizes["vocabulary"])

            def forward(self, source, decoder_input, lengths=None):
                lengths = lengths or (_lengths(torch, source), _lengths(torch, decoder_input))
                vectors = self.dropout(self.source_embedding(source))
                _, state = self.encoder(_packed(torch, vectors, lengths[0]))
                vectors = self.dropout(self.target_embedding(decoder_input))
                packed, _ = self.decoder(_packed(torch, vectors, lengths[1]), state)
                return self.logits(self.dropout(_unpacked(torch, packed, decoder_input.shape[1])))

        return Translation(), _token_cross_entropy(functional), adam

    if name == "captioning":
        class Captioning(nn.Module):
            """Show and Tell: the image embedding is step -1 of the one LSTM, whose state then reads the words."""

            def __init__(self):
                super().__init__()
                self.image_embedding = nn.Linear(sizes["feature_dim"], config.embedding_dim)
                self.word_embedding = nn.Embedding(sizes["vocabulary"], config.embedding_dim, padding_idx=0)
                self.lstm = _lstm(torch, config.embedding_dim, config.lstm_units)
                self.dropout = nn.Dropout(config.dropout)
                self.logits = nn.Linear(config.lstm_units, sizes["vocabulary"])

            def forward(self, image_features, caption_tokens, lengths=None):
                lengths = _lengths(torch, caption_tokens) if lengths is None else lengths[1]
                image_step = self.dropout(self.image_embedding(image_features)).unsqueeze(1)
                _, state = self.lstm(image_step)
                words = self.dropout(self.word_embedding(caption_tokens))
                packed, _ = self.lstm(_packed(torch, words, lengths), state)
                return self.logits(self.dropout(_unpacked(torch, packed, caption_tokens.shape[1])))

        return Captioning(), _token_cross_entropy(functional), adam

    if name == "vqa":
        class Vqa(nn.Module):
            """Deeper LSTM Q + norm I (Antol et al.): both LSTM layers' final (h, c) → tanh projection, times the
            centred, l2-normalised image features' tanh projection → tanh hidden layer → answer logits."""

            def __init__(self):
                super().__init__()
                if config.image_features != "cached":
                    raise ValueError("the vqa peer takes cached image features: expected image_features='cached'")
                self.embedding = nn.Embedding(sizes["vocabulary"], config.embedding_dim, padding_idx=0)
                self.lstm = _lstm(torch, config.embedding_dim, config.lstm_units, config.lstm_layers)
                self.question = nn.Linear(2 * config.lstm_layers * config.lstm_units, config.common_dim)
                self.centring = nn.BatchNorm1d(sizes["feature_dim"], affine=False, eps=1e-3, momentum=0.01)
                self.image = nn.Linear(sizes["feature_dim"], config.common_dim)
                self.hidden = nn.Linear(config.common_dim, config.hidden_units)
                self.answers = nn.Linear(config.hidden_units, config.max_answers)
                self.dropout = nn.Dropout(config.dropout)

            def forward(self, image, question_tokens, lengths=None):
                lengths = _lengths(torch, question_tokens) if lengths is None else lengths[1]
                words = self.dropout(self.embedding(question_tokens))
                _, (hidden, cell) = self.lstm(_packed(torch, words, lengths))
                # Keras' order: [h_1, c_1, h_2, c_2]
                states = torch.cat([part for layer in range(hidden.shape[0]) for part in (hidden[layer], cell[layer])],
                                   dim=-1)
                question = torch.tanh(self.question(states))
                normalised = functional.normalize(self.centring(image), dim=-1) * math.sqrt(image.shape[-1])
                fused = self.dropout(question * torch.tanh(self.image(normalised)))
                return self.answers(self.dropout(torch.tanh(self.hidden(fused))))

        def soft_cross_entropy(logits, answers):
            return -(answers * functional.log_softmax(logits, dim=-1)).sum(dim=-1).mean()

        def rmsprop(module):
            if config.optimizer != "rmsprop":
                return adam(module)
            return torch.optim.RMSprop(_trainable(module), lr=config.learning_rate, alpha=KERAS_RMSPROP_RHO,
                                       eps=KERAS_EPSILON)

        return Vqa(), soft_cross_entropy, rmsprop

    if name == "language_model":
        class LanguageModel(nn.Module):
            """Zaremba et al. medium: Embedding → dropout → LSTM ×2 (dropout between and after) → logits."""

            def __init__(self):
                super().__init__()
                if config.cell != "lstm":
                    raise ValueError(f"the language_model peer is an LSTM; got cell={config.cell!r}")
                self.embedding = nn.Embedding(sizes["vocabulary"], config.embedding_dim)
                self.lstm = _lstm(torch, config.embedding_dim, config.units, config.layers, dropout=config.dropout)
                self.dropout = nn.Dropout(config.dropout)
                self.logits = nn.Linear(config.units, sizes["vocabulary"])

            def forward(self, tokens, lengths=None):  # no mask: no lengths
                sequence, _ = self.lstm(self.dropout(self.embedding(tokens)))
                return self.logits(self.dropout(sequence))

        def sgd(module):
            if config.optimizer != "sgd":
                return adam(module)
            return torch.optim.SGD(_trainable(module), lr=config.learning_rate)

        return LanguageModel(), _token_cross_entropy(functional), sgd

    raise ValueError(f"gpu-bench --peer torch has no peer for task {name!r}")


def _trainable(module) -> list:
    return [parameter for parameter in module.parameters() if parameter.requires_grad]


def _token_cross_entropy(functional) -> Callable:
    """Mean cross-entropy over the non-padding target tokens (id 0 ignored), as the Keras models' losses."""
    def loss(logits, targets):
        return functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=0)
    return loss


def trainable_parameters(module) -> int:
    return sum(parameter.numel() for parameter in _trainable(module))


def _tensors(torch, value, where: str):
    """A workload's input (array, or dict of arrays in the Keras model's input order) as torch tensors."""
    if isinstance(value, dict):
        return [_tensors(torch, item, where) for item in value.values()]
    tensor = torch.from_numpy(np.ascontiguousarray(value))
    if tensor.dtype == torch.int32:
        tensor = tensor.long()  # nn.Embedding and cross_entropy index with int64
    if where == "cuda":
        tensor = tensor.pin_memory()
    return tensor


def batches(inputs, targets, batch_size: int) -> list[tuple[list, tuple, Any]]:
    """One epoch of (inputs, lengths, target) host tensors, in order (as gpu-bench's Keras fit, shuffle=False);
    lengths: each input's unpadded lengths where it holds token ids (2-D integers), else None."""
    import torch

    where = device()
    inputs = _tensors(torch, inputs, where)
    inputs = inputs if isinstance(inputs, list) else [inputs]
    targets = _tensors(torch, targets, where)
    epoch = []
    for start in range(0, len(targets), batch_size):
        batch = [tensor[start:start + batch_size] for tensor in inputs]
        lengths = tuple(_lengths(torch, tensor) if tensor.dtype == torch.int64 and tensor.dim() == 2 else None
                        for tensor in batch)
        epoch.append((batch, lengths, targets[start:start + batch_size]))
    return epoch


def clip_norm(config) -> float | None:
    """The global gradient-norm clip (Keras' global_clipnorm: the language model's clip_norm), else None."""
    return getattr(config, "clip_norm", 0) or None


def training_row(name: str, config, sizes: dict[str, int], inputs, targets, seconds: float,
                 seed: int = 0) -> dict[str, Any]:
    """Steps/s and examples/s of the peer on gpu-bench's arrays: two warm-up epochs (cuDNN plans, allocator) are
    dropped, then as many epochs as fill ``seconds`` (at least one), and the median epoch counts."""
    import torch

    torch.manual_seed(seed)
    where = device()
    module, loss_function, make_optimizer = build(name, config, sizes)
    module = module.to(where).train()
    optimizer = make_optimizer(module)
    clip = clip_norm(config)
    epoch_batches = batches(inputs, targets, config.batch_size)

    def epoch() -> tuple[float, float]:
        start = time.perf_counter()
        loss = None
        for batch_inputs, lengths, batch_targets in epoch_batches:
            batch_inputs = [tensor.to(where, non_blocking=True) for tensor in batch_inputs]
            batch_targets = batch_targets.to(where, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_function(module(*batch_inputs, lengths=lengths), batch_targets)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(_trainable(module), clip)
            optimizer.step()
        value = float(loss.item())  # waits for the queued device work, as gpu-bench's EpochTimer does
        return time.perf_counter() - start, value

    warm_up = [epoch() for _ in range(2)]
    epochs = max(1, min(200, int(np.ceil(seconds / warm_up[1][0])))) if seconds > 0 else 1
    timed = [epoch() for _ in range(epochs)]
    median = float(np.median([duration for duration, _ in timed]))
    steps = len(epoch_batches)
    return {"steps_per_second": steps / median, "examples_per_second": steps * config.batch_size / median,
            "compile_and_first_epoch_seconds": warm_up[0][0], "timed_steps": steps * epochs,
            "finite_loss": bool(math.isfinite(timed[-1][1])), "trainable_parameters": trainable_parameters(module),
            "device": where}
