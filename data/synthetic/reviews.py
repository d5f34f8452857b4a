"""Seeded synthetic movie reviews written in the aclImdb layout: the sentiment task's embedded default.

    write_aclimdb(root, ReviewSpec(...))   → root/aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt

The label is a function of the review's opinion clauses that word ORDER decides, so a bag of
words cannot read it off:
  * a clause has a polarity word (good / awful, loved / hated, a masterpiece / a mess) on an aspect;
  * an intensifier (very, extremely, an absolute ...) doubles it, a downtoner (somewhat) halves it;
  * a negation (not, never, hardly, wasn't, far from ...) flips it, often with words between the
    negation and the polarity word ("was not, to be honest, really very good"), so the bigram
    "not good" is not always there and "very good" occurs in positive and negative clauses alike;
  * in a contrast ("A, but B" / "A; however, B" / "although A, B") only B counts;
  * neutral filler sentences (plot, cast, when and where it was watched; some contain "not") pad
    the review to a length drawn log-uniformly from [min_words, max_words];
  * the label is the sign of the summed clause scores, then a fraction ``label_noise`` is flipped.
Negation is common (``negation_rate``), so a polarity word alone says little about the clause.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
from pathlib import Path

from common.io import atomic_directory

PARAMETERS_FILE = "synthetic.json"

ASPECTS = (
    "the acting", "the plot", "the script", "the story", "the dialogue", "the soundtrack", "the music",
    "the ending", "the cast", "the direction", "the cinematography", "the pacing", "the humour",
    "the lead actress", "the lead actor", "the villain", "the special effects", "the editing", "this film",
    "the whole movie", "the second half", "the opening scene", "the final act", "the romance",
)
ADJECTIVES = {
    +1: ("good", "great", "excellent", "wonderful", "brilliant", "superb", "enjoyable", "moving", "clever",
         "funny", "charming", "gripping", "beautiful", "delightful", "fantastic", "memorable", "convincing",
         "impressive"),
    -1: ("bad", "awful", "boring", "dull", "terrible", "weak", "clumsy", "tedious", "predictable", "bland",
         "poor", "silly", "lifeless", "messy", "forgettable", "unconvincing", "painful", "annoying"),
}
# (past tense, base form) of opinion verbs: "I loved ..." / "I did not love ...".
VERBS = {
    +1: (("loved", "love"), ("enjoyed", "enjoy"), ("liked", "like"), ("admired", "admire"), ("adored", "adore")),
    -1: (("hated", "hate"), ("disliked", "dislike"), ("resented", "resent"), ("loathed", "loathe"),
         ("regretted", "regret")),
}
NOUNS = {
    +1: ("masterpiece", "triumph", "delight", "gem", "treat", "joy to watch"),
    -1: ("disaster", "mess", "bore", "letdown", "failure", "waste of time"),
}
INTENSIFIERS = ("very", "extremely", "incredibly", "truly", "so", "remarkably", "exceptionally")
NOUN_INTENSIFIERS = ("an absolute", "a complete", "a total", "a real")
DOWNTONERS = ("somewhat", "rather", "a little", "slightly", "fairly")
# Words that may sit between a negation and what it negates; neutral on their own, and they also
# occur in clauses without negation, so bigrams such as "really good" carry no polarity.
GAPS = ("really", "exactly", "particularly", "quite", "all that", ", to be honest ,", ", i have to say ,",
        "in any way", "at all", "even remotely", ", frankly ,")
PLAIN_FILLERS = ("really", "quite", ", to be honest ,", ", i have to say ,", ", frankly ,", "honestly")
COPULA_NEGATIONS = {
    "was": ("was not", "was never", "was hardly", "wasn't", "was by no means", "was not at all"),
    "is": ("is not", "is never", "is hardly", "isn't", "is by no means", "is not at all"),
    "seemed": ("did not seem", "never seemed", "hardly seemed", "didn't seem"),
    "felt": ("did not feel", "never felt", "hardly felt", "didn't feel"),
}
VERB_NEGATIONS = ("did not", "didn't", "never", "could not", "couldn't", "did not really")
NOUN_NEGATIONS = ("was not", "wasn't", "was far from", "was hardly", "was never", "is not", "is far from")
CONTRASTS = ("but", "however", "although")

# Neutral filler: facts about the film and the viewing, no polarity words.
_PEOPLE = ("my brother", "my sister", "a friend", "my parents", "my wife", "my husband", "the kids", "a colleague")
_WHEN = ("last night", "on a rainy sunday", "years ago", "on a long flight", "last weekend", "after work")
_WHERE = ("at the cinema", "on television", "on a streaming service", "at a festival", "on an old dvd")
_PLACES = ("a small town", "new york", "paris", "a space station", "the desert", "a boarding school", "tokyo")
_PERIODS = ("the war", "the sixties", "a long winter", "the summer holidays", "the gold rush", "the near future")
_CHARACTERS = ("a young doctor", "a retired detective", "two sisters", "a lonely farmer", "a rookie pilot",
               "a travelling musician", "an old teacher", "a group of students")
_ACTIONS = ("returns home after many years", "tries to solve a crime", "falls in love", "loses a job",
            "searches for a missing friend", "opens a restaurant", "joins a band", "moves to the city")
_NAMES = ("john harris", "maria lopez", "kenji sato", "anna berg", "paul adams", "lucy grant", "omar haddad")
_SOURCES = ("a novel", "a true story", "a stage play", "a comic book", "an old radio show")
_FILLERS = (
    "i watched this {when} with {person} .",
    "i saw it {where} {when} .",
    "the film came out in {year} and runs about {minutes} minutes .",
    "it is set in {place} during {period} .",
    "the story follows {character} who {action} .",
    "{name} plays {character} , and {name2} plays the neighbour .",
    "the movie is based on {source} .",
    "most of it was shot in {place} .",
    "{person} had recommended it to me .",
    "i had not seen the original before this one .",
    "there is a scene in {place} where {character} {action} .",
    "i did not know anything about it before watching .",
    "it was directed by {name} , who also wrote the screenplay .",
    "the dvd includes a commentary track and a short documentary .",
    "it is the second film in a series of three .",
    "i will not spoil the ending here .",
    "the running time is {minutes} minutes , not counting the credits .",
)


@dataclasses.dataclass(frozen=True)
class ReviewSpec:
    train_reviews: int = 10_000  # reviews in train/ (half positive before label noise)
    test_reviews: int = 5_000  # reviews in test/
    min_words: int = 20  # review length is drawn log-uniformly from [min_words, max_words]
    max_words: int = 400
    negation_rate: float = 0.25  # probability that an opinion clause is negated
    contrast_rate: float = 0.25  # probability that an opinion sentence is "A, but B" (only B counts)
    label_noise: float = 0.03  # fraction of labels flipped after generation (caps accuracy near 1 - this)
    seed: int = 1234

    def __post_init__(self) -> None:
        if self.train_reviews < 2 or self.test_reviews < 2:
            raise ValueError(
                f"train_reviews={self.train_reviews}, test_reviews={self.test_reviews}: need at least 2 each"
            )
        if not 5 <= self.min_words <= self.max_words:
            raise ValueError(
                f"min_words={self.min_words}, max_words={self.max_words}: need 5 <= min_words <= max_words"
            )
        for name, upper in (("negation_rate", 1.0), ("contrast_rate", 1.0), ("label_noise", 0.5)):
            if not 0 <= getattr(self, name) < upper:
                raise ValueError(f"{name}={getattr(self, name)} must be in [0, {upper})")


@dataclasses.dataclass
class GeneratedReview:
    text: str
    label: int  # after label noise: the folder it is written to
    clean_label: int  # the sign of the clause scores, before noise
    score: float  # summed clause score (positive = positive review)


def _clause(rng: random.Random, polarity: int, negated: bool) -> tuple[list[str], float]:
    """One opinion clause as words, and its score (polarity x magnitude, sign flipped if negated)."""
    aspect = rng.choice(ASPECTS)
    kind = rng.random()
    magnitude = 1.0
    if kind < 0.55:  # copula + adjective: "the plot was not, frankly, very good"
        verb = rng.choice(tuple(COPULA_NEGATIONS))
        words = [aspect, rng.choice(COPULA_NEGATIONS[verb]) if negated else verb]
        if rng.random() < (0.6 if negated else 0.3):
            words.append(rng.choice(GAPS if negated else PLAIN_FILLERS))
        degree = rng.random()
        if degree < 0.35:
            words.append(rng.choice(INTENSIFIERS))
            magnitude = 2.0
        elif degree < 0.5:
            words.append(rng.choice(DOWNTONERS))
            magnitude = 0.5
        words.append(rng.choice(ADJECTIVES[polarity]))
    elif kind < 0.8:  # opinion verb: "i did not really enjoy the ending"
        past, base = rng.choice(VERBS[polarity])
        words = ["i"]
        if negated:
            negation = rng.choice(VERB_NEGATIONS)
            words += [negation, past if negation == "never" else base]
        else:
            if rng.random() < 0.35:
                words.append(rng.choice(("absolutely", "truly", "really", "totally")))
                magnitude = 2.0 if words[-1] != "really" else 1.0
            words.append(past)
        words.append(aspect)
    else:  # noun: "the ending was far from a complete disaster"
        words = [aspect, rng.choice(NOUN_NEGATIONS) if negated else rng.choice(("was", "is"))]
        if rng.random() < 0.4:
            words.append(rng.choice(NOUN_INTENSIFIERS))
            magnitude = 2.0
        else:
            words.append("a")
        words.append(rng.choice(NOUNS[polarity]))
    return words, (-1.0 if negated else 1.0) * polarity * magnitude


def _opinion_sentence(rng: random.Random, spec: ReviewSpec) -> tuple[list[str], float]:
    def random_clause(polarity=None):
        polarity = polarity if polarity is not None else rng.choice((-1, 1))
        return _clause(rng, polarity, rng.random() < spec.negation_rate)

    if rng.random() >= spec.contrast_rate:
        words, score = random_clause()
        return words + ["."], score
    first, first_score = random_clause()
    # The discounted clause mostly disagrees with the one that counts: that is what makes "but" matter.
    second, second_score = random_clause()
    for _ in range(20):
        if (second_score > 0) != (first_score > 0) or rng.random() < 0.2:
            break
        second, second_score = random_clause()
    connective = rng.choice(CONTRASTS)
    if connective == "but":
        words = first + [",", "but"] + second + ["."]
    elif connective == "however":
        words = first + [";", "however", ","] + second + ["."]
    else:
        words = ["although"] + first + [","] + second + ["."]
    return words, second_score


def _filler(rng: random.Random) -> list[str]:
    template = rng.choice(_FILLERS)
    text = template.format(
        when=rng.choice(_WHEN), person=rng.choice(_PEOPLE), where=rng.choice(_WHERE), year=rng.randint(1950, 2020),
        minutes=rng.randint(80, 190), place=rng.choice(_PLACES), period=rng.choice(_PERIODS),
        character=rng.choice(_CHARACTERS), action=rng.choice(_ACTIONS), name=rng.choice(_NAMES),
        name2=rng.choice(_NAMES), source=rng.choice(_SOURCES),
    )
    return text.split()


def _render(sentences: list[list[str]], rng: random.Random) -> str:
    """Words → text as people write it: capitals, attached punctuation, <br /> paragraph breaks."""
    rendered = []
    for sentence in sentences:
        text = " ".join(sentence)
        for mark in (" ,", " .", " ;"):
            text = text.replace(mark, mark[1:])
        text = text.replace(" i ", " I ")
        rendered.append(text[0].upper() + text[1:])
    out = rendered[0]
    for sentence in rendered[1:]:
        out += ("<br /><br />" if rng.random() < 0.12 else " ") + sentence
    return out


def _word_count(sentences: list[list[str]]) -> int:
    # Items may hold several words ("waste of time", "did not"); punctuation items are not words.
    return sum(len(item.split()) for s in sentences for item in s if item not in {",", ".", ";"})


def generate_review(rng: random.Random, spec: ReviewSpec, label: int) -> GeneratedReview:
    """A review whose clean label is ``label`` (1 positive, 0 negative), before label noise."""
    target = int(round(math.exp(rng.uniform(math.log(spec.min_words), math.log(spec.max_words)))))
    wanted = 1 if label == 1 else -1
    while True:
        count = 1 + sum(rng.random() < 0.5 for _ in range(target // 30))  # about one opinion per 60 words
        opinions = [_opinion_sentence(rng, spec) for _ in range(count)]
        score = sum(s for _, s in opinions)
        if score != 0 and (score > 0) == (wanted > 0):
            break
    sentences = [words for words, _ in opinions]
    while _word_count(sentences) < target:
        sentences.insert(rng.randint(0, len(sentences)), _filler(rng))
    # Drop filler (never an opinion) while over the maximum length.
    opinion_ids = {id(words) for words, _ in opinions}
    while _word_count(sentences) > spec.max_words:
        fillers = [i for i, s in enumerate(sentences) if id(s) not in opinion_ids]
        if not fillers:
            break
        sentences.pop(fillers[-1])
    return GeneratedReview(text=_render(sentences, rng), label=label, clean_label=label, score=score)


def generate_split(spec: ReviewSpec, count: int, seed: int) -> list[GeneratedReview]:
    rng = random.Random(seed)
    reviews = []
    for index in range(count):
        review = generate_review(rng, spec, label=index % 2)
        if rng.random() < spec.label_noise:
            review = dataclasses.replace(review, label=1 - review.label)
        reviews.append(review)
    return reviews


def _rating(rng: random.Random, label: int) -> int:
    return rng.randint(7, 10) if label == 1 else rng.randint(1, 4)  # aclImdb: pos >= 7, neg <= 4


MAX_REVIEWS_PER_MOVIE = 30  # aclImdb's cap
_URL = "http://www.imdb.com/title/tt{:07d}/usercomments"  # the urls_{pos,neg}.txt line format


def movie_numbers(count: int, seed: int) -> list[int]:
    """The movie of each of ``count`` reviews in generation order: runs of 1..30 reviews per movie, as aclImdb's
    urls files list them (so both label folders meet a movie's reviews in the same order). Own random stream:
    the review texts do not depend on it."""
    rng = random.Random(seed)
    movies: list[int] = []
    number = 1_000_000 + 10_000 * (seed % 100)
    while len(movies) < count:
        number += rng.randint(1, 97)  # distinct, increasing title numbers, like tt ids of unrelated films
        movies += [number] * rng.randint(1, MAX_REVIEWS_PER_MOVIE)
    return movies[:count]


def write_aclimdb(root: str | Path, spec: ReviewSpec) -> Path:
    """Writes ``root/aclImdb`` atomically (a crash leaves no half corpus); returns that folder.

    Each split also gets ``urls_pos.txt`` / ``urls_neg.txt`` in aclImdb's format (line N = the movie page of
    review id N), so the reader's grouping by movie runs on the default data. The synthetic movies carry no
    words of their own: validation grouped by movie and a random split should agree here.
    If ``root/aclImdb/synthetic.json`` already records the same spec, nothing is rewritten.
    """
    folder = Path(root) / "aclImdb"
    # layout 2: with the urls files (a folder from before them is rewritten).
    parameters = {**dataclasses.asdict(spec), "layout": 2}
    marker = folder / PARAMETERS_FILE
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == parameters:
                return folder
        except json.JSONDecodeError:
            pass

    def write(temporary: Path) -> None:
        rng = random.Random(spec.seed + 7)  # ratings only
        splits = (("train", spec.train_reviews, spec.seed), ("test", spec.test_reviews, spec.seed + 1))
        for split, count, seed in splits:
            counters = {0: 0, 1: 0}
            urls: dict[int, list[str]] = {0: [], 1: []}
            for label_name in ("neg", "pos"):
                (temporary / split / label_name).mkdir(parents=True)
            movies = movie_numbers(count, seed + 11)
            for review, movie in zip(generate_split(spec, count, seed), movies):
                label_name = "pos" if review.label == 1 else "neg"
                name = f"{counters[review.label]}_{_rating(rng, review.label)}.txt"
                counters[review.label] += 1
                urls[review.label].append(_URL.format(movie))
                (temporary / split / label_name / name).write_text(review.text + "\n", encoding="utf-8")
            for label, label_name in ((0, "neg"), (1, "pos")):
                (temporary / split / f"urls_{label_name}.txt").write_text("".join(u + "\n" for u in urls[label]))
        (temporary / "README").write_text(
            "Synthetic movie reviews in the aclImdb layout (data/synthetic/reviews.py); not real reviews.\n"
        )
        (temporary / PARAMETERS_FILE).write_text(json.dumps(parameters, indent=2) + "\n")

    atomic_directory(folder, write)
    return folder
