"""Readers of the IMDB review formats (aclImdb folder and archive, tfds imdb_reviews, Keras imdb.npz) and
the synthetic review generator. Fixtures are written into tmp_path by the helpers below."""

from __future__ import annotations

import datetime
import json
import os
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest

from data import DataError
from data import aclimdb
from data.synthetic import reviews as synthetic

REVIEWS = {
    "train": {"pos": ["A wonderful film.<br /><br />I loved it!", "Great acting, great story."],
              "neg": ["Dull and far too long.", "The plot made no sense at all."]},
    "test": {"pos": ["Charming and clever."], "neg": ["Awful. Just awful."]},
}


def movie_url(index: int) -> str:
    # The fixtures' movies: reviews 0-1 of each label are about movie 0, 2-3 about movie 1, and so on.
    return f"http://www.imdb.com/title/tt{index // 2:07d}/usercomments"


def write_aclimdb(root: Path, reviews=REVIEWS, extra_files: bool = True) -> Path:
    """root/aclImdb/<split>/<label>/<id>_<rating>.txt, plus the official archive's non-review files (with
    urls_{pos,neg}.txt: line N = the movie of review id N)."""
    folder = root / "aclImdb"
    for split, by_label in reviews.items():
        for label, texts in by_label.items():
            (folder / split / label).mkdir(parents=True, exist_ok=True)
            for index, text in enumerate(texts):
                rating = 9 if label == "pos" else 2
                (folder / split / label / f"{index}_{rating}.txt").write_text(text, encoding="utf-8")
            if extra_files:
                (folder / split / f"urls_{label}.txt").write_text("".join(movie_url(i) + "\n"
                                                                          for i in range(len(texts))))
        if extra_files:
            (folder / split / "labeledBow.feat").write_text("0 0:1\n")
    if extra_files:
        (folder / "train" / "unsup").mkdir(parents=True, exist_ok=True)
        (folder / "train" / "unsup" / "0_0.txt").write_text("unlabelled review")
        (folder / "README").write_text("readme")
    return folder


def texts_by_split(corpus: aclimdb.ReviewCorpus) -> dict[str, list[tuple[int, str]]]:
    return {split: sorted((r.label, r.text) for r in reviews) for split, reviews in corpus.splits.items()}


EXPECTED = {
    split: sorted([(1, t) for t in by_label["pos"]] + [(0, t) for t in by_label["neg"]])
    for split, by_label in REVIEWS.items()
}


# --- aclImdb folder ----------------------------------------------------------------------------------


def test_folder_reader_reads_both_splits_and_ignores_unsup_and_feature_files(tmp_path):
    folder = write_aclimdb(tmp_path)
    for path in (folder, tmp_path):  # the aclImdb folder itself, or its parent
        corpus = aclimdb.read_reviews(path)
        assert corpus.format == "aclImdb folder"
        assert texts_by_split(corpus) == EXPECTED
        assert corpus.notes == []
        assert corpus.sizes() == {"train": {"reviews": 4, "positive": 2}, "test": {"reviews": 2, "positive": 1}}


def test_folder_without_test_split_is_read_and_says_so(tmp_path):
    folder = write_aclimdb(tmp_path, {"train": REVIEWS["train"]})
    corpus = aclimdb.read_aclimdb_folder(folder)
    assert sorted(corpus.splits) == ["train"]
    assert any("no test split" in note for note in corpus.notes)


def test_missing_train_split_is_an_error(tmp_path):
    folder = write_aclimdb(tmp_path, {"test": REVIEWS["test"]}, extra_files=False)
    with pytest.raises(DataError, match="no train split"):
        aclimdb.read_aclimdb_folder(folder)


def test_missing_label_folder_is_an_error(tmp_path):
    folder = write_aclimdb(tmp_path, {"train": {"pos": ["good"]}})
    with pytest.raises(DataError, match=r"train/neg"):
        aclimdb.read_aclimdb_folder(folder)


def test_empty_review_file_is_named(tmp_path):
    folder = write_aclimdb(tmp_path)
    bad = folder / "train" / "neg" / "7_1.txt"
    bad.write_text("  \n")
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*empty review"):
        aclimdb.read_aclimdb_folder(folder)


def test_non_utf8_review_file_is_named(tmp_path):
    folder = write_aclimdb(tmp_path)
    bad = folder / "test" / "pos" / "8_10.txt"
    bad.write_bytes("Tr\u00e8s bien".encode("latin-1"))
    with pytest.raises(DataError, match=re.escape(str(bad)) + ".*not valid UTF-8.*byte 2"):
        aclimdb.read_aclimdb_folder(folder)


