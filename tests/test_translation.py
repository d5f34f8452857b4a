"""Translation task pieces: pair reader, split, synthetic corpus, text helpers, BLEU, layers, model,
preprocessor (fit on train, save/load round trip), endpoints, bench."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from common import text
from common.config import ConfigError
from common.layers import SequenceAttention
from common.metrics import bleu
from common.preprocessor import preprocessor_dir
from common.task import TaskError
from data import DataError
from data import pairs as pair_reader
from data.synthetic import parallel
from tasks.translation import model as translation_model
from tasks.translation import callbacks, plots
from tasks.translation.config import Config
from tasks.translation.pipeline import Preprocessor
from tasks.translation.task import TranslationData, TranslationTask, translate_all


# --- pair reader -------------------------------------------------------------------------------------
def write(path: Path, content: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(content.encode(encoding))
    return path


def test_reader_handles_two_and_three_columns_blank_lines_empty_sides_and_duplicates(tmp_path):
    file = write(
        tmp_path / "fra.txt",
        "Go.\tVa !\n"
        "Hi.\tSalut !\n"
        "\n"
        "Hi.\tSalut !\n"  # exact duplicate: dropped
        "Hi.\tSalut.\n"  # same source, another target: a second reference
        " \tVide\n"  # empty side: skipped
        "Run!\tCours\u202f!\r\n",
    )
    result = pair_reader.read_pairs(file)
    assert [(p.source, p.target) for p in result.pairs] == [
        ("Go.", "Va !"), ("Hi.", "Salut !"), ("Hi.", "Salut."), ("Run!", "Cours\u202f!")
    ]
    assert result.statistics == {"lines": 7, "blank_lines": 1, "empty_side": 1, "duplicates": 1, "pairs": 4,
                                 "unique_sources": 3}
    swapped = pair_reader.read_pairs(tmp_path, direction="second-to-first")  # the folder's one .txt file
    assert swapped.pairs[0] == pair_reader.Pair("Va !", "Go.")
    (tmp_path / "three").mkdir()
    three = write(tmp_path / "three" / "fra.txt", "Go.\tVa !\tCC-BY 2.0 (France) #1\n\nHi.\tSalut !\tCC-BY #2\n")
    assert [(p.source, p.target) for p in pair_reader.read_pairs(three).pairs] == [("Go.", "Va !"), ("Hi.", "Salut !")]


@pytest.mark.parametrize(
    "content, message",
    [
        ("Go.\tVa !\nno tab here\n", r"fra.txt:2: found 1 tab-separated field"),
        ("Go.\tVa !\ta\tb\n", r"fra.txt:1: found 4 tab-separated field"),
        ("\n\t\n", r"no usable sentence pairs"),
    ],
)
def test_reader_rejects_malformed_files_naming_the_line(tmp_path, content, message):
    with pytest.raises(DataError, match=message):
        pair_reader.read_pairs(write(tmp_path / "fra.txt", content))


def test_reader_errors_for_encoding_missing_files_folders_and_direction(tmp_path):
    with pytest.raises(DataError, match="not UTF-8"):
        pair_reader.read_pairs(write(tmp_path / "latin.txt", "Ça\tva\n", encoding="latin-1"))
    with pytest.raises(DataError, match="does not exist"):
        pair_reader.read_pairs(tmp_path / "missing.txt")
    write(tmp_path / "second.txt", "a\tb\n")
    with pytest.raises(DataError, match="holds 2 candidate pair files"):
        pair_reader.read_pairs(tmp_path)
    with pytest.raises(DataError, match="direction='sideways'"):
        pair_reader.read_pairs(tmp_path / "second.txt", direction="sideways")


def test_split_keeps_every_source_sentence_in_one_split_and_is_seeded():
    pairs = [pair_reader.Pair(f"Sentence {i % 50}.", f"Phrase {i}.") for i in range(200)]
    pairs += [pair_reader.Pair(f"SENTENCE {i}.", f"Autre {i}.") for i in range(50)]  # same sources, other case
    train, validation, test = pair_reader.split_by_source(pairs, 0.1, 0.2, seed=3)
    assert len(train) + len(validation) + len(test) == len(pairs)
    keys = [{p.source.casefold() for p in split} for split in (train, validation, test)]
    assert not keys[0] & keys[2] and not keys[0] & keys[1] and not keys[1] & keys[2]
    assert len(keys[2]) == 10 and len(keys[1]) == 5
    again = pair_reader.split_by_source(pairs, 0.1, 0.2, seed=3)
    assert again[2] == test
    assert pair_reader.split_by_source(pairs, 0.1, 0.2, seed=4)[2] != test
    with pytest.raises(DataError, match="too few"):
        pair_reader.split_by_source(pairs[:2], 0.1, 0.2, seed=3)


# --- line-aligned parallel files (data/parallel_files.py) and read_corpus -----------------------------
def parallel_folder(folder: Path, sets: dict[str, dict[str, list[str]]]) -> Path:
    """Writes ``{set: {language: lines}}`` as ``set.language`` files (``.gz`` when the set name ends with it)."""
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    for name, languages in sets.items():
        for language, lines in languages.items():
            content = "".join(f"{line}\n" for line in lines).encode("utf-8")
            if name.endswith(".gz"):
                (folder / f"{name[:-3]}.{language}.gz").write_bytes(gzip.compress(content))
            else:
                (folder / f"{name}.{language}").write_bytes(content)
    return folder


def multi30k(folder: Path) -> Path:
    """The Multi30k layout: train/val/test in en, fr and de (test gzipped, as in its repository)."""
    english = [f"a dog number {i} runs." for i in range(20)]
    return parallel_folder(folder, {
        "train": {"en": english, "fr": [f"un chien numéro {i} court." for i in range(20)],
                  "de": [f"ein Hund Nummer {i} läuft." for i in range(20)]},
        "val": {"en": ["a cat sleeps.", "two cats sleep."], "fr": ["un chat dort.", "deux chats dorment."],
                "de": ["eine Katze schläft.", "zwei Katzen schlafen."]},
        "test_2016_flickr.gz": {"en": ["a bird sings.", "a dog number 3 runs."],
                                "fr": ["un oiseau chante.", "un chien numéro 3 court."],
                                "de": ["ein Vogel singt.", "ein Hund Nummer 3 läuft."]},
        "README": {"md": ["not a language"]},
    })


def test_parallel_folder_uses_its_official_splits_and_the_chosen_languages(tmp_path):
    folder = multi30k(tmp_path / "multi30k")
    with pytest.raises(DataError, match=r"holds 3 languages \['de', 'en', 'fr'\]; choose the pair"):
        pair_reader.read_corpus(folder)
    corpus = pair_reader.read_corpus(folder, source_language="en", target_language="fr")
    assert corpus.format == "parallel files" and corpus.languages == ("en", "fr")
    assert corpus.splits["train"][0] == pair_reader.Pair("a dog number 0 runs.", "un chien numéro 0 court.")
    assert [p.target for p in corpus.splits["validation"]] == ["un chat dort.", "deux chats dorment."]
    assert corpus.splits["test"][0] == pair_reader.Pair("a bird sings.", "un oiseau chante.")
    assert corpus.statistics["test"] == {"files": ["test_2016_flickr.en.gz", "test_2016_flickr.fr.gz"], "lines": 2,
                                         "blank_lines": 0, "pairs": 2}
    splits = pair_reader.complete_splits(corpus, 0.1, 0.1, seed=0)
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (20, 2, 2)
    # Official splits are read as published; the report says how many test sources training saw.
    assert splits.facts == {"splits_from": {"validation": "official", "test": "official"},
                            "test_sources_seen_in_training": 1}
    # One language given: the other is the only one left only when two are present.
    with pytest.raises(DataError, match="with 2 candidates left, set target_language too"):
        pair_reader.read_corpus(folder, source_language="de")
    two = parallel_folder(tmp_path / "two", {"train": {"fr": ["a", "b", "c"], "en": ["x", "y", "z"]}})
    assert pair_reader.read_corpus(two).languages == ("en", "fr")  # alphabetical: first-to-second = en → fr
    assert pair_reader.read_corpus(two, direction="second-to-first").languages == ("fr", "en")
    assert pair_reader.read_corpus(two, target_language="en").languages == ("fr", "en")
    with pytest.raises(DataError, match="source_language='es', but the languages present are \['en', 'fr'\]"):
        pair_reader.read_corpus(two, source_language="es")


def test_parallel_files_hold_out_what_the_folder_lacks_and_need_a_choice_between_test_sets(tmp_path):
    english = [f"sentence {i}." for i in range(40)]
    french = [f"phrase {i}." for i in range(40)]
    folder = parallel_folder(tmp_path / "wmt", {
        "train": {"en": english, "fr": french},
        "newstest2013": {"en": ["news 13."], "fr": ["nouvelles 13."]},
        "newstest2014": {"en": ["news 14."], "fr": ["nouvelles 14."]},
    })
    with pytest.raises(DataError, match=r"several test sets \['newstest2013', 'newstest2014'\] .* --set test_set=NAME"):
        pair_reader.read_corpus(folder)
    corpus = pair_reader.read_corpus(folder, validation_set="newstest2013", test_set="newstest2014")
    assert corpus.splits["validation"][0].source == "news 13." and corpus.splits["test"][0].source == "news 14."
    corpus = pair_reader.read_corpus(folder, test_set="newstest2014")  # no validation set left: held out of train
    splits = pair_reader.complete_splits(corpus, 0.25, 0.1, seed=1)
    assert splits.facts["splits_from"] == {"validation": "held out of train by source sentence", "test": "official"}
    assert len(splits.validation) == 10 and len(splits.train) == 30
    assert not {p.source for p in splits.train} & {p.source for p in splits.validation}
    with pytest.raises(DataError, match="test_set='newstest2099', but the sets in both 'en' and 'fr' are"):
        pair_reader.read_corpus(folder, test_set="newstest2099")
    # Only a training set: the tab-file policy, split by source.
    only = pair_reader.read_corpus(parallel_folder(tmp_path / "only", {"train": {"en": english, "fr": french}}))
    assert pair_reader.complete_splits(only, 0.1, 0.1, seed=0).facts["splits_from"]["test"].startswith("held out")
    # max_pairs: a seeded choice among the training pairs, in file order; official sets untouched.
    capped = pair_reader.read_corpus(folder, test_set="newstest2014", max_pairs=7, seed=2)
    numbers = [int(p.source.split()[1].rstrip(".")) for p in capped.splits["train"]]
    assert len(numbers) == 7 and numbers == sorted(numbers) and len(capped.splits["test"]) == 1
    assert capped.splits == pair_reader.read_corpus(folder, test_set="newstest2014", max_pairs=7, seed=2).splits


def test_parallel_files_must_stay_line_aligned(tmp_path):
    folder = parallel_folder(tmp_path / "short", {"train": {"en": ["a", "b", "c"], "fr": ["x", "y"]}})
    with pytest.raises(DataError, match=r"train.en has 3 lines but .*train.fr has 2; expected the same number"):
        pair_reader.read_corpus(folder)
    folder = parallel_folder(tmp_path / "long", {"train": {"en": ["a"], "fr": ["x", "y", "z", "w"]}})
    with pytest.raises(DataError, match=r"train.en has 1 lines but .*train.fr has 4"):
        pair_reader.read_corpus(folder)
    folder = parallel_folder(tmp_path / "blank", {"train": {"en": ["a", "", "c", " "], "fr": ["x", "", "", ""]}})
    with pytest.raises(DataError, match=r"train.fr:3: blank line, but line 3 of .*train.en is 'c'"):
        pair_reader.read_corpus(folder)
    # Blank on both sides is skipped; U+2028 / U+0085 inside a sentence do not end its line (str.splitlines
    # would split there and shift every later pair); a CRLF file reads like an LF one.
    folder = tmp_path / "ok"
    folder.mkdir()
    write(folder / "train.en", "one\u2028still one\r\n\r\ntwo\x85too\r\nthree\n")
    write(folder / "train.fr", "un\n\ndeux\ntrois\n")
    corpus = pair_reader.read_corpus(folder)
    assert [(p.source, p.target) for p in corpus.splits["train"]] == [
        ("one\u2028still one", "un"), ("two\x85too", "deux"), ("three", "trois")]
    assert corpus.statistics["train"]["blank_lines"] == 1
    write(folder / "train.fr", "un\n\nd\xe9ux\ntrois\n", encoding="latin-1")
    with pytest.raises(DataError, match="not UTF-8"):
        pair_reader.read_corpus(folder)
    (folder / "train.fr.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="both train.fr and train.fr.gz hold set 'train'"):
        pair_reader.read_corpus(folder)
    (folder / "train.fr").unlink()
    with pytest.raises(DataError, match="unreadable"):
        pair_reader.read_corpus(folder)


def test_read_corpus_keeps_the_tab_file_path_and_refuses_settings_that_do_not_apply(tmp_path):
    file = parallel.write(tmp_path, 120, seed=4)
    corpus = pair_reader.read_corpus(file, max_pairs=90, seed=4)
    # Exactly what the task did before read_corpus existed: read, seeded sample, split by source.
    import random

    pairs = pair_reader.read_pairs(file).pairs
    before = [pairs[i] for i in sorted(random.Random(4).sample(range(len(pairs)), 90))]
    assert corpus.splits == {"train": before} and corpus.languages is None
    splits = pair_reader.complete_splits(corpus, 0.1, 0.1, seed=4)
    assert (splits.train, splits.validation, splits.test) == pair_reader.split_by_source(before, 0.1, 0.1, 4)
    assert "test_sources_seen_in_training" not in splits.facts
    with pytest.raises(DataError, match=r"tab-separated pair file, to which \['source_language', 'test_set'\]"):
        pair_reader.read_corpus(file, source_language="en", test_set="test")
    folder = parallel_folder(tmp_path / "parallel", {"train": {"en": ["a", "b"], "fr": ["x", "y"]}})
    with pytest.raises(DataError, match=r"parallel files, to which \['tfds_dataset'\] do not apply"):
        pair_reader.read_corpus(folder, tfds_dataset="wmt14_translate/fr-en")


def test_reservoir_sample_is_seeded_ordered_and_uniform():
    assert pair_reader.reservoir_sample(iter(range(5)), None, seed=0) == [0, 1, 2, 3, 4]
    assert pair_reader.reservoir_sample(range(3), 10, seed=0) == [0, 1, 2]
    chosen = pair_reader.reservoir_sample(iter(range(1000)), 10, seed=7)
    assert len(chosen) == 10 and chosen == sorted(chosen) and chosen == pair_reader.reservoir_sample(range(1000), 10, 7)
    counts = np.zeros(10)
    for seed in range(2000):
        for item in pair_reader.reservoir_sample(range(10), 3, seed):
            counts[item] += 1
    assert np.all(np.abs(counts / 2000 - 0.3) < 0.05)  # every item kept with probability 3/10


def test_task_trains_on_a_parallel_folder(tmp_path):
    folder = multi30k(tmp_path / "multi30k")
    config = tiny_config(source_language="en", target_language="de")
    task = TranslationTask(config)
    data = task.load_data(folder, tmp_path / "work")
    assert data.info["format"] == "parallel files" and data.info["languages"] == ("en", "de")
    assert data.info["pairs"] == {"train": 20, "validation": 2, "test": 2}
    assert data.test_sources == ["a bird sings.", "a dog number 3 runs."]
    preprocessor = Preprocessor.fit(task, data, tmp_path / "work")
    assert "Hund" in preprocessor.target_vocabulary  # the output side keeps case (German nouns)
    model = task.build_model(data, preprocessor)
    inputs, targets = next(iter(task.datasets(data, preprocessor)[0]))
    assert np.isfinite(model.train_on_batch(inputs, targets, return_dict=True)["loss"])


# --- synthetic corpus --------------------------------------------------------------------------------
def test_synthetic_corpus_is_seeded_sized_and_follows_its_grammar():
    pairs = parallel.generate(300, seed=5)
    assert pairs == parallel.generate(300, seed=5)
    assert pairs != parallel.generate(300, seed=6)
    assert len({source for source, _ in pairs}) == 300
    lengths = [len(source.rstrip(".").split()) for source, _ in pairs]
    assert min(lengths) >= 3 and max(lengths) <= 20
    grammar = parallel.Grammar(5)
    # Agreement: the singular definite article is "le" before a masculine noun, "la" before a feminine one.
    for index, noun in enumerate(grammar.target_nouns[:20]):
        for source, target in pairs:
            words = target.lower().rstrip(".").split()
            if noun in words:
                position = words.index(noun)
                if words[position - 1] in ("le", "la"):
                    assert words[position - 1] == ("la" if grammar.feminine[index] else "le")
    # Word order: a one-adjective noun phrase is inverted ("the ADJ NOUN" → "le/la NOUN ADJ").
    clauses = [(None, {"subject": {"determiner": "definite", "adjectives": [0], "noun": 1, "plural": True},
                       "verb": 0, "object": None, "preposition": None})]
    source, target = grammar.source_words(clauses), grammar.target_words(clauses)
    assert source == ["the", grammar.source_adjectives[0], grammar.source_nouns[1] + "s", grammar.source_verbs[0]]
    adjective = grammar.target_adjectives[0] + ("e" if grammar.feminine[1] else "") + "s"
    assert target == ["les", grammar.target_nouns[1] + "s", adjective, grammar.target_verbs[0] + "nt"]


def test_synthetic_file_is_reused_only_with_the_same_parameters(tmp_path):
    path = parallel.write(tmp_path, 50, seed=1)
    first = path.read_text()
    assert pair_reader.read_pairs(path).statistics["pairs"] == 50
    stamp = path.stat().st_mtime_ns
    assert parallel.write(tmp_path, 50, seed=1) == path and path.stat().st_mtime_ns == stamp
    parallel.write(tmp_path, 50, seed=2)
    assert path.read_text() != first
    assert json.loads((tmp_path / "parameters.json").read_text())["seed"] == 2


# --- text helpers ------------------------------------------------------------------------------------
def test_tokenize_standardizes_case_punctuation_and_typographic_characters():
    assert text.tokenize(["Va !", "À l\u2019aide\u202f!", "Peut-être, « oui » ?", "", "  Hello   WORLD.  "]) == [
        ["va", "!"], ["à", "l'aide", "!"], ["peut-être", ",", "«", "oui", "»", "?"], [], ["hello", "world", "."]
    ]


def test_vocabulary_encode_and_decode_with_tensorflow_ops():
    words = text.fit_vocabulary([["b", "a", "b"], ["c", "a", "b"], ["d"]], max_size=7)
    assert words == ["b", "a", "c"]  # by count, then alphabetical; 4 reserved + 3 = 7
    vocabulary = text.full_vocabulary(words)
    assert vocabulary[: 4] == ["", "[UNK]", "[START]", "[END]"]
    lookup = text.lookup_layer(vocabulary)
    ids = text.encode(tf.constant(["A zz c", "b " * 9]), lookup, 6, add_start=True, add_end=True)
    np.testing.assert_array_equal(ids, [[2, 5, 1, 6, 3, 0], [2, 4, 4, 4, 4, 3]])
    reversed_ids = text.encode(tf.constant(["a b c", ""]), lookup, 5, reverse=True, empty_as_unknown=True)
    np.testing.assert_array_equal(reversed_ids, [[6, 4, 5, 0, 0], [1, 0, 0, 0, 0]])  # empty: one [UNK]
    inverse = text.lookup_layer(vocabulary, invert=True)
    decoded = text.decode(tf.constant([[2, 5, 1, 6, 3, 5], [4, 0, 5, 5, 5, 5]]), inverse).numpy()
    assert [d.decode() for d in decoded] == ["a [UNK] c", "b"]  # stops at the end marker or padding
    tokens = ["«", "oui", "»", ",", "dit-il", "."]
    assert text.join_tokens(tf.ragged.constant([tokens])).numpy()[0].decode() == "«oui», dit-il."
    with pytest.raises(ValueError, match="max_size=3"):
        text.fit_vocabulary([["a"]], max_size=3)
    with pytest.raises(ValueError, match="reserved tokens"):
        text.lookup_layer(["a", "b"])


# The detokeniser: known answers in French and English (punctuation, apostrophes, hyphens, numbers, quotes).
# Tatoeba's French writes a space before ! ? : and inside « » ("Tais-toi !"), its English none ("Shut up!").
DETOKENISER_CASES = [
    ("Tais-toi !", ["Tais-toi", "!"]),
    ("Shut up!", ["Shut", "up", "@@!"]),
    ("Est-il grand ?", ["Est-il", "grand", "?"]),
    ("« Oui », dit-il.", ["«", "Oui", "»", "@@,", "dit-il", "@@."]),
    ('He said "no".', ["He", "said", '"@@', "no", '@@"', "@@."]),
    ("J'ai 3,5 ans : c'est ça !", ["J'ai", "3", "@@,@@", "5", "ans", ":", "c'est", "ça", "!"]),
    ("It's $5.50 (about 5%)?!", ["It's", "$@@", "5", "@@.@@", "50", "(@@", "about", "5", "@@%", "@@)", "@@?",
                                 "@@!"]),
    ("Don't go — Tom's well-known.", ["Don't", "go", "—", "Tom's", "well-known", "@@."]),
]


@pytest.mark.parametrize("written, tokens", DETOKENISER_CASES)
def test_attached_punctuation_tokens_restore_the_spacing_as_written(written, tokens):
    assert text.tokenize([written], lowercase=False, attach=True) == [tokens]
    joined = text.join_tokens(tf.ragged.constant([tokens]), attach=True).numpy()[0].decode()
    assert joined == written


def test_attached_tokens_normalise_typographic_spaces_and_survive_stray_markers():
    assert text.tokenize(["Peut-être\u202f!  Va\u00a0!", "a@@b ?", ""], lowercase=False, attach=True) == [
        ["Peut-être", "!", "Va", "!"], ["ab", "?"], []]
    # A model may emit a marker at either end of a sentence: it never shows.
    joined = text.join_tokens(tf.ragged.constant([["@@.", "Oui", "(@@"]]), attach=True).numpy()[0].decode()
    assert joined == ". Oui ("
    # Off (every other task): lower-cased, fixed spacing rules, as before.
    assert text.tokenize(["Shut up!"]) == [["shut", "up", "!"]]
    assert text.tokenize(["Shut up!"], lowercase=False) == [["Shut", "up", "!"]]


# --- BLEU --------------------------------------------------------------------------------------------
def test_bleu_known_answers():
    # Unsmoothed by construction: 4/5, 3/4, 2/3, 1/2 n-gram precisions, equal lengths → (0.2) ** 0.25.
    scores = bleu.corpus_scores(["a b c d e"], [["a b c d f"]])
    assert scores["bleu"] == pytest.approx(100 * 0.2**0.25, abs=1e-3)
    assert scores["bleu_precisions"] == pytest.approx([80.0, 75.0, 66.6667, 50.0], abs=1e-3)
    assert bleu.corpus_scores(["The cat sat."], [["the cat sat ."]], lowercase=True)["bleu"] == pytest.approx(100)
    assert bleu.corpus_scores(["x y z w"], [["a b c d"]])["bleu"] == pytest.approx(0)
    # Several references, uneven counts: the second reference of sentence 1 matches exactly.
    # Cased (the translation headline) vs lower-cased: "Tom" is not "tom" unless case is ignored.
    assert bleu.corpus_scores(["tom sleeps well today ."], [["Tom sleeps well today ."]])["bleu"] == pytest.approx(
        100 * (4 / 5 * 3 / 4 * 2 / 3 * 1 / 2) ** 0.25, abs=1e-3)
    multi = bleu.corpus_scores(["a b c d", "e f g h"], [["q r s t", "a b c d"], ["e f g h"]])
    assert multi["bleu"] == pytest.approx(100) and "nrefs:var" in multi["bleu_signature"]
    assert "case:lc" in bleu.corpus_scores(["a"], [["a"]], lowercase=True)["bleu_signature"]
    with pytest.raises(ValueError, match="2 hypotheses but 1 reference lists"):
        bleu.corpus_scores(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="at least one reference"):
        bleu.corpus_scores(["a"], [[]])
    with pytest.raises(ValueError, match="No hypotheses"):
        bleu.corpus_scores([], [])


# --- attention layer, metric, model ------------------------------------------------------------------
def test_translation_scores_are_sacrebleu_cased_and_lowercased_with_all_references():
    import sacrebleu

    from tasks.translation import evaluation

    hypotheses = ["Tom est ici !", "je dors.", "Il pleut."]
    references = [["Tom est ici !", "Tom est là !"], ["Je dors."], ["Il pleut.", "Il pleut !"]]
    result = evaluation.scores(hypotheses, references)
    streams = [[r[0] for r in references], ["Tom est là !", None, "Il pleut !"]]
    assert result["bleu_cased"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, streams).score)
    assert result["bleu_lowercased"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, streams, lowercase=True).score)
    assert result["bleu_cased"] < result["bleu_lowercased"] == pytest.approx(100)  # only "je"/"Je" differs
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, streams).score)
    assert "case:mixed" in result["signatures"]["bleu_cased_signature"]
    assert "case:lc" in result["signatures"]["bleu_lowercased_signature"]
    assert result["exact_match"] == pytest.approx(1.0)  # standardised: case and spacing ignored


def test_label_smoothed_loss_known_answer_and_padding():
    logits = tf.random.stateless_normal([1, 3, 5], seed=[0, 2])
    loss, _ = translation_model.loss_and_metrics(label_smoothing=0.1)
    log_probs = tf.nn.log_softmax(logits[0]).numpy()
    expected = np.mean([-0.9 * log_probs[i, t] - 0.1 * log_probs[i].mean() for i, t in ((0, 4), (1, 3))])
    assert float(loss(tf.constant([[4, 3, 0]]), logits)) == pytest.approx(expected, rel=1e-5)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert restored.smoothing == pytest.approx(0.1)


@pytest.mark.parametrize("score", ["dot", "general", "additive"])
def test_attention_masks_memory_and_round_trips_its_config(score):
    layer = SequenceAttention(score=score, units=4, name="attention")
    query = tf.random.stateless_normal([2, 3, 6], seed=[1, 2])
    memory = tf.random.stateless_normal([2, 5, 6], seed=[3, 4])
    mask = tf.constant([[True, True, False, False, False], [False] * 5])
    context, weights = layer(query, memory, mask)
    assert context.shape == (2, 3, 6) and weights.shape == (2, 3, 5)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)
    assert np.all(weights.numpy()[0, :, 2:] == 0.0)  # masked memory steps get no weight
    np.testing.assert_allclose(weights.numpy()[1], 0.2, rtol=1e-5)  # fully masked row: uniform, no NaN
    np.testing.assert_allclose(context.numpy()[0], weights.numpy()[0, :, :2] @ memory.numpy()[0, :2],
                               rtol=1e-4, atol=1e-5)
    clone = SequenceAttention.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    clone(query, memory, mask)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(query, memory, mask)[0].numpy(), context.numpy(), rtol=1e-6)


def test_attention_rejects_bad_arguments():
    with pytest.raises(ValueError, match="score='cosine'"):
        SequenceAttention(score="cosine")
    with pytest.raises(ValueError, match="equal query and memory sizes"):
        SequenceAttention(score="dot")(tf.zeros([1, 2, 3]), tf.zeros([1, 2, 4]))


def test_masked_token_accuracy_known_answer():
    metric = translation_model.MaskedTokenAccuracy()
    y_true = tf.constant([[5, 6, 0], [7, 0, 0]])
    y_pred = tf.one_hot([[5, 1, 6], [7, 0, 0]], 8)  # 2 of 3 real tokens right; the padding is ignored
    metric.update_state(y_true, y_pred)
    assert float(metric.result()) == pytest.approx(2 / 3)


def test_word_by_word_baseline_learns_the_lexicon_not_the_order():
    baseline = translation_model.WordByWordBaseline.fit(
        [["big", "dog"], ["dog", "runs"], ["big", "cat"], ["cat", "runs"]],
        [["chien", "grand"], ["chien", "court"], ["chat", "grand"], ["chat", "court"]],
    )
    assert baseline.translate([["big", "dog", "runs", "unknown"]]) == [["grand", "chien", "court"]]
    assert translation_model.WordByWordBaseline(baseline.lexicon).translate([["cat"]]) == [["chat"]]


def tiny_config(**overrides):
    return Config.from_preset("tiny", {"synthetic_pairs": 200, **overrides})


@pytest.mark.parametrize("attention", ["none", "general", "additive"])
def test_step_by_step_decoder_matches_the_teacher_forced_model(attention):
    keras.utils.set_random_seed(0)
    model = translation_model.build_model(tiny_config(attention=attention, dropout=0.0), 30, 40)
    source = np.array([[5, 6, 7, 8], [9, 10, 0, 0]], np.int32)
    decoder_input = np.array([[2, 11, 12, 13], [2, 14, 15, 16]], np.int32)
    logits = model({"source": source, "decoder_input": decoder_input}).numpy()
    logits[:, :, [text.PAD_ID, text.START_ID]] = -1e9  # the step function forbids padding and START
    translator = translation_model.Translator(model)
    state = translator.encode(tf.constant(source))
    for position in range(4):
        log_probs, state = translator.step(tf.constant(decoder_input[:, position]), state)
        expected = tf.nn.log_softmax(logits[:, position]).numpy()
        np.testing.assert_allclose(log_probs.numpy(), expected, rtol=1e-4, atol=1e-4)


_DECODE_UNDER_JAX = """
import json, sys
import keras, numpy as np
from tasks.translation.model import Translator
source, found = np.load(sys.argv[1]), []
for path in sys.argv[2:]:
    translator = Translator(keras.saving.load_model(path))
    for tokens, score in (translator.greedy(source, 9), translator.beam(source, 9, 3, 0.6)):
        found.append([keras.ops.convert_to_numpy(tokens).tolist(), keras.ops.convert_to_numpy(score).tolist()])
