"""Language model: a stacked LSTM reads plain text and predicts the next character or word, against Kneser-Ney.

    python run.py language_model                     # synthetic corpus, characters (the default benchmark)
    python run.py language_model --preset tiny       # seconds, for tests
    python run.py language_model --set level=word    # the same text as words (perplexity)
    python run.py language_model --preset text --data-dir input.txt         # any UTF-8 text file (char-rnn)
    python run.py language_model --data-dir flickr8k/Flickr8k.token.txt --set tab_field=1
    python run.py language_model --preset small --data-dir ptb/   # ptb.{train,valid,test}.txt, Zaremba "small"
    python run.py language_model --preset paper --data-dir ptb/   # Zaremba "medium"; needs a GPU
    python run.py language_model predict --model runs/language_model/export "the dogs" ""
    python run.py language_model bench               # after a run: training tokens/s; batched vs Python-loop sampling

Data (data.text_corpus): one UTF-8 file or a folder of .txt files, split by position at line boundaries
(train first, test last: no line shared), or the Penn Treebank files with their official splits. The
preprocessor (vocabulary, and the Kneser-Ney baseline's n-gram counts) is fitted on the training split
only; unknown tokens map to [UNK]. Training: truncated BPTT on non-overlapping windows of
``sequence_length`` tokens, shuffled, each window starting from zeros; with ``carry_state`` (the ``text``
preset) the training text is batch_size contiguous streams read in order and each row's state carries
over to the next batch. Evaluation scores every test token once, with at least sequence_length // 2
tokens of context (overlapping windows), or with carry_state as 64 streams read with a carried state
after a warm-up of sequence_length tokens; the validation split is scored the same way. Primary
metric: bits_per_token (log2 loss per token: bits per character at level=char) with perplexity =
2 ** bits_per_token beside it, for the model and the n-gram baseline on the same ids; on the synthetic
corpus also the share of sampled lines that keep its rules (brackets, agreement). Endpoint ``generate``:
prompts [B] strings, num_tokens int32, temperature float32 (0 = greedy), seed int32 → {"text": [B]
continuations}; top_k is the config's. Samples go to the log and to TensorBoard text each epoch.
Measured numbers: tasks/language_model/README.md.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from common import report, training
from common.errors import TaskError
from common.io import atomic_write_text
from common.task import Task, TaskData
from data import text_corpus
from data.synthetic import corpus as synthetic_corpus
from tasks.language_model import model as model_lib
from tasks.language_model import structure
from tasks.language_model.callbacks import sample_callbacks, sampler
from tasks.language_model.config import Config
from tasks.language_model.pipeline import UNKNOWN_ID, Preprocessor

logger = logging.getLogger(__name__)

_SIGNATURE = [tf.TensorSpec([None], tf.string, name="prompts"), tf.TensorSpec([], tf.int32, name="num_tokens"),
              tf.TensorSpec([], tf.float32, name="temperature"), tf.TensorSpec([], tf.int32, name="seed")]


@dataclasses.dataclass
class TextData(TaskData):
    train: list[str]  # lines
    validation: list[str]
    test: list[str]
    synthetic: bool  # the generator's corpus: its rules can judge sampled lines


class LanguageModelTask(Task):
    name = "language_model"
    description = "Character/word-level stacked LSTM language model vs Kneser-Ney n-grams; seeded sampling"
    Config = Config
    Preprocessor = Preprocessor
    primary_metric = "bits_per_token"  # log2 loss per test token (bits per character at level=char)
    higher_is_better = False
    predict_endpoint = "generate"
    predict_usage = "PROMPT [PROMPT ...]"
    extra_packages = ("nltk",)

    # --- data -----------------------------------------------------------------------------------
    def load_data(self, data_dir: Path | None, workdir: Path) -> TextData:
        config = self.config
        synthetic = data_dir is None
        if synthetic:
            data_dir = synthetic_corpus.write(Path(workdir) / "data", config.synthetic_lines, config.seed)
        corpus = text_corpus.read_corpus(Path(data_dir), config.tab_field)
        if corpus.format == "ptb":
            splits = dict(corpus.splits)
            splits["train"] = splits["train"][: config.max_lines]
        else:
            splits = text_corpus.split_by_position(corpus.lines[: config.max_lines], config.validation_fraction,
                                                   config.test_fraction)
        train_lines = set(splits["train"])
        info = {"source": "synthetic" if synthetic else "files", "path": corpus.path, "format": corpus.format,
                "level": config.level, "file_statistics": corpus.statistics,
                "lines": {name: len(lines) for name, lines in splits.items()},
                "characters": {name: sum(len(line) + 1 for line in lines) for name, lines in splits.items()},
                # Splits never share a line position; identical lines may still recur (common in real text).
                "test_lines_also_in_train": sum(line in train_lines for line in splits["test"] if line.strip())}
        logger.info("Language model data: %s", info)
        return TextData(**splits, synthetic=synthetic, info=info)

    def datasets(self, data: TextData, preprocessor: Preprocessor):
        config = self.config
        return (preprocessor.dataset(data.train, config.batch_size, shuffle=True, seed=config.seed,
                                     carried=config.carry_state),
                preprocessor.dataset(data.validation, config.batch_size, shuffle=False, seed=config.seed))

    # --- model ----------------------------------------------------------------------------------
    def build_model(self, data: TextData, preprocessor: Preprocessor):
        model = model_lib.build_model(self.config, vocabulary_size=len(preprocessor.vocabulary))
        optimizer = model_lib.optimizer(self.config, training.learning_rate(self.config))
        return training.compile_model(model, self.config, loss=model_lib.loss(), optimizer=optimizer)

    def fit(self, model, data: TextData, preprocessor: Preprocessor, workdir: Path) -> dict[str, Any]:
        config = self.config
        train, validation = self.datasets(data, preprocessor)
        callbacks = sample_callbacks(config, _prompts(data.validation, 3), preprocessor, workdir)
        per_pass = int(train.cardinality().numpy())  # batches in one pass over the training text
        steps_per_epoch = None
        if config.min_steps_per_epoch > per_pass:
            # A short text is repeated within an epoch, so an epoch (the unit of the learning-rate schedule and of
            # early stopping) is about the same amount of training whatever the text's length.
            train, steps_per_epoch = train.repeat(), config.min_steps_per_epoch
            logger.info("An epoch is %d updates: %.2f passes over the training text (%d batches each; "
                        "min_steps_per_epoch=%d)", steps_per_epoch, steps_per_epoch / per_pass, per_pass,
                        config.min_steps_per_epoch)
        if config.carry_state:
            # tf.distribute's replicas; a JAX data_parallel job splits every batch too, whatever its device count.
            replicas = training.replicas_in_sync()
            if replicas > 1 or config.strategy == "data_parallel":
                raise TaskError(f"carry_state=true carries one state per batch row, which strategy={config.strategy} "
                                "would split between devices; expected a single device (strategy=default) or "
                                "carry_state=false")
            callbacks.append(model_lib.ResetCarriedState(period=per_pass if steps_per_epoch else None))
        if config.learning_rate_decay < 1:
            schedule = model_lib.learning_rate_schedule(config, training.learning_rate(config))
            callbacks.append(keras.callbacks.LearningRateScheduler(schedule))
        result = training.fit(model, train, validation, config, workdir, monitor=self.monitor, mode=self.monitor_mode,
                              extra_callbacks=callbacks, steps_per_epoch=steps_per_epoch)
        return {**result, "preprocessor": preprocessor.summary}

    # --- evaluation -----------------------------------------------------------------------------
    def evaluate(self, model, data: TextData, preprocessor: Preprocessor, workdir: Path) -> dict[str, Any]:
        config = self.config
        stream = preprocessor.stream(data.test)
        bits, correct, tokens = model_lib.score_stream(model, stream, config)
        ngram_bits = -float(np.sum(preprocessor.ngram.log2_probabilities(stream)))
        baseline = f"kneser_ney_{preprocessor.ngram.order}gram"
        # The validation split scored the same way, beside the test: recipes are chosen on it, never on the test.
        validation = preprocessor.stream(data.validation)
        validation_bits = model_lib.score_stream(model, validation, config)[0] / (len(validation) - 1)
        ngram_validation_bits = -float(np.mean(preprocessor.ngram.log2_probabilities(validation)))
        scores = {"model": {**_summary(bits, tokens, config.level), "accuracy": correct / tokens,
                            "validation_bits_per_token": validation_bits},
                  baseline: {**_summary(ngram_bits, tokens, config.level),
                             "validation_bits_per_token": ngram_validation_bits}}
        samples = self._samples(model, preprocessor, data, Path(workdir))
        if data.synthetic and config.structure_samples:
            judged = structure.judge(model, preprocessor, config, data.test)
            for name, rates in judged.items():
                scores["model" if name == "model" else baseline].update(rates)
        return report.metrics(primary=self.primary_metric, model=scores["model"],
                              baselines={baseline: scores[baseline]},
                              level=config.level, test_tokens=tokens,
                              evaluation_min_context=(config.sequence_length if config.carry_state else
                                                      config.sequence_length - config.sequence_length // 2),
                              unknown_rate_test=float(np.mean(stream[1:] == UNKNOWN_ID)),
                              vocabulary_size=len(preprocessor.vocabulary), samples=samples)

    def _samples(self, model, preprocessor: Preprocessor, data: TextData, workdir: Path) -> list[dict[str, str]]:
        """Greedy and sampled continuations of a few test prompts and of an empty prompt: logged and written to
        WORKDIR/samples.txt."""
        config = self.config
        prompts = [*_prompts(data.test, config.logged_examples), ""]
        generate = sampler(model, preprocessor, config.top_k)
        outputs = {name: generate(tf.constant(prompts), tf.constant(config.effective_sample_tokens),
                                  tf.constant(temperature), tf.constant(config.seed)).numpy()
                   for name, temperature in (("greedy", 0.0), ("sampled", config.temperature))}
        samples = [{"prompt": prompt, **{name: outputs[name][i].decode("utf-8", "replace") for name in outputs}}
                   for i, prompt in enumerate(prompts)]
        lines = []
        for sample in samples:
            logger.info("sample | prompt %r | greedy %r | sampled %r", *sample.values())
            lines += [f"prompt: {sample['prompt']!r}", f"greedy: {sample['greedy']}",
                      f"sampled (temperature {config.temperature:g}): {sample['sampled']}", ""]
        atomic_write_text(workdir / "samples.txt", "\n".join(lines))
        return samples

    # --- export and predict ---------------------------------------------------------------------
    def endpoints(self, model, preprocessor: Preprocessor):
        """``generate``: prompts [B], num_tokens, temperature, seed → {"text": [B] continuations}."""
        generator = model_lib.Generator(model, self.config.top_k)

        def generate(prompts, num_tokens, temperature, seed):
            ids, lengths = preprocessor.encode_prompts(prompts)
            return {"text": preprocessor.decode(generator.generate(ids, lengths, num_tokens, temperature, seed))}

        return {"generate": (generate, _SIGNATURE)}

    def export_examples(self, data: TextData) -> dict[str, Sequence[Any]]:
        # A real prompt, an empty one, unknown characters, and one 2,000-character word.
        prompts = np.array([*_prompts(data.test, 1), "", "zzqx ünïcödé ✓", "x" * 2000], dtype=object)
        return {"generate": [prompts, np.int32(8), np.float32(self.config.temperature), np.int32(self.config.seed)]}

    def write_samples(self, data: TextData, folder: Path) -> list[str]:
        prompts = _prompts(data.test, 3)
        atomic_write_text(Path(folder) / "prompts.txt", "\n".join(prompts) + "\n")
        return prompts

    def predict_arguments(self, inputs: Sequence[str]) -> list[Any]:
        """Prompts → the endpoint's arguments: the number of tokens for the exported level, the config's
        default temperature and seed."""
        level = self.exported_facts.get("level", self.config.level)
        tokens = dataclasses.replace(self.config, level=level).effective_sample_tokens
        return [np.array(list(inputs), dtype=object), np.int32(tokens), np.float32(self.config.temperature),
                np.int32(self.config.seed)]

    def predict_results(self, inputs: Sequence[str], outputs) -> list[dict[str, Any]]:
        return [{"prompt": prompt, "text": text.decode("utf-8", "replace")}
                for prompt, text in zip(inputs, outputs["text"])]

    # --- benchmark ------------------------------------------------------------------------------
    def bench(self, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
        from tasks.language_model import bench

        return bench.run(self, data_dir, workdir)


def _summary(bits: float, tokens: int, level: str) -> dict[str, float]:
    per_token = bits / tokens
    scores = {"bits_per_token": per_token, "perplexity": 2.0 ** per_token}
    if level == "char":
        scores["bits_per_character"] = per_token
    return {key: (value if math.isfinite(value) else float("inf")) for key, value in scores.items()}


def _prompts(lines: Sequence[str], count: int) -> list[str]:
    """The first three words of the first ``count`` non-blank lines that start differently (prompts for samples)."""
    starts = dict.fromkeys(" ".join(line.split()[:3]) for line in lines if line.strip())
    return list(starts)[:count]


TASK = LanguageModelTask