def test_unexpected_label_folder_is_an_error(tmp_path):
    folder = write_aclimdb(tmp_path)
    (folder / "train" / "neutral").mkdir()
    with pytest.raises(DataError, match="unexpected label folder 'neutral'"):
        aclimdb.read_aclimdb_folder(folder)


def test_unrecognised_folder_and_file_are_errors(tmp_path):
    with pytest.raises(DataError, match="found no IMDB reviews"):
        aclimdb.read_reviews(tmp_path)
    other = tmp_path / "reviews.csv"
    other.write_text("text,label\n")
    with pytest.raises(DataError, match="unsupported file type"):
        aclimdb.read_reviews(other)
    with pytest.raises(DataError, match="no such file"):
        aclimdb.read_reviews(tmp_path / "missing")


# --- aclImdb archive ---------------------------------------------------------------------------------


def make_archive(folder: Path, target: Path) -> Path:
    with tarfile.open(target, "w:gz") as archive:
        archive.add(folder, arcname="aclImdb")
    return target


def test_archive_reader_matches_folder_reader(tmp_path):
    folder = write_aclimdb(tmp_path / "extracted")
    archive = make_archive(folder, tmp_path / "aclImdb_v1.tar.gz")
    corpus = aclimdb.read_reviews(archive)
    assert corpus.format == "aclImdb archive"
    assert texts_by_split(corpus) == EXPECTED
    assert all(r.source.startswith(f"{archive}:aclImdb/") for r in corpus.splits["train"])


def test_reviews_are_grouped_by_the_movie_of_the_urls_files(tmp_path):
    folder = write_aclimdb(tmp_path / "extracted")
    for corpus in (aclimdb.read_reviews(folder), aclimdb.read_reviews(make_archive(folder, tmp_path / "a.tar.gz"))):
        groups = {(r.label, Path(r.source.split(":")[-1]).name): r.group for r in corpus.splits["train"]}
        # Line N of urls_<label>.txt is the movie of <label>/N_<rating>.txt.
        assert groups == {(1, "0_9.txt"): "tt0000000", (1, "1_9.txt"): "tt0000000",
                          (0, "0_2.txt"): "tt0000000", (0, "1_2.txt"): "tt0000000"}
        assert corpus.notes == []


def test_without_urls_files_reviews_are_grouped_by_blocks_of_ids_and_the_notes_say_so(tmp_path):
    folder = write_aclimdb(tmp_path, {"train": REVIEWS["train"]}, extra_files=False)
    (folder / "train" / "pos" / "0_9.txt").rename(folder / "train" / "pos" / f"{aclimdb.ID_BLOCK + 3}_9.txt")
    corpus = aclimdb.read_aclimdb_folder(folder)
    groups = sorted({r.group for r in corpus.splits["train"]})
    # A block holds the same ids of both label folders, so that a split by block keeps the labels balanced.
    assert groups == ["ids 0-249", "ids 250-499"]
    assert {r.label for r in corpus.splits["train"] if r.group == "ids 0-249"} == {0, 1}
    assert any("grouped by blocks of 250 consecutive ids of both label folders instead of by movie" in n
               for n in corpus.notes)


def test_bad_urls_files_are_named(tmp_path):
    folder = write_aclimdb(tmp_path)
    (folder / "train" / "urls_neg.txt").write_text(movie_url(0) + "\nnot a url\n")
    with pytest.raises(DataError, match=r"urls_neg.txt: line 2 is 'not a url'; expected an IMDb movie URL"):
        aclimdb.read_aclimdb_folder(folder)
    (folder / "train" / "urls_neg.txt").write_text(movie_url(0) + "\n")  # one line, two reviews
    with pytest.raises(DataError, match=r"urls_neg.txt: has 1 lines but .*1_2.txt has id 1"):
        aclimdb.read_aclimdb_folder(folder)


def test_archive_errors_name_the_member(tmp_path):
    folder = write_aclimdb(tmp_path / "extracted")
    (folder / "train" / "pos" / "5_8.txt").write_bytes(b"\xff\xfe broken")
    archive = make_archive(folder, tmp_path / "bad.tar.gz")
    with pytest.raises(DataError, match=r"bad\.tar\.gz:aclImdb/train/pos/5_8\.txt: not valid UTF-8"):
        aclimdb.read_reviews(archive)
    not_an_archive = tmp_path / "fake.tar.gz"
    not_an_archive.write_bytes(b"not a tar file at all")
    with pytest.raises(DataError, match="fake.tar.gz"):
        aclimdb.read_reviews(not_an_archive)


