"""Every task's model at its ``paper`` sizes on synthetic arrays: training steps/s and decoding sentences/s (issue 13).

    KERAS_BACKEND=jax python run.py gpu-bench [--quick] [--tasks a,b] [--output FILE.json]

Keras-only (no TensorFlow import, no data, no network), so it runs on the GPU machine, which has JAX but no
TensorFlow, and on any CPU under any Keras backend: the same script gives the GPU and the CPU figures. One process,
one backend; figures are steps per second (and sentences per second for batched beam search), so compare them as
ratios between rows of one run or between runs on named machines.

For each task, one training row per variant:
  * ``float32``: the model exactly as the task builds it (its padding masks included);
  * ``mixed_float16`` / ``mixed_bfloat16``: the same under Keras' mixed-precision policies (float32 weights,
    16-bit compute); a variant the backend cannot run records its error;
  * ``no_mask``: the same with every Embedding's ``mask_zero`` off. Keras' JAX and TF backends run an LSTM on
    cuDNN only when it gets no mask, so this is the cuDNN-eligible twin of a masked model (the sequences
    still hold padding: the figure is the kernel's speed, not a model to train);
  * ``generic_loop``: for models without masks, every LSTM forced off cuDNN (``use_cudnn=False``).
Decoding rows (translation, captioning): batched beam search at the paper's width and decode batch.

Model sizes are each task's ``paper`` preset; the vocabulary sizes stand in for the real data's (named below).
Timing: one warm-up epoch (compilation) is run and discarded, then the timed epoch; on the JAX backend the
step results are fetched at the end of the epoch, so queued GPU work is counted.

It lives in tasks/ beside the registry, not in common/: it knows every task, and common/ knows none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import time
from typing import Any, Callable

import keras
import numpy as np

import tasks
from common.callbacks import EpochTimer
from common.config import BaseConfig
from common.optimization import compile_model, lstms_off_cudnn

# Stand-ins for the real vocabularies at paper scale.
VOCABULARY = {
    "captioning": 10_000,  # Show and Tell keeps words seen >= 5 times: about 10k on COCO / Flickr
    "vqa": 12_000,  # VQA v2 questions: about 13k words after lower-casing (tasks/vqa/bench.py)
    "language_model": 10_000,  # Penn Treebank (Zaremba et al. 2014)
}
FEATURE_DIM = 2048  # pooled InceptionV3 / ResNet50 features
PRECISIONS = BaseConfig.CHOICES["precision"]  # float32 first: the ratios' base
TIMED_SECONDS = 1.5  # per row, after compilation: enough epochs (or decoder calls) for a stable median


@dataclasses.dataclass
class Workload:
    """A built, compiled model with one epoch of synthetic batches, and an optional batched decoder."""

    build: Callable[[], keras.Model]
    inputs: Any
    targets: np.ndarray
    batch_size: int
    decode: Callable[[keras.Model], tuple[Callable[[], Any], int]] | None = None  # → (call, sentences per call)
    sizes: dict[str, int] = dataclasses.field(default_factory=dict)  # the stand-in data's sizes, for --peer torch


def _tokens(rng: np.random.Generator, rows: int, length: int, vocabulary: int, first: int = 4) -> np.ndarray:
    """Token ids in [first, vocabulary) with a random length per row (at least half), zero-padded at the end."""
    ids = rng.integers(first, vocabulary, size=(rows, length), dtype=np.int32)
    lengths = rng.integers(max(1, length // 2), length + 1, size=rows)
    ids[np.arange(length)[None, :] >= lengths[:, None]] = 0
    return ids


def _workload(name: str, config, rows: int, rng: np.random.Generator, small: bool = False) -> Workload:
    """``small``: vocabularies and features of --quick size (with the tiny presets)."""
    model_lib = importlib.import_module(f"tasks.{name}.model")
    feature_dim = 64 if small else FEATURE_DIM
    if name == "acceleration":
        from tasks.acceleration.config import HORIZON, STEP_SAMPLES, WINDOW_STEPS

        return Workload(lambda: model_lib.build_model(config, mean=0.0, std=1.0),
                        rng.normal(size=(rows, WINDOW_STEPS, STEP_SAMPLES)).astype(np.float32),
                        rng.normal(size=(rows, HORIZON)).astype(np.float32), config.batch_size,
                        sizes={"step_samples": STEP_SAMPLES, "horizon": HORIZON})
    if name == "sentiment":
        def build():
            return compile_model(model_lib.build_model(config, config.max_tokens), config,
                                 loss="binary_crossentropy", metrics=["accuracy"])
        return Workload(build, _tokens(rng, rows, config.sequence_length, config.max_tokens, first=2),
                        rng.integers(0, 2, size=(rows, 1)).astype(np.float32), config.batch_size,
                        sizes={"vocabulary": config.max_tokens})
    if name == "translation":
        vocabulary = config.max_vocabulary

        def build():
            loss, metrics = model_lib.loss_and_metrics(config.label_smoothing)
            return compile_model(model_lib.build_model(config, vocabulary, vocabulary), config, loss=loss,
                                 metrics=metrics)

        source = _tokens(rng, rows, config.max_source_tokens, vocabulary)
        targets = _tokens(rng, rows, config.max_target_tokens, vocabulary)
        decoder_input = np.concatenate([np.full((rows, 1), 2, np.int32), targets[:, :-1]], axis=1)

        def decode(model):
            translator = model_lib.Translator(model)
            batch = source[: config.decode_batch_size]
            return (lambda: translator.beam(batch, config.max_target_tokens, config.beam_width, config.length_penalty),
                    len(batch))

        return Workload(build, {"source": source, "decoder_input": decoder_input}, targets, config.batch_size, decode,
                        sizes={"vocabulary": vocabulary})
    if name == "captioning":
        vocabulary, length = (500 if small else VOCABULARY[name]), config.max_caption_length + 1

        def build():
            return compile_model(model_lib.build_model(config, vocabulary, feature_dim), config,
                                 loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))

        features = rng.normal(size=(rows, feature_dim)).astype(np.float32)
        targets = _tokens(rng, rows, length, vocabulary)

        def decode(model):
            generator = model_lib.CaptionGenerator(model, config.max_caption_length)
            batch = features[:256]  # tasks/captioning/model.generate's decode batch
            return lambda: generator.generate(batch, config.beam_width, config.length_penalty), len(batch)

        return Workload(build, {"image_features": features, "caption_tokens": targets}, targets, config.batch_size,
                        decode, sizes={"vocabulary": vocabulary, "feature_dim": feature_dim})
    if name == "vqa":
        vocabulary = (500 if small else VOCABULARY[name])

        def build():
            model = model_lib.build_model(config, vocabulary, config.max_answers, image_feature_dim=feature_dim)
            return compile_model(model, config, loss=keras.losses.CategoricalCrossentropy(),
                                 optimizer=model_lib.make_optimizer(config))

        answers = rng.dirichlet(np.ones(config.max_answers) * 0.05, size=rows).astype(np.float32)
        return Workload(build, {"image": rng.normal(size=(rows, feature_dim)).astype(np.float32),
                                "question_tokens": _tokens(rng, rows, config.max_question_length, vocabulary)},
                        answers, config.batch_size, sizes={"vocabulary": vocabulary, "feature_dim": feature_dim})
    if name == "language_model":
        vocabulary, length = (500 if small else VOCABULARY[name]), config.sequence_length

        def build():
            return compile_model(model_lib.build_model(config, vocabulary), config, loss=model_lib.loss(),
                                 optimizer=model_lib.optimizer(config, config.learning_rate))

        tokens = rng.integers(3, vocabulary, size=(rows, length + 1), dtype=np.int32)  # a running text: no padding
        return Workload(build, tokens[:, :-1], tokens[:, 1:], config.batch_size, sizes={"vocabulary": vocabulary})
    raise ValueError(f"gpu-bench has no workload for task {name!r}; expected one of {list(tasks.TASK_NAMES)}")


@contextlib.contextmanager
def _policy(name: str):
    keras.mixed_precision.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy("float32")


@contextlib.contextmanager
def _embeddings_without_mask():
    """Builds every keras Embedding with mask_zero=False (a built functional graph keeps its masks)."""
    original = keras.layers.Embedding.__init__

    def without_mask(self, *args, mask_zero=False, **kwargs):
        original(self, *args, mask_zero=False, **kwargs)

    keras.layers.Embedding.__init__ = without_mask
    try:
        yield
    finally:
        keras.layers.Embedding.__init__ = original


def _has_masks(model: keras.Model) -> bool:
    return any(getattr(layer, "mask_zero", False) for layer in model._flatten_layers(include_self=False))


def _training_row(model: keras.Model, work: Workload, steps: int, seconds: float) -> dict[str, Any]:
    """Epoch 1 (compilation) and epoch 2 (a first estimate) are discarded; then as many epochs as fill
    ``seconds``, timed one by one, and the median epoch gives steps/s (a short GPU epoch is noisy)."""
    timer = EpochTimer()
    model.fit(work.inputs, work.targets, batch_size=work.batch_size, epochs=2, shuffle=False, verbose=0,
              callbacks=[timer])
    epochs = max(1, min(200, int(np.ceil(seconds / timer.seconds[1])))) if seconds > 0 else 1
    history = model.fit(work.inputs, work.targets, batch_size=work.batch_size, epochs=epochs, shuffle=False,
                        verbose=0, callbacks=[timer])
    epoch = float(np.median(timer.seconds[2:]))
    return {"steps_per_second": steps / epoch, "examples_per_second": steps * work.batch_size / epoch,
            "compile_and_first_epoch_seconds": timer.seconds[0], "timed_steps": steps * epochs,
            "finite_loss": bool(np.isfinite(history.history["loss"][-1]))}


def _decoding_row(model: keras.Model, work: Workload, seconds: float) -> dict[str, Any]:
    call, sentences = work.decode(model)
    start = time.perf_counter()
    keras.ops.convert_to_numpy(keras.tree.flatten(call())[0])  # compile (traced loop) + first run
    first = time.perf_counter() - start
    timings = []
    while not timings or sum(timings) < seconds:
        start = time.perf_counter()
        keras.ops.convert_to_numpy(keras.tree.flatten(call())[0])
        timings.append(time.perf_counter() - start)
    return {"sentences_per_second": sentences / float(np.median(timings)), "batch": sentences, "calls": len(timings),
            "compile_and_first_call_seconds": first}


def _attempt(measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """One row; a variant that fails is recorded with its error (e.g. a kernel the backend lacks for a dtype)."""
    try:
        return measure()
    except Exception as error:  # noqa: BLE001  (the error is the result)
        return {"error": f"{type(error).__name__}: {str(error)[:300]}"}


# The tiny presets' keys that size a model; with --peer, --quick builds the paper models at these sizes (the peers
# are the paper models: the default recipes' attention, linear skip and bidirectional encoder have no peer).
SIZE_KEYS = ("embedding_dim", "lstm_units", "units", "dense_units", "common_dim", "hidden_units", "max_tokens",
             "sequence_length", "max_caption_length", "max_target_tokens", "batch_size")


def bench_config(name: str, quick: bool, peer: str | None = None):
    """The config gpu-bench builds ``name``'s model from: the ``paper`` preset; ``quick``: the ``tiny`` preset
    (with ``peer``: the paper preset at the tiny preset's sizes), batch at most 8."""
    config_class = tasks.load_config(name)
    if not quick:
        return config_class.from_preset("paper")
    if peer is None:
        config = config_class.from_preset("tiny")
    else:
        tiny = {key: value for key, value in config_class.PRESETS["tiny"].items() if key in SIZE_KEYS}
        config = config_class.from_preset("paper", tiny)
    return dataclasses.replace(config, batch_size=min(config.batch_size, 8))


def bench_task(name: str, quick: bool, precisions: tuple[str, ...] = PRECISIONS,
               peer: str | None = None) -> dict[str, Any]:
    """Training rows (and a decoding row where the task decodes) for one task's paper-sized model (``quick``: its
    tiny preset, one mixed policy, 2 steps: a check that every path runs); ``peer="torch"``: also the PyTorch
    peer's training row (tasks/gpu_bench_torch.py), right after the float32 row, on the same arrays."""
    precisions = PRECISIONS[:2] if quick else precisions
    seconds = 0.0 if quick else TIMED_SECONDS
    config = bench_config(name, quick, peer)
    steps = 2 if quick else 20
    rng = np.random.default_rng(0)
    work = _workload(name, config, rows=steps * config.batch_size, rng=rng, small=quick)
    rows: dict[str, Any] = {"batch_size": config.batch_size, "steps_per_epoch": steps}
    decoded = None
    for precision in precisions:
        keras.utils.set_random_seed(0)
        with _policy(precision):
            model = work.build()
            rows[precision] = _attempt(lambda: _training_row(model, work, steps, seconds))
        if precision == "float32":
            decoded = model
            if peer is not None:
                rows["torch_peer"] = _attempt(lambda: _peer_row(name, config, work, seconds, rows["float32"]))
    keras.utils.set_random_seed(0)
    if _has_masks(decoded or work.build()):
        with _embeddings_without_mask():
            model = work.build()
        rows["no_mask"] = _attempt(lambda: _training_row(model, work, steps, seconds))
    else:
        model = work.build()
        lstms_off_cudnn(model)
        rows["generic_loop"] = _attempt(lambda: _training_row(model, work, steps, seconds))
    if work.decode is not None and decoded is not None:
        rows["beam_search"] = _attempt(lambda: _decoding_row(decoded, work, seconds))
    return rows


def _peer_row(name: str, config, work: Workload, seconds: float, suite: dict[str, Any]) -> dict[str, Any]:
    """The PyTorch peer's training row, with ``suite_vs_peer``: the Keras float32 model's steps/s over the peer's
    (> 1: the suite is faster)."""
    from tasks import gpu_bench_torch

    row = gpu_bench_torch.training_row(name, config, work.sizes, work.inputs, work.targets, seconds)
    if suite.get("steps_per_second"):
        row["suite_vs_peer"] = suite["steps_per_second"] / row["steps_per_second"]
    return row


def devices() -> dict[str, Any]:
    found = {"keras_backend": keras.backend.backend()}
    if found["keras_backend"] == "jax":
        import jax

        found["devices"] = [f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in jax.devices()]
    return found


def run(task_names: tuple[str, ...] = tasks.TASK_NAMES, quick: bool = False, precisions: tuple[str, ...] = PRECISIONS,
        after_each: Callable[[dict[str, Any]], None] | None = None, peer: str | None = None) -> dict[str, Any]:
    """Every named task; a task that fails records its error instead of stopping the others. ``after_each`` gets
    the results so far after every task (run.py writes them, so a run cut short keeps its finished tasks).
    ``peer="torch"``: each task's PyTorch peer too, where PyTorch imports (else ``results["peer"]`` says why not)."""
    from common import report

    results: dict[str, Any] = {"devices": devices(), "hardware": report.hardware(), "quick": quick,
                               "precisions": list(precisions),
                               "versions": report.versions(("keras", "jax", "jaxlib", "tensorflow", "numpy", "torch")),
                               "tasks": {}}
    if peer == "torch":
        from tasks import gpu_bench_torch

        missing = gpu_bench_torch.available()
        results["peer"] = {"name": "torch", "skipped": missing} if missing else {"name": "torch",
                                                                                  **gpu_bench_torch.facts()}
        peer = None if missing else peer
    for name in task_names:
        start = time.perf_counter()
        try:
            results["tasks"][name] = bench_task(name, quick, precisions, peer)
        except Exception as error:  # noqa: BLE001  (one task's failure is a result, the others still run)
            results["tasks"][name] = {"error": f"{type(error).__name__}: {error}"}
        results["tasks"][name]["seconds"] = round(time.perf_counter() - start, 1)
        if after_each is not None:
            after_each(results)
    return results


def format_rows(results: dict[str, Any]) -> str:
    """One line per task and variant: steps/s (sentences/s for beam search), and the ratio to float32."""
    lines = [f"backend {results['devices']['keras_backend']} on {results['devices'].get('devices') or 'cpu'}"]
    peer = results.get("peer") or {}
    if peer.get("skipped"):
        lines.append(f"--peer {peer['name']} skipped: {peer['skipped']}")
    elif peer:
        lines.append(f"peer: torch {peer.get('torch')} on {peer.get('gpu') or peer.get('device')}"
                     + (f" (cuDNN {peer.get('cudnn')})" if peer.get("device") == "cuda" else ""))
    for name, rows in results["tasks"].items():
        if "error" in rows:
            lines.append(f"{name:<15} error: {rows['error']}")
            continue
        base = rows.get("float32", {}).get("steps_per_second", float("nan"))
        for variant, row in rows.items():
            if isinstance(row, dict) and "error" in row:
                lines.append(f"{name:<15} {variant:<14} error: {row['error'][:150]}")
            elif variant == "torch_peer":
                lines.append(f"{name:<15} {variant:<14} {row['steps_per_second']:9.2f} steps/s  "
                             f"{row['examples_per_second']:9.1f} examples/s  suite / peer "
                             f"x{row.get('suite_vs_peer', float('nan')):5.2f}")
            elif isinstance(row, dict) and "steps_per_second" in row:
                lines.append(f"{name:<15} {variant:<14} {row['steps_per_second']:9.2f} steps/s  "
                             f"x{row['steps_per_second'] / base:5.2f} vs float32  (first epoch "
                             f"{row['compile_and_first_epoch_seconds']:.1f} s)")
            elif isinstance(row, dict) and "sentences_per_second" in row:
                lines.append(f"{name:<15} {variant:<14} {row['sentences_per_second']:9.1f} sentences/s "
                             f"(batch {row['batch']})")
    return "\n".join(lines)


def markdown(gpu: dict[str, Any], cpu: dict[str, Any] | None = None) -> str:
    """A README table from one GPU run's results (and, beside it, a CPU run's: the GPU/CPU ratio)."""
    def speed(rows: dict[str, Any], variant: str, key: str = "steps_per_second") -> float | None:
        row = rows.get(variant)
        return row.get(key) if isinstance(row, dict) else None

    def ratio(value: float | None, base: float | None) -> str:
        return f"×{value / base:.2f}" if value and base else "—"

    header = ["task", "batch", "float32 steps/s (as built)", "cuDNN switched", "mixed_float16", "mixed_bfloat16"]
    if cpu:
        header += ["CPU float32 steps/s", "GPU / CPU"]
    header += ["beam search sentences/s" + (" (GPU / CPU)" if cpu else "")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name, rows in gpu["tasks"].items():
        if "error" in rows:
            lines.append(f"| {name} | error: {rows['error']} |")
            continue
        base = speed(rows, "float32")
        twin = "no_mask" if "no_mask" in rows else "generic_loop"
        switched = ("masks off → cuDNN " if twin == "no_mask" else "cuDNN off → generic loop ") + ratio(
            speed(rows, twin), base)
        cells = [name, str(rows["batch_size"]), f"{base:.1f}" if base else "—", switched,
                 ratio(speed(rows, "mixed_float16"), base), ratio(speed(rows, "mixed_bfloat16"), base)]
        cpu_rows = (cpu or {}).get("tasks", {}).get(name, {})
        if cpu:
            cpu_base = speed(cpu_rows, "float32")
            cells += [f"{cpu_base:.2f}" if cpu_base else "—", ratio(base, cpu_base)]
        beam = speed(rows, "beam_search", "sentences_per_second")
        cpu_beam = speed(cpu_rows, "beam_search", "sentences_per_second")
        cells.append("—" if not beam else f"{beam:,.0f}" + (f" / {cpu_beam:,.0f}" if cpu_beam else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n" + peer_markdown(gpu)


def peer_markdown(results: dict[str, Any]) -> str:
    """The suite beside its PyTorch peer (a run with --peer torch): steps/s and examples/s of each, and suite /
    peer (> 1: the suite is faster); empty for a run without peers."""
    if not any("torch_peer" in rows for rows in results["tasks"].values()):
        return ""
    peer = results.get("peer") or {}
    lines = ["", f"Beside PyTorch {peer.get('torch', '')} ({peer.get('gpu') or peer.get('device', '')}"
             + (f", cuDNN {peer['cudnn']}" if peer.get("cudnn") else "") + "), float32, the same arrays and batch:",
             "", "| task | batch | suite steps/s | suite examples/s | PyTorch peer steps/s | peer examples/s "
             "| suite / peer |", "|---|---|---|---|---|---|---|"]
    for name, rows in results["tasks"].items():
        suite, twin = rows.get("float32") or {}, rows.get("torch_peer")
        if twin is None:
            continue
        if "error" in twin or "error" in suite:
            lines.append(f"| {name} | {rows.get('batch_size', '')} | error: {twin.get('error') or suite.get('error')} "
                         "| | | | |")
            continue
        lines.append(f"| {name} | {rows['batch_size']} | {suite['steps_per_second']:.1f} | "
                     f"{suite['examples_per_second']:,.0f} | {twin['steps_per_second']:.1f} | "
                     f"{twin['examples_per_second']:,.0f} | ×{twin['suite_vs_peer']:.2f} |")
    return "\n".join(lines) + "\n"
