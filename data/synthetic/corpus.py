"""Seeded synthetic plain-text corpus: the language_model task's default (a UTF-8 ``corpus.txt``).

One line = one to three sentences of a toy language built to reward memory beyond a few tokens:

- repeated vocabulary: each line draws a small cast (3 nouns, 2 verbs, 2 adjectives) from a lexicon of
  pronounceable pseudo-words (40 nouns, 16 verbs, 12 adjectives) and uses only that cast, so a word
  seen earlier in the line is likely to come back (an n-gram model only knows the lexicon's frequencies);
- agreement over distance: the verb agrees in number with its subject's head noun (singular verb = stem
  + "s", plural noun = stem + "s"), with a prepositional phrase and bracketed asides of the other number
  in between ("the dogs near the cat ( that the bird sees ) run .");
- nested brackets: asides in ``( )``, ``[ ]`` and ``{ }``, nested up to 3 deep, always closed in the
  right order; which bracket closes next depends on what was opened many tokens before.

Tokens are separated by single spaces (punctuation and brackets too), so the word level of the task
(common.text tokenisation) and the character level read the same units. ``check_line`` states the
rules as code, for tests and for judging generated text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from data.synthetic import write_once
from data.synthetic.parallel import pseudo_words

FILE_NAME = "corpus.txt"
VERSION = 1  # bump when the language changes, so old files are regenerated

BRACKETS = {"(": ")", "[": "]", "{": "}"}
CLOSING = {closing: opening for opening, closing in BRACKETS.items()}
DETERMINERS = ("the", "a", "this", "my")  # "a" and "this" only before singular nouns, "these" before plural
PLURAL_DETERMINERS = ("the", "some", "these", "my")
PREPOSITIONS = ("near", "with", "under", "behind")
_CONSONANTS = list("bdfgklmnprtvz")
_VOWELS = ["a", "e", "i", "o", "u", "oo", "ai"]


class Language:
    """The seeded lexicon and the sentence rules."""

    def __init__(self, seed: int, nouns: int = 40, verbs: int = 16, adjectives: int = 12):
        rng = np.random.default_rng(seed)
        taken: set[str] = set()
        # No stem ends in "s" (the number marker), none is a function word.
        sounds = (_CONSONANTS, _VOWELS)
        self.nouns = pseudo_words(rng, nouns, sounds, taken)
        self.verbs = pseudo_words(rng, verbs, sounds, taken)
        self.adjectives = pseudo_words(rng, adjectives, sounds, taken)

    # --- generation -----------------------------------------------------------------------------
    def line(self, rng: np.random.Generator) -> str:
        cast = {"nouns": list(rng.choice(self.nouns, 3, replace=False)),
                "verbs": list(rng.choice(self.verbs, 2, replace=False)),
                "adjectives": list(rng.choice(self.adjectives, 2, replace=False))}
        sentences = int(rng.choice([1, 2, 3], p=[0.4, 0.4, 0.2]))
        return " ".join(" ".join(self._sentence(rng, cast)) for _ in range(sentences))

    def _noun_phrase(self, rng, cast, plural: bool) -> list[str]:
        words = [str(rng.choice(PLURAL_DETERMINERS if plural else DETERMINERS))]
        if rng.random() < 0.4:
            words.append(str(rng.choice(cast["adjectives"])))
        noun = str(rng.choice(cast["nouns"]))
        return words + [noun + "s" if plural else noun]

    def _aside(self, rng, cast, depth: int) -> list[str]:
        """A bracketed aside: a relative clause "that NP VERB", possibly holding a deeper aside."""
        opening = str(rng.choice(list(BRACKETS)))
        plural = bool(rng.random() < 0.5)
        words = [opening, "that"] + self._noun_phrase(rng, cast, plural)
        if depth < 3 and rng.random() < 0.45:
            words += self._aside(rng, cast, depth + 1)
        words.append(self._verb(rng, cast, plural))
        return words + [BRACKETS[opening]]

    def _verb(self, rng, cast, plural: bool) -> str:
        stem = str(rng.choice(cast["verbs"]))
        return stem if plural else stem + "s"

    def _sentence(self, rng, cast) -> list[str]:
        plural = bool(rng.random() < 0.5)
        words = self._noun_phrase(rng, cast, plural)
        if rng.random() < 0.5:  # an attractor: a noun of the other number between subject and verb
            words += [str(rng.choice(PREPOSITIONS))] + self._noun_phrase(rng, cast, not plural)
        if rng.random() < 0.6:
            words += self._aside(rng, cast, depth=1)
        words.append(self._verb(rng, cast, plural))
        if rng.random() < 0.5:
            words += self._noun_phrase(rng, cast, bool(rng.random() < 0.5))
        return words + ["."]

    # --- the rules as code ----------------------------------------------------------------------
    def check_line(self, line: str) -> dict[str, bool]:
        """Which rules a line keeps: {"brackets": not empty, every bracket closed in order, "agreement": every
        main-clause verb agrees with its subject's head noun, "cast": at most 3 nouns, 2 verbs,
        2 adjectives}. For generated text: the share of lines keeping each rule measures structure."""
        tokens = line.split()
        return {"brackets": bool(tokens) and brackets_balanced(tokens), "agreement": self._agreement(tokens),
                "cast": self._cast(tokens)}

    def _number(self, word: str, stems: list[str]) -> str | None:
        if word in stems:
            return "singular" if stems is self.nouns else "plural"
        if word.endswith("s") and word[:-1] in stems:
            return "plural" if stems is self.nouns else "singular"
        return None

    def _agreement(self, tokens: list[str]) -> bool:
        """At least one sentence, and in each its first noun (the subject's head) and the first verb outside
        brackets agree."""
        depth, subject, verb, ok, sentences = 0, None, None, True, 0
        for token in tokens:
            if token in BRACKETS:
                depth += 1
            elif token in CLOSING:
                depth -= 1
            elif token == ".":
                ok = ok and subject is not None and verb is not None and subject == verb
                sentences += 1
                subject, verb = None, None
            elif depth == 0:
                if subject is None and self._number(token, self.nouns):
                    subject = self._number(token, self.nouns)
                elif subject is not None and verb is None and self._number(token, self.verbs):
                    verb = self._number(token, self.verbs)
        return ok and sentences > 0 and subject is None  # no unfinished sentence

    def _cast(self, tokens: list[str]) -> bool:
        def stems(words):
            return {t[:-1] if t.endswith("s") and t[:-1] in words else t for t in tokens} & set(words)

        return (len(stems(self.nouns)) <= 3 and len(stems(self.verbs)) <= 2
                and len(stems(self.adjectives)) <= 2)


def brackets_balanced(tokens: list[str]) -> bool:
    stack: list[str] = []
    for token in tokens:
        if token in BRACKETS:
            stack.append(token)
        elif token in CLOSING:
            if not stack or stack.pop() != CLOSING[token]:
                return False
    return not stack


def generate(lines: int, seed: int) -> list[str]:
    """``lines`` lines of the language of ``Language(seed)``; the same arguments give the same text."""
    language = Language(seed)
    rng = np.random.default_rng(seed + 1)
    return [language.line(rng) for _ in range(lines)]


def write(directory: Path, lines: int, seed: int) -> Path:
    """Writes ``directory/corpus.txt`` unless it already holds a corpus with the same parameters."""
    from common.io import atomic_write_text

    parameters = {"generator": "data.synthetic.corpus", "version": VERSION, "lines": lines, "seed": seed}
    return write_once(Path(directory) / FILE_NAME, parameters,
                      lambda path: atomic_write_text(path, "\n".join(generate(lines, seed)) + "\n"))