# --- tensorflow-datasets imdb_reviews ----------------------------------------------------------------


def write_tfds_imdb_reviews(data_dir: Path, reviews=REVIEWS, label_names=("neg", "pos")) -> Path:
    """The on-disk form tfds writes for imdb_reviews/plain_text/1.0.0 (TFRecord shards + metadata)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds
    from etils import epath

    folder = data_dir / "imdb_reviews" / "plain_text" / "1.0.0"
    folder.mkdir(parents=True)
    template = tfds.core.ShardedFileTemplate(data_dir=epath.Path(folder), dataset_name="imdb_reviews",
                                             filetype_suffix="tfrecord")
    split_infos = []
    for split, by_label in reviews.items():
        path = folder / f"imdb_reviews-{split}.tfrecord-00000-of-00001"
        count = 0
        with tf.io.TFRecordWriter(str(path)) as writer:
            for label, texts in by_label.items():
                for text in texts:
                    feature = {
                        "text": tf.train.Feature(bytes_list=tf.train.BytesList(value=[text.encode("utf-8")])),
                        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label_names.index(label)])),
                    }
                    writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
                    count += 1
        split_infos.append(tfds.core.SplitInfo(name=split, shard_lengths=[count], num_bytes=os.path.getsize(path),
                                               filename_template=template))
    features = tfds.features.FeaturesDict(
        {"text": tfds.features.Text(), "label": tfds.features.ClassLabel(names=list(label_names))}
    )
    tfds.folder_dataset.write_metadata(data_dir=folder, features=features, split_infos=split_infos,
                                       filename_template=template)
    return folder


def test_tfds_reader_reads_a_data_dir(tmp_path):
    version_dir = write_tfds_imdb_reviews(tmp_path / "tensorflow_datasets")
    for path in (tmp_path / "tensorflow_datasets", version_dir):
        corpus = aclimdb.read_reviews(path)
        assert corpus.format == "tfds imdb_reviews"
        assert texts_by_split(corpus) == EXPECTED
        assert all(r.group is None for r in corpus.splits["train"])  # no ids, no movies


def test_tfds_reader_rejects_other_label_names(tmp_path):
    reviews = {"train": {"neg": ["bad"], "pos": ["good"]}}
    write_tfds_imdb_reviews(tmp_path, reviews, label_names=("neg", "pos", "neutral"))
    with pytest.raises(DataError, match="label names"):
        aclimdb.read_tfds(tmp_path)


# --- Keras imdb.npz ----------------------------------------------------------------------------------

WORD_INDEX = {"the": 1, "film": 2, "was": 3, "great": 4, "awful": 5}


def write_npz(folder: Path, arrays: dict, word_index=WORD_INDEX) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "imdb.npz", **arrays)
    if word_index is not None:
        (folder / "imdb_word_index.json").write_text(json.dumps(word_index))
    return folder / "imdb.npz"


def ragged(*rows):
    array = np.empty(len(rows), dtype=object)
    array[:] = [list(r) for r in rows]
    return array


def test_keras_npz_reader_rebuilds_texts(tmp_path):
    path = write_npz(tmp_path, {
        "x_train": ragged([1, 2, 3, 4], [1, 2, 3, 5]), "y_train": np.array([1, 0]),
        "x_test": ragged([2, 3, 4], [2, 3, 5]), "y_test": np.array([1, 0]),
    })
    corpus = aclimdb.read_reviews(tmp_path)  # the folder holding imdb.npz
    assert corpus.format == "keras imdb.npz"
    assert texts_by_split(corpus) == {
        "train": [(0, "the film was awful"), (1, "the film was great")],
        "test": [(0, "film was awful"), (1, "film was great")],
    }
    assert any("rebuilt from word indices" in note for note in corpus.notes)
    assert aclimdb.read_reviews(path).splits.keys() == corpus.splits.keys()


def test_keras_npz_errors(tmp_path):
    good = {"x_train": ragged([1, 4], [1, 5]), "y_train": np.array([1, 0])}
    write_npz(tmp_path / "no_index", good, word_index=None)
    with pytest.raises(DataError, match="imdb_word_index.json"):
        aclimdb.read_reviews(tmp_path / "no_index")
    write_npz(tmp_path / "unknown_word", {**good, "x_train": ragged([1, 99], [1, 5])})
    with pytest.raises(DataError, match=r"x_train\[0\].*word index 99 at position 1"):
        aclimdb.read_reviews(tmp_path / "unknown_word")
    write_npz(tmp_path / "bad_label", {**good, "y_train": np.array([1, 3])})
    with pytest.raises(DataError, match=r"y_train\[1\]: label 3"):
        aclimdb.read_reviews(tmp_path / "bad_label")
    write_npz(tmp_path / "mismatch", {**good, "y_train": np.array([1, 0, 1])})
    with pytest.raises(DataError, match="2 reviews but y_train 3 labels"):
        aclimdb.read_reviews(tmp_path / "mismatch")


def test_keras_npz_refuses_pickled_objects_other_than_arrays(tmp_path):
    hostile = np.empty(2, dtype=object)
    hostile[:] = [datetime.date(2020, 1, 1), [1, 2]]  # unpickling a date needs the global datetime.date
    write_npz(tmp_path, {"x_train": hostile, "y_train": np.array([1, 0])})
    with pytest.raises(DataError, match="refusing to load datetime.date"):
        aclimdb.read_reviews(tmp_path)


# --- real data -----------------------------------------------------------------------------------------


@pytest.mark.real_data
def test_real_aclimdb_training_reviews_through_the_folder_reader(shared_data, tmp_path):
    archive_path = shared_data / "imdb" / "aclImdb_train.tar.gz"
    wanted = {"pos": 150, "neg": 150}
    with tarfile.open(archive_path, "r:gz") as archive:  # extract only 150 reviews per label
        for member in archive:
            parts = member.name.split("/")
            if len(parts) == 4 and parts[2] in wanted and wanted[parts[2]] > 0 and member.isfile():
                archive.extract(member, tmp_path, filter="data")
                wanted[parts[2]] -= 1
            if not any(wanted.values()):
                break
    corpus = aclimdb.read_reviews(tmp_path)
    assert corpus.sizes() == {"train": {"reviews": 300, "positive": 150}}
    assert any("no test split" in note for note in corpus.notes)
    for review in corpus.splits["train"]:
        rating = int(Path(review.source).stem.split("_")[1])  # <id>_<rating>.txt: pos >= 7, neg <= 4
        assert (rating >= 7) == (review.label == 1) and rating not in (5, 6)
        assert len(review.text) > 20
    assert any("<br />" in r.text for r in corpus.splits["train"])  # the raw text keeps IMDB's HTML breaks
    # This archive has no urls files: the reviews are grouped by blocks of consecutive ids, and the notes say so.
    assert any("grouped by blocks of 250 consecutive ids of both label folders" in note for note in corpus.notes)
    assert all(re.fullmatch(r"ids \d+-\d+", r.group) for r in corpus.splits["train"])


# --- synthetic generator ----------------------------------------------------------------------------


def test_synthetic_reviews_are_seeded_balanced_and_in_the_length_range():
    spec = synthetic.ReviewSpec(train_reviews=400, test_reviews=10, label_noise=0.0, seed=5)
    first = synthetic.generate_split(spec, 400, seed=5)
    assert [r.text for r in first] == [r.text for r in synthetic.generate_split(spec, 400, seed=5)]
    assert [r.text for r in first] != [r.text for r in synthetic.generate_split(spec, 400, seed=6)]
    assert sum(r.label for r in first) == 200
    words = [len(re.sub(r"<br />", " ", r.text).split()) for r in first]
    assert min(words) >= spec.min_words and max(words) <= spec.max_words
    assert max(words) > 250 and min(words) < 40  # the whole range is used
    assert all((r.score > 0) == (r.clean_label == 1) for r in first)


def test_synthetic_reviews_need_word_order():
    """The same polarity word appears in positive and negative reviews; negation and 'but' decide."""
    spec = synthetic.ReviewSpec(label_noise=0.0)
    reviews = synthetic.generate_split(spec, 600, seed=3)
    with_great = [r for r in reviews if re.search(r"\bgreat\b", r.text)]
    negative_share = sum(r.label == 0 for r in with_great) / len(with_great)
    assert negative_share > 0.2  # "great" is in many negative reviews: the word alone is not the label
    negated = [r.text for r in reviews if re.search(r"\b(not|never|hardly|wasn't|isn't|didn't)\b", r.text)]
    assert len(negated) > 100
    assert sum(", but " in r.text for r in reviews) > 30


def test_synthetic_label_noise_flips_about_that_fraction():
    spec = synthetic.ReviewSpec(label_noise=0.1)
    reviews = synthetic.generate_split(spec, 1000, seed=1)
    flipped = sum(r.label != r.clean_label for r in reviews)
    assert 60 <= flipped <= 140


def test_write_aclimdb_is_read_back_and_not_rewritten_when_unchanged(tmp_path):
    spec = synthetic.ReviewSpec(train_reviews=20, test_reviews=6, max_words=40, seed=2)
    folder = synthetic.write_aclimdb(tmp_path, spec)
    corpus = aclimdb.read_aclimdb_folder(folder)
    assert corpus.sizes()["train"]["reviews"] == 20 and corpus.sizes()["test"]["reviews"] == 6
    marker = folder / synthetic.PARAMETERS_FILE
    before = marker.stat().st_mtime_ns
    assert synthetic.write_aclimdb(tmp_path, spec) == folder
    assert marker.stat().st_mtime_ns == before
    synthetic.write_aclimdb(tmp_path, synthetic.ReviewSpec(train_reviews=24, test_reviews=6, max_words=40, seed=2))
    assert aclimdb.read_aclimdb_folder(folder).sizes()["train"]["reviews"] == 24


def test_synthetic_corpus_has_urls_files_in_the_real_format_and_movies_of_at_most_30_reviews(tmp_path):
    spec = synthetic.ReviewSpec(train_reviews=300, test_reviews=20, max_words=40, seed=3)
    folder = synthetic.write_aclimdb(tmp_path, spec)
    for label in ("pos", "neg"):
        lines = (folder / "train" / f"urls_{label}.txt").read_text().splitlines()
        assert len(lines) == len(list((folder / "train" / label).glob("*.txt")))
        assert all(re.fullmatch(r"http://www\.imdb\.com/title/tt\d{7}/usercomments", line) for line in lines)
    corpus = aclimdb.read_aclimdb_folder(folder)
    assert corpus.notes == [] and all(r.group.startswith("tt") for r in corpus.splits["train"])
    sizes = {}
    for review in corpus.splits["train"]:
        sizes[review.group] = sizes.get(review.group, 0) + 1
    assert max(sizes.values()) <= synthetic.MAX_REVIEWS_PER_MOVIE and 10 <= len(sizes) <= 300
    # The texts do not depend on the movies: the same as generate_split's, in the same label folders.
    generated = sorted((r.label, r.text) for r in synthetic.generate_split(spec, 300, spec.seed))
    assert sorted((r.label, r.text) for r in corpus.splits["train"]) == generated


def test_review_spec_rejects_bad_values():
    with pytest.raises(ValueError, match="min_words"):
        synthetic.ReviewSpec(min_words=50, max_words=40)
    with pytest.raises(ValueError, match="label_noise"):
        synthetic.ReviewSpec(label_noise=0.5)


def test_download_happens_only_when_asked_and_is_read_back(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from tasks.sentiment.config import Config
    from tasks.sentiment.task import SentimentTask

    calls = []

    class FakeBuilder:  # stands in for the network: writes what tfds would have prepared
        def __init__(self, name, data_dir):
            calls.append((name, data_dir))
            self.data_dir = Path(data_dir)

        def download_and_prepare(self):
            by_label = {"neg": [f"a dull film number {i}" for i in range(20)],
                        "pos": [f"a wonderful film number {i}" for i in range(20)]}
            reviews = {split: by_label for split in ("train", "test")}
            write_tfds_imdb_reviews(self.data_dir, reviews)

    monkeypatch.setattr(tfds, "builder", FakeBuilder)
    task = SentimentTask(Config.from_preset("tiny"))
    task.load_data(None, tmp_path / "synthetic")  # the default: no download
    assert calls == []
    task.download = True
    data = task.load_data(None, tmp_path / "work")
    assert calls == [("imdb_reviews/plain_text", str(tmp_path / "work" / "downloads"))]
    assert data.info["source"] == "tfds imdb_reviews (downloaded)"
    assert len(data.train) + len(data.validation) == 40 and len(data.test) == 40 and data.evaluated_on == "test"


def test_a_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    class Offline:
        def __init__(self, name, data_dir):
            pass

        def download_and_prepare(self):
            raise ConnectionError("no route to host")

    monkeypatch.setattr(tfds, "builder", Offline)
    with pytest.raises(DataError, match="Downloading imdb_reviews into .* failed .*no route to host.*--data-dir"):
        aclimdb.download_tfds_imdb(tmp_path)
