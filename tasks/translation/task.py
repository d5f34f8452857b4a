"""Translation: encoder–decoder LSTM with attention, in-graph beam search, corpus BLEU (sacrebleu).

    python run.py translation            # synthetic default: test BLEU (beam 4) 99.9 vs 13.3 word-by-word baseline;
                                         # 6 min wall (5 min training, early stopping after 12 epochs) on 2 CPU cores shared with other jobs
    python run.py translation --preset tiny          # ~1 min, for tests (BLEU ≈ 0: two epochs of a tiny model)
    python run.py translation --data-dir ../shared/data/tatoeba_fra_eng/fra.txt --workdir runs/translation_fra
                                         # real English → French (Tatoeba), see the README for BLEU and time
    python run.py translation bench      # batched in-graph beam search vs a Python loop (uses runs/translation)
    python run.py translation predict --model runs/translation/export "The dog sleeps." "Hello!"

Data: a tab-separated pair file (Tatoeba/manythings layout, ``source\\ttarget[\\tattribution]``),
split by distinct source sentence (seeded); vocabularies fitted on the training split only.
Evaluation on the test split: teacher-forced loss and token accuracy; corpus BLEU and chrF
(sacrebleu, lower-cased, 13a tokenisation; signatures recorded) of greedy and beam decoding, all
references of a source sentence used; the same for a word-by-word dictionary baseline.
Export: SavedModel endpoints ``translate`` (beam search) and ``translate_greedy``: a batch of raw
source strings → {"translation": strings, "score": float32}. ``predict`` takes sentences as text.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from common import decoding, export as common_export, text
from common.io import atomic_write_text
from common.metrics import bleu
from common.task import Task, TaskData, TaskError
from common import training
from data import pairs as pair_reader
from data.synthetic import parallel
from tasks.translation import pipeline
from tasks.translation.config import Config
from tasks.translation.model import Translator, WordByWordBaseline, build_model, loss_and_metrics

logger = logging.getLogger(__name__)


class TranslationTask(Task):
    name = "translation"
    description = "Encoder–decoder LSTM with attention, in-graph beam search, sacrebleu BLEU"
    Config = Config
    primary_metric = "bleu"  # corpus BLEU of beam search on the test split (sacrebleu, case-insensitive)
    higher_is_better = True
    extra_packages = ("sacrebleu",)

    # --- data --------------------------------------------------------------------------------------
    def load_data(self, data_dir: Path | None, workdir: Path) -> TaskData:
        config = self.config
        if data_dir is None:
            path = parallel.write(Path(workdir) / "data", config.synthetic_pairs, config.seed)
            source = f"synthetic ({path})"
        else:
            path = Path(data_dir)
            source = str(path)
        pair_file = pair_reader.read_pairs(path, config.direction)
        records = pair_file.pairs
        if config.max_pairs and len(records) > config.max_pairs:
            chosen = sorted(random.Random(config.seed).sample(range(len(records)), config.max_pairs))
            records = [records[i] for i in chosen]
        train_pairs, validation_pairs, test_pairs = pair_reader.split_by_source(
            records, config.validation_fraction, config.test_fraction, config.seed
        )
        train_tokens = pipeline.tokenize_pairs(train_pairs)
        source_vocabulary = text.full_vocabulary(
            text.fit_vocabulary(train_tokens[0], config.max_vocabulary, config.min_count)
        )
        target_vocabulary = text.full_vocabulary(
            text.fit_vocabulary(train_tokens[1], config.max_vocabulary, config.min_count)
        )
        # Array widths come from the training data, capped by the config (no wasted padding).
        source_length = min(config.max_source_tokens, max(len(t) for t in train_tokens[0]))
        target_length = min(config.max_target_tokens, max(len(t) for t in train_tokens[1]))
        encode = lambda split_pairs, tokens=None: pipeline.encode_split(  # noqa: E731
            split_pairs, source_vocabulary, target_vocabulary, source_length, target_length,
            config.reverse_source, tokens,
        )
        train, validation, test = encode(train_pairs, train_tokens), encode(validation_pairs), encode(test_pairs)
        test_sources, test_references = pipeline.group_references(test_pairs)
        info = {
            "source": source,
            "path": pair_file.path,
            "direction": config.direction,
            "file_statistics": pair_file.statistics,
            "pairs": {"train": len(train_pairs), "validation": len(validation_pairs), "test": len(test_pairs)},
            "test_sources": len(test_sources),
            "vocabulary_size": {"source": len(source_vocabulary), "target": len(target_vocabulary)},
            "unknown_token_rate_test": {
                "source": pipeline.unknown_rate(test.source_tokens, source_vocabulary),
                "target": pipeline.unknown_rate(test.target_tokens, target_vocabulary),
            },
            "max_tokens": {"source": source_length, "target": target_length},
        }
        logger.info("Translation data: %s", info)
        return TaskData(
            train=pipeline.to_dataset(train, config.batch_size, shuffle=True, seed=config.seed),
            validation=pipeline.to_dataset(validation, config.batch_size, shuffle=False, seed=config.seed),
            test={"split": test, "sources": test_sources, "references": test_references},
            info=info,
            extras={
                "source_vocabulary": source_vocabulary,
                "target_vocabulary": target_vocabulary,
                "source_length": source_length,
                "target_length": target_length,
                "train": train,
            },
        )

    # --- model -------------------------------------------------------------------------------------
    def build_model(self, data: TaskData) -> keras.Model:
        model = build_model(
            self.config,
            source_vocabulary_size=len(data.extras["source_vocabulary"]),
            target_vocabulary_size=len(data.extras["target_vocabulary"]),
        )
        loss, metrics = loss_and_metrics()
        return training.compile_model(model, self.config, loss=loss, metrics=metrics)

    # --- decoding helpers --------------------------------------------------------------------------
    def _source_ids(self, sources: Sequence[str], data: TaskData) -> np.ndarray:
        return text.encode(
            text.tokenize(list(sources)), data.extras["source_vocabulary"], data.extras["source_length"],
            reverse=self.config.reverse_source,
        )

    def _decoders(self, model: keras.Model):
        """tf.functions: source ids [N, S] → tokens [N, L] (greedy and beam)."""
        translator = Translator(model)
        config = self.config
        max_length = config.max_target_tokens + 1  # words + END

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
        def greedy(source_ids):
            state = translator.encode(source_ids)
            tokens, _ = decoding.greedy_search(
                translator.step, state, tf.shape(source_ids)[0], text.START_ID, text.END_ID, max_length
            )
            return tokens

        @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32)])
        def beam(source_ids):
            state = translator.encode(source_ids)
            tokens, _ = decoding.beam_search(
                translator.step, state, tf.shape(source_ids)[0], text.START_ID, text.END_ID, max_length,
                beam_width=config.beam_width, length_penalty=config.length_penalty,
            )
            return tokens

        return translator, greedy, beam

    def _translate_ids(self, function, source_ids: np.ndarray, vocabulary: Sequence[str]) -> list[str]:
        hypotheses = []
        batch = self.config.decode_batch_size
        for start in range(0, len(source_ids), batch):
            tokens = function(tf.constant(source_ids[start : start + batch])).numpy()
            hypotheses += [text.detokenize_python(text.decode(row, vocabulary)) for row in tokens]
        return hypotheses

    # --- evaluation --------------------------------------------------------------------------------
    def evaluate(self, model: keras.Model, data: TaskData, workdir: Path) -> dict[str, Any]:
        test = data.test
        split: pipeline.EncodedSplit = test["split"]
        vocabulary = data.extras["target_vocabulary"]
        sources, references = test["sources"], test["references"]
        # Teacher-forced loss and token accuracy (gold previous tokens), all test pairs.
        teacher_forced = model.evaluate(
            pipeline.to_dataset(split, self.config.batch_size, shuffle=False, seed=0), return_dict=True, verbose=0
        )
        _, greedy, beam = self._decoders(model)
        source_ids = self._source_ids(sources, data)
        timings = {}
        hypotheses = {}
        for name, function in (("greedy", greedy), ("beam", beam)):
            start = time.perf_counter()
            hypotheses[name] = self._translate_ids(function, source_ids, vocabulary)
            timings[name] = len(sources) / (time.perf_counter() - start)
        train = data.extras["train"]
        baseline = WordByWordBaseline(train.source_tokens, train.target_tokens)
        hypotheses["word_by_word"] = [
            text.detokenize_python(tokens) for tokens in baseline.translate(text.tokenize(sources))
        ]
        scores = {name: bleu.corpus_scores(h, references, lowercase=True) for name, h in hypotheses.items()}
        standardized_references = [set(" ".join(t) for t in text.tokenize(r)) for r in references]

        def exact(hyps):
            tokens = text.tokenize(hyps)
            return float(np.mean([" ".join(t) in refs for t, refs in zip(tokens, standardized_references)]))

        # Long sentences are where a fixed-size encoding struggles: BLEU of beam search by length.
        lengths = np.array([len(t) for t in text.tokenize(sources)])
        by_length = {}
        for label, selection in (("1-10", lengths <= 10), ("11+", lengths > 10)):
            if selection.any():
                chosen = np.flatnonzero(selection)
                by_length[label] = bleu.corpus_scores(
                    [hypotheses["beam"][i] for i in chosen], [references[i] for i in chosen], lowercase=True
                )["bleu"]
        for i in range(min(5, len(sources))):
            logger.info("source: %s | reference: %s | beam: %s | greedy: %s",
                        sources[i], references[i][0], hypotheses["beam"][i], hypotheses["greedy"][i])
        lines = ["source\treference\tbeam\tgreedy\tword_by_word"]
        lines += ["\t".join([s, " | ".join(r), hypotheses["beam"][i], hypotheses["greedy"][i], hypotheses["word_by_word"][i]])
                  for i, (s, r) in enumerate(zip(sources, references))]
        atomic_write_text(Path(workdir) / "test_predictions.tsv", "\n".join(lines) + "\n")

        def summary(name):
            return {"bleu": scores[name]["bleu"], "chrf": scores[name]["chrf"],
                    "exact_match": exact(hypotheses[name]), "brevity_penalty": scores[name]["brevity_penalty"]}

        return {
            "bleu": scores["beam"]["bleu"],
            "bleu_greedy": scores["greedy"]["bleu"],
            "chrf": scores["beam"]["chrf"],
            "chrf_greedy": scores["greedy"]["chrf"],
            "token_accuracy_teacher_forced": float(teacher_forced["token_accuracy"]),
            "loss_teacher_forced": float(teacher_forced["loss"]),
            "model": {"beam": summary("beam"), "greedy": summary("greedy")},
            "baseline": {"word_by_word": summary("word_by_word")},
            "bleu_beam_by_source_length": by_length,
            "sentences_per_second": timings,
            "test_sentences": float(len(sources)),
            "sacrebleu": {"bleu_signature": scores["beam"]["bleu_signature"],
                          "chrf_signature": scores["beam"]["chrf_signature"]},
        }

    # --- export ------------------------------------------------------------------------------------
    def export(self, model: keras.Model, data: TaskData, path: Path) -> dict[str, Sequence[Any]]:
        config = self.config
        source_vocabulary = data.extras["source_vocabulary"]
        source_length = data.extras["source_length"]
        # Index 0 = mask "", 1 = [UNK], then [START], [END], words: the ids of common.text.
        source_lookup = keras.layers.StringLookup(
            vocabulary=list(source_vocabulary[2:]), mask_token=text.PAD_TOKEN, oov_token=text.UNKNOWN_TOKEN,
            name="source_lookup",
        )
        source_lookup(tf.constant([["a"]]))  # build before tracking
        target_words = tf.constant(list(data.extras["target_vocabulary"]))
        translator = Translator(model)
        max_length = config.max_target_tokens + 1
        reverse = config.reverse_source

        def to_ids(strings):
            tokens = tf.strings.split(text.standardize(strings))  # ragged [B, None]
            ids = tf.cast(source_lookup(tokens), tf.int32)[:, :source_length]
            dense = ids.to_tensor(default_value=0, shape=[None, source_length])
            if reverse:
                dense = tf.reverse_sequence(dense, tf.cast(ids.row_lengths(), tf.int32), seq_axis=1, batch_axis=0)
            return dense

        def to_strings(tokens):
            keep = tf.logical_and(tokens != text.PAD_ID, tf.logical_and(tokens != text.END_ID, tokens != text.START_ID))
            # After END the search writes 0, so keeping non-special ids keeps exactly the sentence.
            words = tf.ragged.boolean_mask(tf.gather(target_words, tokens), keep)
            return text.join_tokens(words)

        def translate(strings):
            source_ids = to_ids(strings)
            tokens, score = decoding.beam_search(
                translator.step, translator.encode(source_ids), tf.shape(source_ids)[0], text.START_ID,
                text.END_ID, max_length, beam_width=config.beam_width, length_penalty=config.length_penalty,
            )
            return {"translation": to_strings(tokens), "score": score}

        def translate_greedy(strings):
            source_ids = to_ids(strings)
            tokens, log_prob = decoding.greedy_search(
                translator.step, translator.encode(source_ids), tf.shape(source_ids)[0], text.START_ID,
                text.END_ID, max_length,
            )
            return {"translation": to_strings(tokens), "score": log_prob}

        signature = [tf.TensorSpec([None], tf.string)]
        common_export.write_archive(
            path,
            track=[model, source_lookup],
            endpoints={"translate": (translate, signature), "translate_greedy": (translate_greedy, signature)},
        )
        examples = np.array([data.test["sources"][0], "", "zzqx unknownword " * 3, "x" * 2000], dtype=object)
        return {"translate": [examples], "translate_greedy": [examples]}

    def predict(self, model_dir: Path, inputs: Sequence[str]) -> list[Any]:
        model_dir = Path(model_dir)
        if not (model_dir / "saved_model.pb").exists():
            raise TaskError(f"{str(model_dir)!r} is not an exported translation model; expected a folder with saved_model.pb")
        loaded = tf.saved_model.load(str(model_dir))
        if not hasattr(loaded, "translate"):
            raise TaskError(f"The SavedModel at {str(model_dir)!r} has no 'translate' endpoint; was it exported by this task?")
        outputs = loaded.translate(tf.constant(list(inputs)))
        translations = [t.decode("utf-8") for t in outputs["translation"].numpy()]
        return [
            {"source": source, "translation": translation, "score": float(score)}
            for source, translation, score in zip(inputs, translations, outputs["score"].numpy())
        ]

    # --- benchmark ---------------------------------------------------------------------------------
    def bench(self, data_dir: Path | None, workdir: Path) -> dict[str, Any]:
        """Batched in-graph beam search vs one sentence at a time in a Python loop: same outputs?

        Uses WORKDIR's best checkpoint when there is one (e.g. after ``run.py translation``), else
        trains first. Both sides decode the same test sentences with the same model and settings.
        """
        config = self.config
        data = self.load_data(data_dir, workdir)
        best = Path(workdir) / "checkpoints" / "best.keras"
        trained_now = False
        if best.exists():
            model = keras.saving.load_model(best)
            if model.get_layer("logits").units != len(data.extras["target_vocabulary"]):
                raise TaskError(f"Checkpoint {best} was trained on other data (vocabulary size differs); use another --workdir")
        else:
            model = self.build_model(data)
            self.fit(model, data, workdir)
            trained_now = True
        translator, _, beam = self._decoders(model)
        sources = data.test["sources"][: config.bench_sentences]
        source_ids = self._source_ids(sources, data)
        max_length = config.max_target_tokens + 1
        beam(tf.constant(source_ids[:2]))  # trace once outside the timing
        start = time.perf_counter()
        batched = np.concatenate(
            [beam(tf.constant(source_ids[i : i + config.decode_batch_size])).numpy()
             for i in range(0, len(source_ids), config.decode_batch_size)]
        )
        batched_seconds = time.perf_counter() - start

        encode = tf.function(translator.encode, input_signature=[tf.TensorSpec([None, None], tf.int32)])
        step = tf.function(translator.step)  # one compiled decoder step; the loop itself is Python
        python_beam = lambda ids: decoding.python_beam_search(  # noqa: E731
            step, encode(tf.constant(ids)), text.START_ID, text.END_ID, max_length, config.beam_width,
            config.length_penalty,
        )
        python_beam(source_ids[:1])  # trace once outside the timing
        start = time.perf_counter()
        looped = [python_beam(source_ids[i : i + 1])[0] for i in range(len(source_ids))]
        looped_seconds = time.perf_counter() - start
        looped = np.array(looped, dtype=np.int32)
        same = float(np.mean(np.all(batched == looped, axis=1)))
        figures = {
            "sentences": float(len(sources)),
            "batched_in_graph_sentences_per_second": len(sources) / batched_seconds,
            "python_loop_sentences_per_second": len(sources) / looped_seconds,
            "speedup": looped_seconds / batched_seconds,
            "identical_outputs_fraction": same,
            "beam_width": float(config.beam_width),
        }
        logger.info("Translation bench: %s", figures)
        return {"figures": figures, "model_trained_in_this_run": trained_now, "data": data.info}


TASK = TranslationTask
