"""Seeded synthetic parallel corpus in the Tatoeba pair-file layout: the translation task's default.

A toy "English" → toy "French" grammar whose translation is a deterministic function of the source
sentence, but not word for word, so a model must read the source context:

- lexicon: 50 nouns (each with a target gender), 25 adjectives, 30 verbs (transitive and
  intransitive) as pronounceable pseudo-words (different sound inventories per side), plus real
  function words (the/a/some/this/these/my, prepositions, conjunctions; le/la/les, un/une/des, ...);
  about 200 source and 280 target word forms (small enough to learn on a CPU in minutes);
- agreement: the target determiner and adjectives agree in gender and number with the noun (the
  gender is only visible on the target noun, which comes after the determiner), the verb agrees in
  number with its subject;
- word order: adjectives follow the noun in the target ("the big red dog" → "le chien rouge grand",
  adjectives also reversed); a prepositional phrase moves in front of the verb; in a clause after
  "because" the verb goes to the end (German-style);
- lengths: 3–20 source words (one or two clauses, optional adjectives and prepositional phrase), so
  long sentences exist where a fixed-size encoding struggles and attention helps.

Files: ``pairs.txt`` (``source\\ttarget\\tattribution`` lines) and ``parameters.json`` (what the
file was generated with, so an existing file is reused only when the parameters match).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data.pairs import write_pairs
from data.synthetic import write_once

FILE_NAME = "pairs.txt"
VERSION = 2  # bump when the grammar changes, so old files are regenerated

SOURCE_DETERMINERS = {  # determiner → (singular, plural) source forms
    "definite": ("the", "the"),
    "indefinite": ("a", "some"),
    "demonstrative": ("this", "these"),
    "possessive": ("my", "my"),
}
TARGET_DETERMINERS = {  # determiner → (masculine singular, feminine singular, plural)
    "definite": ("le", "la", "les"),
    "indefinite": ("un", "une", "des"),
    "demonstrative": ("ce", "cette", "ces"),
    "possessive": ("mon", "ma", "mes"),
}
PREPOSITIONS = {"in": "dans", "on": "sur", "with": "avec", "near": "près de", "under": "sous",
                "behind": "derrière", "for": "pour", "without": "sans"}
CONJUNCTIONS = {"and": "et", "but": "mais", "because": "parce que"}  # "because": verb-final clause

SOURCE_SOUNDS = (list("bdfgklmnprstvz"), ["a", "e", "i", "o", "u", "oo", "ee", "ai"])
TARGET_SOUNDS = (list("bcdfjlmnprstv") + ["ch", "gu", "qu"], ["a", "e", "i", "o", "ou", "é", "è", "au", "on"])


def pseudo_words(rng: np.random.Generator, count: int, sounds, taken: set[str], syllables=(2, 3)) -> list[str]:
    """``count`` new words of ``syllables`` consonant+vowel syllables from ``sounds`` = (consonants, vowels),
    at least 4 letters, none already in ``taken`` (which grows); also used by data.synthetic.corpus."""
    consonants, vowels = sounds
    words: list[str] = []
    while len(words) < count:
        length = int(rng.integers(syllables[0], syllables[1] + 1))
        word = "".join(str(rng.choice(consonants)) + str(rng.choice(vowels)) for _ in range(length))
        if len(word) >= 4 and word not in taken:
            taken.add(word)
            words.append(word)
    return words


class Grammar:
    """The seeded lexicon and the deterministic translation rules."""

    def __init__(self, seed: int, nouns: int = 50, adjectives: int = 25, verbs: int = 30):
        rng = np.random.default_rng(seed)
        taken: set[str] = set()
        self.source_nouns = pseudo_words(rng, nouns, SOURCE_SOUNDS, taken)
        self.source_adjectives = pseudo_words(rng, adjectives, SOURCE_SOUNDS, taken)
        self.source_verbs = pseudo_words(rng, verbs, SOURCE_SOUNDS, taken)
        self.target_nouns = pseudo_words(rng, nouns, TARGET_SOUNDS, taken)
        self.target_adjectives = pseudo_words(rng, adjectives, TARGET_SOUNDS, taken)
        self.target_verbs = pseudo_words(rng, verbs, TARGET_SOUNDS, taken)
        self.feminine = rng.random(nouns) < 0.5
        self.transitive = np.arange(verbs) < (2 * verbs) // 3
        self.rng = rng

    # --- target morphology -------------------------------------------------------------------
    def _target_noun(self, noun: int, plural: bool) -> str:
        return self.target_nouns[noun] + ("s" if plural else "")

    def _target_adjective(self, adjective: int, feminine: bool, plural: bool) -> str:
        return self.target_adjectives[adjective] + ("e" if feminine else "") + ("s" if plural else "")

    def _target_verb(self, verb: int, plural: bool) -> str:
        return self.target_verbs[verb] + ("nt" if plural else "t")

    # --- sampling ------------------------------------------------------------------------------
    def _noun_phrase(self) -> dict:
        rng = self.rng
        adjective_count = int(rng.choice([0, 1, 2], p=[0.45, 0.35, 0.2]))
        return {
            "determiner": str(rng.choice(list(SOURCE_DETERMINERS))),
            "adjectives": [int(a) for a in rng.choice(len(self.source_adjectives), adjective_count, replace=False)],
            "noun": int(rng.integers(len(self.source_nouns))),
            "plural": bool(rng.random() < 0.4),
        }

    def _clause(self) -> dict:
        rng = self.rng
        verb = int(rng.integers(len(self.source_verbs)))
        clause = {"subject": self._noun_phrase(), "verb": verb, "object": None, "preposition": None}
        if self.transitive[verb]:
            clause["object"] = self._noun_phrase()
        if rng.random() < 0.4:
            clause["preposition"] = (str(rng.choice(list(PREPOSITIONS))), self._noun_phrase())
        return clause

    def sample(self) -> list[tuple[str | None, dict]]:
        clauses: list[tuple[str | None, dict]] = [(None, self._clause())]
        if self.rng.random() < 0.45:
            clauses.append((str(self.rng.choice(list(CONJUNCTIONS))), self._clause()))
        return clauses

    # --- rendering -----------------------------------------------------------------------------
    def _source_phrase(self, phrase: dict) -> list[str]:
        determiner = SOURCE_DETERMINERS[phrase["determiner"]][int(phrase["plural"])]
        adjectives = [self.source_adjectives[a] for a in phrase["adjectives"]]
        noun = self.source_nouns[phrase["noun"]] + ("s" if phrase["plural"] else "")
        return [determiner, *adjectives, noun]

    def _target_phrase(self, phrase: dict) -> list[str]:
        feminine, plural = bool(self.feminine[phrase["noun"]]), phrase["plural"]
        forms = TARGET_DETERMINERS[phrase["determiner"]]
        determiner = forms[2] if plural else forms[int(feminine)]
        # Adjectives follow the noun, in reverse order, agreeing in gender and number.
        adjectives = [self._target_adjective(a, feminine, plural) for a in reversed(phrase["adjectives"])]
        return [determiner, self._target_noun(phrase["noun"], plural), *adjectives]

    def source_words(self, clauses) -> list[str]:
        words: list[str] = []
        for conjunction, clause in clauses:
            if conjunction:
                words.append(conjunction)
            plural = clause["subject"]["plural"]
            verb = self.source_verbs[clause["verb"]] + ("" if plural else "s")
            words += self._source_phrase(clause["subject"]) + [verb]
            if clause["object"]:
                words += self._source_phrase(clause["object"])
            if clause["preposition"]:
                preposition, phrase = clause["preposition"]
                words += [preposition, *self._source_phrase(phrase)]
        return words

    def target_words(self, clauses) -> list[str]:
        words: list[str] = []
        for conjunction, clause in clauses:
            if conjunction:
                words += CONJUNCTIONS[conjunction].split()
            verb = [self._target_verb(clause["verb"], clause["subject"]["plural"])]
            subject = self._target_phrase(clause["subject"])
            obj = self._target_phrase(clause["object"]) if clause["object"] else []
            prepositional = []
            if clause["preposition"]:
                preposition, phrase = clause["preposition"]
                prepositional = PREPOSITIONS[preposition].split() + self._target_phrase(phrase)
            if conjunction == "because":  # verb-final subordinate clause
                words += subject + prepositional + obj + verb
            else:  # the prepositional phrase moves in front of the verb
                words += subject + prepositional + verb + obj
        return words


def _sentence(words: list[str]) -> str:
    text = " ".join(words) + "."
    return text[0].upper() + text[1:]


def generate(num_pairs: int, seed: int, min_words: int = 3, max_words: int = 20) -> list[tuple[str, str]]:
    """``num_pairs`` distinct (source, target) sentence pairs; the same seed gives the same corpus."""
    if num_pairs < 1:
        raise ValueError(f"num_pairs={num_pairs}: expected at least 1")
    grammar = Grammar(seed)
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    attempts = 0
    while len(pairs) < num_pairs:
        attempts += 1
        if attempts > 50 * num_pairs + 1000:
            raise RuntimeError(f"Could not sample {num_pairs} distinct sentences of {min_words}-{max_words} words")
        clauses = grammar.sample()
        source_words = grammar.source_words(clauses)
        if not min_words <= len(source_words) <= max_words:
            continue
        source = _sentence(source_words)
        if source in seen:
            continue
        seen.add(source)
        pairs.append((source, _sentence(grammar.target_words(clauses))))
    return pairs


def write(directory: Path, num_pairs: int, seed: int) -> Path:
    """Writes ``directory/pairs.txt`` unless it already holds a corpus with the same parameters."""
    parameters = {"generator": "data.synthetic.parallel", "version": VERSION, "num_pairs": num_pairs, "seed": seed}
    return write_once(Path(directory) / FILE_NAME, parameters, lambda path: write_pairs(
        path, generate(num_pairs, seed), attribution=f"synthetic corpus (seed {seed}), CC0"))