print(json.dumps(found))
"""


def test_translator_decodes_the_same_under_jax_as_under_tensorflow(tmp_path):
    """Translator is keras.ops (issue 13): with random weights (tokens of every kind, unlike the tiny run's empty
    translations) greedy and beam search give the same tokens under JAX, and scores within float tolerance, for
    each attention score and both encoders."""
    import os
    import subprocess
    import sys

    pytest.importorskip("jax", reason="the JAX tests need tests/requirements.txt (pip install -r it)")
    from conftest import ROOT

    source = np.random.default_rng(0).integers(4, 30, size=(5, 7)).astype(np.int32)
    source[1, 4:], source[2, 1:] = 0, 0  # right padding, one single-word source
    np.save(tmp_path / "source.npy", source)
    paths, expected = [], []
    for attention, bidirectional in (("general", True), ("additive", False), ("none", True)):
        keras.utils.set_random_seed(3)
        config = tiny_config(attention=attention, bidirectional_encoder=bidirectional, dropout=0.0)
        model = translation_model.build_model(config, 30, 25)
        paths.append(tmp_path / f"{attention}.keras")
        model.save(paths[-1])
        translator = translation_model.Translator(model)
        expected += [translator.greedy(source, 9), translator.beam(source, 9, 3, 0.6)]
    environment = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", _DECODE_UNDER_JAX, *map(str, [tmp_path / "source.npy", *paths])],
                         cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert len(found) == len(expected) == 6
    for (tokens, score), (jax_tokens, jax_score) in zip(expected, found):
        assert jax_tokens == tokens.numpy().tolist()
        np.testing.assert_allclose(jax_score, score.numpy(), rtol=1e-5, atol=1e-5)
    assert len({tuple(row) for row in expected[1][0].numpy().tolist()}) > 1  # the sources translate differently


def test_model_round_trips_through_a_keras_file(tmp_path):
    model = translation_model.build_model(tiny_config(), 30, 40)
    loss, metrics = translation_model.loss_and_metrics()
    model.compile(optimizer="adam", loss=loss, metrics=metrics)
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    inputs = {"source": np.array([[5, 6, 0]], np.int32), "decoder_input": np.array([[2, 7]], np.int32)}
    np.testing.assert_allclose(loaded(inputs).numpy(), model(inputs).numpy(), rtol=1e-6)
    assert loaded.get_layer("attention").score == "general"


def test_masked_loss_ignores_padding():
    loss, _ = translation_model.loss_and_metrics()
    logits = tf.random.stateless_normal([1, 3, 5], seed=[0, 1])
    full = float(loss(tf.constant([[4, 3, 0]]), logits))
    expected = -np.mean([tf.nn.log_softmax(logits[0, i]).numpy()[t] for i, t in ((0, 4), (1, 3))])
    assert full == pytest.approx(expected, rel=1e-5)


# --- config ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override, message",
    [
        ({"attention": "cosine"}, "attention='cosine' is not allowed"),
        ({"beam_width": 0}, "beam_width=0 must be at least 1"),
        ({"test_fraction": 0.5, "validation_fraction": 0.45}, "at least 10%"),
        ({"max_vocabulary": 3}, "max_vocabulary=3"),
        ({"max_pairs": 0}, "max_pairs=0"),
        ({"lstm_units": 33}, "lstm_units=33 must be even"),
        ({"dropout": 1.0}, "dropout=1.0"),
        ({"label_smoothing": -0.1}, "label_smoothing=-0.1"),
    ],
)
def test_config_rejects_bad_values(override, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_preset("default", override)


# --- preprocessor, endpoints, bench ----------------------------------------------------------------
@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """An untrained model on the tiny synthetic corpus, Sutskever-style (reversed source, no attention)."""
    workdir = tmp_path_factory.mktemp("translation")
    config = tiny_config(attention="none", reverse_source=True, max_target_tokens=8)
    keras.utils.set_random_seed(config.seed)
    task = TranslationTask(config)
    data = task.load_data(None, workdir)
    preprocessor = Preprocessor.fit(task, data, workdir)
    model = task.build_model(data, preprocessor)
    return task, data, preprocessor, model, workdir


def test_preprocessor_fits_on_the_training_split_only(tmp_path):
    pair = pair_reader.Pair
    data = TranslationData(
        train=[pair("The big dog.", "Le grand chien."), pair("A dog.", "Un chien.")],
        validation=[pair("A cat.", "Un chat.")], test=[pair("The cat.", "Le chat.")],
        test_sources=["The cat."], test_references=[["Le chat."]],
    )
    preprocessor = Preprocessor.fit(TranslationTask(tiny_config()), data, tmp_path)
    assert "cat" not in preprocessor.source_vocabulary and "chat" not in preprocessor.target_vocabulary
    assert (preprocessor.source_length, preprocessor.target_length) == (4, 4)  # "the big dog ." is 4 tokens
    ids = preprocessor.encode(tf.constant(["The cat."])).numpy()[0]
    assert ids[1] == text.UNKNOWN_ID and ids.tolist() == [
        preprocessor.source_vocabulary.index("The"), 1, preprocessor.source_vocabulary.index("."), 0]
    assert preprocessor.lexicon["big"] == "Le"  # Dice 1, tied with "grand": the first by code point wins


def test_preprocessor_round_trips_with_identical_encodings(untrained, tmp_path):
    task, data, preprocessor, _, _ = untrained
    preprocessor.save(tmp_path / "preprocessor")
    loaded = Preprocessor.load(tmp_path / "preprocessor")
    assert loaded.get_state() == preprocessor.get_state() and loaded.reverse_source
    sentences = tf.constant([p.source for p in data.test[:5]] + ["", "Unknown WORDS, «here» !", "x " * 100])
    targets = tf.constant([p.target for p in data.test[:5]] + ["", "zz", "y " * 100])
    np.testing.assert_array_equal(loaded.encode(sentences), preprocessor.encode(sentences))
    np.testing.assert_array_equal(loaded.encode_target(targets), preprocessor.encode_target(targets))
    ids = preprocessor.encode_target(targets)
    np.testing.assert_array_equal(loaded.decode(ids[:, 1:]), preprocessor.decode(ids[:, 1:]))
    # A short training target, framed and decoded, reads exactly as written (case and spacing kept).
    short = next(p.target for p in data.train if len(preprocessor.target_tokens([p.target])[0])
                  <= preprocessor.target_length)
    decoded = loaded.decode(loaded.encode_target(tf.constant([short]))[:, 1:]).numpy()[0].decode()
    assert decoded == short and short[0].isupper()
    # The state of a run made before the tokenisation options (lower-cased, fixed spacing) still loads.
    old = {key: value for key, value in preprocessor.get_state().items()
           if key not in ("lowercase_source", "lowercase_target", "attach_target")}
    legacy = Preprocessor.from_state(old, tmp_path)
    assert legacy.lowercase_target and not legacy.attach_target
    with pytest.raises(TaskError, match="fitted by task 'translation', not 'sentiment'"):
        type("Other", (Preprocessor,), {"task": "sentiment"}).load(tmp_path / "preprocessor")


def test_translations_keep_case_and_the_spacing_of_the_training_targets(tmp_path):
    """A few memorised pairs with capitalised names: the serving functions (what the export runs) write
    "Tom" and "Marie" capitalised, French "!" after a space, English "?" attached."""
    pair = pair_reader.Pair
    names, verbs = ["Tom", "Marie", "Paris"], [("sleeps", "dort"), ("runs", "court"), ("sings", "chante")]
    train = [pair(f"{name} {en}.", f"{name} {fr} !") for name in names for en, fr in verbs]
    train += [pair(f"Does {name} sing?", f"{name} chante-t-il ?") for name in names]
    data = TranslationData(train=train, validation=train[:2], test=train[:2], test_sources=[train[0].source],
                           test_references=[[train[0].target]])
    config = tiny_config(embedding_dim=32, lstm_units=64, dropout=0.0, learning_rate=0.01, beam_width=2)
    keras.utils.set_random_seed(0)
    task = TranslationTask(config)
    preprocessor = Preprocessor.fit(task, data, tmp_path)
    assert "Tom" in preprocessor.target_vocabulary and "Tom" in preprocessor.source_vocabulary
    model = task.build_model(data, preprocessor)
    inputs, targets = preprocessor.arrays(train * 40)  # one epoch of 40 copies: no per-epoch overhead
    model.fit(inputs, targets, epochs=1, batch_size=12, verbose=0)
    sources = [p.source for p in train]
    for name, (function, signature) in task.endpoints(model, preprocessor).items():
        translations = translate_all(tf.function(function, input_signature=signature), sources, 16)
        assert translations == [p.target for p in train], name


def test_training_arrays_frame_targets_for_teacher_forcing(untrained):
    _, data, preprocessor, _, _ = untrained
    inputs, targets = preprocessor.arrays(data.train[:7])
    assert inputs["source"].shape == (7, preprocessor.source_length) and inputs["source"].dtype == np.int32
    assert inputs["decoder_input"].shape == targets.shape == (7, preprocessor.target_length + 1)
    assert np.all(inputs["decoder_input"][:, 0] == text.START_ID)
    np.testing.assert_array_equal(inputs["decoder_input"][:, 1:], targets[:, :-1])
    assert np.all((targets == text.END_ID).sum(axis=1) == 1)


def test_endpoints_translate_awkward_strings_like_the_evaluation(untrained):
    task, data, preprocessor, model, _ = untrained
    endpoints = task.endpoints(model, preprocessor)
    assert set(endpoints) == {"translate", "translate_greedy"}
    sentences = data.test_sources[:3] + ["", "qqqq zzzz " * 30, "x" * 2000]
    for name, (function, signature) in endpoints.items():
        translate = tf.function(function, input_signature=signature)
        outputs = translate(tf.constant(sentences))
        assert outputs["translation"].shape == (6,) and np.all(np.isfinite(outputs["score"].numpy()))
        # Batches of any size give the same translations (evaluation decodes in batches).
        batched = translate_all(translate, sentences, batch_size=4)
        assert batched == [t.decode() for t in outputs["translation"].numpy()]
    results = task.predict_results(["a", "b"], {"translation": np.array([b"x", b""]),
                                                "score": np.array([-1.5, np.nan], np.float32)})
    assert results == [{"source": "a", "translation": "x", "score": -1.5},
                       {"source": "b", "translation": "", "score": None}]


def test_bench_compares_batched_and_python_loop_beam_search(untrained):
    task, _, preprocessor, model, workdir = untrained
    (workdir / "checkpoints").mkdir(exist_ok=True)
    model.save(workdir / "checkpoints" / "best.keras")
    preprocessor.save(preprocessor_dir(workdir))
    result = task.bench(None, workdir)
    figures = result["figures"]
    assert figures["sentences"] == 10
    assert figures["identical_outputs_fraction"] == 1.0
    assert figures["speedup"] > 0 and not result["model_trained_in_this_run"]


def test_bench_refuses_a_checkpoint_without_its_preprocessor(tmp_path, untrained):
    task, _, _, model, _ = untrained
    (tmp_path / "checkpoints").mkdir()
    model.save(tmp_path / "checkpoints" / "best.keras")
    with pytest.raises(TaskError, match="has no fitted preprocessor beside it"):
        task.bench(None, tmp_path)


def test_bench_trains_in_an_empty_workdir_then_reuses_model_and_preprocessor(tmp_path):
    task = TranslationTask(tiny_config(epochs=1, bench_sentences=3, max_target_tokens=8))
    first = task.bench(None, tmp_path)
    assert first["model_trained_in_this_run"] and (preprocessor_dir(tmp_path) / "preprocessor.json").is_file()
    second = task.bench(None, tmp_path)
    assert not second["model_trained_in_this_run"] and second["figures"]["identical_outputs_fraction"] == 1.0


# --- attention picture, TensorBoard examples ------------------------------------------------------------
def test_attention_examples_follow_the_greedy_translation_and_sum_to_one(tmp_path, caplog):
    config = tiny_config(reverse_source=True, max_target_tokens=8)
    keras.utils.set_random_seed(config.seed)
    task = TranslationTask(config)
    data = task.load_data(None, tmp_path)
    preprocessor = Preprocessor.fit(task, data, tmp_path)
    model = task.build_model(data, preprocessor)
    sentences = data.test_sources[:2] + [""]
    examples = plots.attention_examples(model, preprocessor, sentences, max_length=9)
    greedy = tf.function(task.endpoints(model, preprocessor)["translate_greedy"][0])
    translations = [t.decode() for t in greedy(tf.constant(sentences))["translation"].numpy()]
    for sentence, translation, (source, generated, weights) in zip(sentences, translations, examples):
        # Reversed, as the encoder read it.
        assert source == (preprocessor.source_tokens([sentence])[0][::-1] or ["[UNK]"])
        assert weights.shape == (len(generated), len(source))
        np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=1e-5)
        assert len(generated) == 9 or generated[-1] == "[END]"
        ids = [preprocessor.target_vocabulary.index(word) for word in generated]
        assert preprocessor.decode(tf.constant([ids])).numpy()[0].decode() == translation
    assert plots.write_attention(tmp_path / "attention.png", model, preprocessor, sentences, 9)
    assert (tmp_path / "attention.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sizes = len(preprocessor.source_vocabulary), len(preprocessor.target_vocabulary)
    without = translation_model.build_model(tiny_config(attention="none"), *sizes)
    with caplog.at_level("INFO", logger="tasks.translation.plots"):
        assert not plots.write_attention(tmp_path / "none.png", without, preprocessor, sentences, 9)
    assert "no attention" in caplog.text and not (tmp_path / "none.png").exists()


def test_tensorboard_text_of_validation_translations_in_a_tiny_fit(tmp_path):
    config = tiny_config(tensorboard=True, max_target_tokens=8, logged_examples=2)
    keras.utils.set_random_seed(config.seed)
    task = TranslationTask(config)
    data = task.load_data(None, tmp_path)
    preprocessor = Preprocessor.fit(task, data, tmp_path)
    model = task.build_model(data, preprocessor)
    examples = callbacks.translation_examples(config, data.validation, preprocessor, tmp_path)
    train, _ = task.datasets(data, preprocessor)
    model.fit(train.take(2), epochs=2, callbacks=examples, verbose=0, shuffle=False)
    events = sorted((tmp_path / "logs" / "tensorboard" / callbacks.SUBFOLDER).glob("events.out.tfevents.*"))
    assert events, "no events file under logs/tensorboard/examples"
    tables = [(event.step, value.tensor.string_val[0].decode()) for path in events
              for event in tf.compat.v1.train.summary_iterator(str(path))
              for value in event.summary.value if value.tag == callbacks.TAG]
    assert [step for step, _ in tables] == [0, 1]  # one table per epoch, at Keras' epoch index
    rows = tables[1][1].splitlines()
    assert rows[0].startswith("Epoch 2:") and rows[2] == "| source | reference | greedy |" and len(rows) == 4 + 2
    sources, references = pair_reader.group_references(data.validation)
    assert rows[4].startswith(f"| {sources[0]} | {' / '.join(references[0])} | ")


def test_fit_adds_the_tensorboard_text_callback_only_when_tensorboard_is_on(untrained, monkeypatch):
    from common import training
    from common.examples import TextExamples

    _, data, preprocessor, model, workdir = untrained
    passed = []
    monkeypatch.setattr(training, "fit", lambda *args, extra_callbacks=None, **kwargs: passed.append(extra_callbacks))
    for tensorboard in (True, False):
        TranslationTask(tiny_config(tensorboard=tensorboard)).fit(model, data, preprocessor, workdir)
    assert [[type(c) for c in extra] for extra in passed] == [[TextExamples], []]
    assert passed[0][0].log_dir == workdir / "logs" / "tensorboard" / "examples"


def test_markdown_table_escapes_cell_separators():
    from common.examples import markdown_table

    table = markdown_table(["source", "reference", "greedy"], [["a | b", "x / y|z", ""]], "Epoch 3: t").splitlines()
    assert table[0] == "Epoch 3: t" and table[-1] == "| a \\| b | x / y\\|z | (empty) |"


@pytest.mark.real_data
def test_real_data_reads_tatoeba_and_a_short_training_reduces_the_loss(shared_data, tmp_path):
    file = shared_data / "tatoeba_fra_eng" / "fra.txt"
    result = pair_reader.read_pairs(file)
    assert result.statistics["pairs"] == 16_262 and result.statistics["duplicates"] == 3
    config = tiny_config(max_pairs=400)
    keras.utils.set_random_seed(config.seed)
    task = TranslationTask(config)
    data = task.load_data(file, tmp_path)
    assert data.info["pairs"]["train"] > 300
    preprocessor = Preprocessor.fit(task, data, tmp_path)
    assert len(preprocessor.target_vocabulary) > 300
    model = task.build_model(data, preprocessor)
    inputs, targets = next(iter(task.datasets(data, preprocessor)[0]))
    before = model.test_on_batch(inputs, targets, return_dict=True)["loss"]
    for _ in range(5):
        model.train_on_batch(inputs, targets)
    assert model.test_on_batch(inputs, targets, return_dict=True)["loss"] < before


def test_config_lists_the_attention_scores_of_the_layer():
    from common.layers import SCORES
    from tasks.translation import config

    assert config.SCORES == SCORES
