"""Translation: encoder–decoder LSTM with attention, in-graph beam search, corpus BLEU (sacrebleu).

    python run.py translation                        # synthetic grammar corpus (the default benchmark)
    python run.py translation --preset tiny          # seconds, for tests
    python run.py translation --data-dir fra-eng/fra.txt --workdir runs/translation_fra
    python run.py translation --data-dir fra-eng/fra.txt --set subword_vocabulary=2000   # SentencePiece units
    python run.py translation --data-dir multi30k/ --set source_language=en --set target_language=fr  # train.en ...
    python run.py translation --download --data-dir ~/tensorflow_datasets --set tfds_dataset=wmt14_translate/fr-en
    python run.py translation bench                  # batched in-graph beam search vs a Python loop
    python run.py translation predict --model runs/translation/export "The dog sleeps." "Hello!"

Data: a tab-separated pair file (Tatoeba/manythings layout, ``source\\ttarget[\\tattribution]``), a folder
of line-aligned parallel files (``train.en`` + ``train.fr`` ...) or a tfds data dir (data.pairs.read_corpus);
official validation/test splits are used where present, else held out by distinct source sentence. The
preprocessor (vocabularies or SentencePiece subword models, array widths, source reversal, the target's
apostrophe, the baseline's lexicon) is fitted on train only. The output keeps the target's case, the training
data's spacing of punctuation and its majority apostrophe (pipeline).
Evaluation on the test split: teacher-forced loss and token accuracy; corpus BLEU, cased (the
headline) and lower-cased, and chrF (sacrebleu, 13a tokenisation; signatures recorded) of beam and
greedy decoding, all references of a source sentence used; the same for the word-by-word dictionary
baseline; beam search's scores on the validation split too (for choosing recipes). The
decoding functions are the exported endpoints ``translate`` (beam search) and ``translate_greedy``:
a batch of raw source strings → {"translation": strings, "score": float32}. Evaluation draws
WORKDIR/attention.png (greedy decoding's attention on 4 test sentences); with config.tensorboard,
each epoch writes decoded validation examples as TensorBoard text (WORKDIR/logs/tensorboard/examples).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import tensorflow as tf

from common import decoding, export, report, training
from common.io import atomic_write_text
from common.metrics import bleu
from common.task import Task, TaskData
from data import pairs as pair_reader
from data import tfds_sources
from data.synthetic import parallel
from tasks.translation import evaluation
from tasks.translation import model as model_lib
from tasks.translation import plots
from tasks.translation.callbacks import translation_examples
from tasks.translation.config import Config
from tasks.translation.evaluation import translate_all
from tasks.translation.pipeline import Preprocessor

logger = logging.getLogger(__name__)

_STRINGS = [tf.TensorSpec([None], tf.string, name="sentences")]


@dataclasses.dataclass
class TranslationData(TaskData):
    train: list[pair_reader.Pair]
    validation: list[pair_reader.Pair]
    test: list[pair_reader.Pair]
    test_sources: list[str]  # distinct test source sentences, file order
    test_references: list[list[str]]  # all target sentences of each test source


class TranslationTask(Task):
    name = "translation"
    description = "Encoder–decoder LSTM with attention, in-graph beam search, sacrebleu BLEU"
    Config = Config
    Preprocessor = Preprocessor
    primary_metric = "bleu_cased"  # corpus BLEU of beam search on the test split (sacrebleu, case-sensitive)
    higher_is_better = True
    predict_endpoint = "translate"
    predict_usage = "SENTENCE [SENTENCE ...]"
    extra_packages = ("sacrebleu",)
    can_download = True  # tfds ted_hrlr_translate / wmt14_translate (config.tfds_dataset), only with --download

    # --- data -----------------------------------------------------------------------------------
    def load_data(self, data_dir: Path | None, workdir: Path) -> TranslationData:
        config, wanted = self.config, self.config.tfds_dataset
        if self.download:  # only on request: tensorflow-datasets fetches config.tfds_dataset
            wanted = wanted or tfds_sources.DEFAULT_TRANSLATION
            data_dir = tfds_sources.download(wanted, data_dir or Path(workdir) / "downloads")
            source = f"tfds {wanted} (downloaded to {data_dir})"
        elif data_dir is None:
            data_dir = parallel.write(Path(workdir) / "data", config.synthetic_pairs, config.seed)
            source = f"synthetic ({data_dir})"
        else:
            source = str(data_dir)
        options = ("direction", "source_language", "target_language", "validation_set", "test_set", "max_pairs")
        corpus = pair_reader.read_corpus(Path(data_dir), **{key: getattr(config, key) for key in options},
                                         tfds_dataset=wanted, seed=config.seed)
        splits = pair_reader.complete_splits(corpus, config.validation_fraction, config.test_fraction, config.seed)
        test_sources, test_references = pair_reader.group_references(splits.test)
        info = {"source": source, "path": corpus.path, "format": corpus.format, "direction": config.direction,
                "languages": corpus.languages, "file_statistics": corpus.statistics,
                "pairs": {"train": len(splits.train), "validation": len(splits.validation), "test": len(splits.test)},
                "test_sources": len(test_sources), **splits.facts}
        logger.info("Translation data: %s", info)
        return TranslationData(train=splits.train, validation=splits.validation, test=splits.test,
                               test_sources=test_sources, test_references=test_references, info=info)

    def datasets(self, data: TranslationData, preprocessor: Preprocessor):
        config = self.config
        return (preprocessor.dataset(data.train, config.batch_size, shuffle=True, seed=config.seed),
                preprocessor.dataset(data.validation, config.batch_size, shuffle=False, seed=config.seed))

    # --- model ----------------------------------------------------------------------------------
    def build_model(self, data: TranslationData, preprocessor: Preprocessor):
        model = model_lib.build_model(
            self.config,
            source_vocabulary_size=len(preprocessor.source_vocabulary),
            target_vocabulary_size=len(preprocessor.target_vocabulary),
        )
        loss, metrics = model_lib.loss_and_metrics(self.config.label_smoothing)
        return training.compile_model(model, self.config, loss=loss, metrics=metrics)

    def fit(self, model, data: TranslationData, preprocessor: Preprocessor, workdir: Path) -> dict[str, Any]:
        train, validation = self.datasets(data, preprocessor)
        callbacks = translation_examples(self.config, data.validation, preprocessor, workdir)  # TensorBoard text
        return training.fit(model, train, validation, self.config, workdir, monitor=self.monitor,
                            mode=self.monitor_mode, extra_callbacks=callbacks)

    # --- evaluation -----------------------------------------------------------------------------
    def evaluate(self, model, data: TranslationData, preprocessor: Preprocessor, workdir: Path) -> dict[str, Any]:
        config = self.config
        sources, references = data.test_sources, data.test_references
        # Teacher-forced loss and token accuracy (gold previous tokens), all test pairs. One number:
        # no progress bar (verbose=0).
        test_set = preprocessor.dataset(data.test, config.batch_size, shuffle=False, seed=config.seed)
        teacher_forced = model.evaluate(test_set, return_dict=True, verbose=0)
        hypotheses, speed, endpoints = {}, {}, {}
        for name, (function, signature) in self.endpoints(model, preprocessor).items():
            endpoints[name] = decoding.traced(function, signature)  # under TF exactly what the export serves
            start = time.perf_counter()
            hypotheses[name] = translate_all(endpoints[name], sources, config.decode_batch_size, f"Decoding ({name})")
            speed[name] = len(sources) / (time.perf_counter() - start)
        source_tokens = preprocessor.source_tokens(sources)
        baseline = model_lib.WordByWordBaseline(preprocessor.lexicon)
        hypotheses["word_by_word"] = preprocessor.join_target(baseline.translate(source_tokens))
        results = {name: evaluation.scores(h, references) for name, h in hypotheses.items()}
        # The validation split's beam search, for choosing recipes without looking at test.
        validation_sources, validation_references = pair_reader.group_references(data.validation)
        validation = evaluation.scores(translate_all(endpoints["translate"], validation_sources,
                                                     config.decode_batch_size, "Decoding (validation)"),
                                       validation_references)
        # Long sentences are where a fixed-size encoding struggles: BLEU of beam search by length.
        lengths = np.array([len(tokens) for tokens in source_tokens])
        by_length = {}
        for label, selection in (("1-10", lengths <= 10), ("11+", lengths > 10)):
            chosen = np.flatnonzero(selection)
            if len(chosen):
                by_length[label] = bleu.corpus_scores([hypotheses["translate"][i] for i in chosen],
                                                      [references[i] for i in chosen])["bleu"]
        self._write_predictions(Path(workdir) / "test_predictions.tsv", sources, references, hypotheses)
        max_length = config.max_target_tokens + 1  # words + END
        plots.write_attention(Path(workdir) / "attention.png", model, preprocessor, sources, max_length)
        model_scores = {
            **evaluation.summary(results["translate"]),
            **evaluation.with_suffix(results["translate_greedy"], "greedy"),
            "token_accuracy_teacher_forced": float(teacher_forced["token_accuracy"]),
            "loss_teacher_forced": float(teacher_forced["loss"]),
        }
        return report.metrics(
            primary=self.primary_metric,
            model=model_scores,
            baselines={"word_by_word": evaluation.summary(results["word_by_word"])},
            sacrebleu=results["translate"]["signatures"],
            validation={**evaluation.summary(validation), "sentences": len(validation_sources)},
            bleu_cased_by_source_length=by_length,
            sentences_per_second={"beam": speed["translate"], "greedy": speed["translate_greedy"]},
            test_sentences=len(sources),
            vocabulary={
                "units": f"subwords ({config.subword_model})" if preprocessor.subwords else "words",
                "size": {"source": len(preprocessor.source_vocabulary), "target": len(preprocessor.target_vocabulary)},
                "max_tokens": {"source": preprocessor.source_length, "target": preprocessor.target_length},
                "unknown_token_rate_test": preprocessor.unknown_rates([pair.source for pair in data.test],
                                                                      [pair.target for pair in data.test]),
                "apostrophe": preprocessor.apostrophe,
            },
        )

    def _write_predictions(self, path: Path, sources, references, hypotheses) -> None:
        beam, greedy, word_by_word = hypotheses["translate"], hypotheses["translate_greedy"], hypotheses["word_by_word"]
        for i in range(min(self.config.logged_examples, len(sources))):
            logger.info("source: %s | reference: %s | beam: %s | greedy: %s", sources[i], references[i][0], beam[i],
                        greedy[i])
        lines = ["source\treference\tbeam\tgreedy\tword_by_word"]
        lines += ["\t".join([source, " | ".join(refs), beam[i], greedy[i], word_by_word[i]])
                  for i, (source, refs) in enumerate(zip(sources, references))]
        atomic_write_text(path, "\n".join(lines) + "\n")

    # --- export and predict ---------------------------------------------------------------------
    def endpoints(self, model, preprocessor: Preprocessor):
        """Raw source strings [B] → {"translation": strings [B], "score": float32 [B]}: beam search
        (score = log-probability / length ** length_penalty) and greedy (summed log-probability)."""
        config = self.config
        translator = model_lib.Translator(model)
        max_length = config.max_target_tokens + 1  # words + END

        def translate(sentences):
            tokens, score = translator.beam(preprocessor.encode(sentences), max_length, config.beam_width,
                                            config.length_penalty)
            return {"translation": preprocessor.decode(tokens), "score": score}

        def translate_greedy(sentences):
            tokens, log_prob = translator.greedy(preprocessor.encode(sentences), max_length)
            return {"translation": preprocessor.decode(tokens), "score": log_prob}

        return {"translate": (translate, _STRINGS), "translate_greedy": (translate_greedy, _STRINGS)}

    def export_examples(self, data: TranslationData) -> dict[str, Sequence[Any]]:
        # A real sentence, an empty one, unknown words, and one 2,000-character word.
        examples = np.array([data.test_sources[0], "", "zzqx unknownword " * 3, "x" * 2000], dtype=object)
        return {"translate": [examples], "translate_greedy": [examples]}

    def write_samples(self, data: TranslationData, folder: Path) -> list[str]:
        sentences = data.test_sources[:3]
        atomic_write_text(Path(folder) / "sources.txt", "\n".join(sentences) + "\n")
        return sentences

    def predict_arguments(self, inputs: Sequence[str]) -> list[Any]:
        """Sentences → the endpoint's batch; an empty (or whitespace-only) sentence is a TaskError naming it."""
        export.refuse_empty_texts(list(inputs), list(inputs), "a sentence to translate")
        return [np.array(list(inputs), dtype=object)]

    def predict_results(self, inputs: Sequence[str], outputs) -> list[dict[str, Any]]:
        return [
            {"source": source, "translation": translation.decode("utf-8"),
             "score": float(score) if math.isfinite(score) else None}
            for source, translation, score in zip(inputs, outputs["translation"], outputs["score"])
        ]

    # --- benchmark ------------------------------------------------------------------------------
    def bench(self, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
        from tasks.translation import bench

        return bench.run(self, data_dir, workdir)


TASK = TranslationTask
