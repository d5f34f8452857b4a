"""tensorflow-datasets sources (data/tfds_sources.py): ted_hrlr_translate, wmt14_translate and coco_captions
read from local tfds data dirs, and --download up to the network call. Offline: every fixture is a tiny
dataset written here by tfds' own writer (AdhocBuilder) with the real dataset's features, or by the real
ted_hrlr_translate builder from a fake extracted archive."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from data import DataError
from data import pairs as pair_reader
from data import tfds_sources

tfds = pytest.importorskip("tensorflow_datasets")


def store(data_dir: Path, full_name: str, version: str, splits: dict[str, list[dict]], supervised_keys=None) -> Path:
    """Writes ``splits`` as the tfds dataset ``full_name`` (NAME/CONFIG) under ``data_dir``, with the
    features of the real dataset (built from its class: no download)."""
    from tensorflow_datasets.core import dataset_info
    from tensorflow_datasets.core.dataset_builders import adhoc_builder

    name, config = full_name.split("/")
    features = tfds.builder(full_name, data_dir=str(data_dir / "_features")).info.features

    class Fixture(adhoc_builder.AdhocBuilder, skip_registration=True):
        def _info(self):
            return dataset_info.DatasetInfo(builder=self, description="test fixture", features=self._feature_spec,
                                            supervised_keys=supervised_keys)

    builder = Fixture(name=name, config=config, version=version, features=features, data_dir=str(data_dir),
                      split_datasets={split: list(enumerate(examples)) for split, examples in splits.items()})
    builder.download_and_prepare()
    return Path(builder.data_dir)


def sentences(prefix: str, count: int, first: str, second: str) -> list[dict]:
    return [{first: f"{first} {prefix} sentence {i}", second: f"{second} {prefix} sentence {i}"} for i in range(count)]


@pytest.fixture(scope="module")
def ted(tmp_path_factory) -> Path:
    """A data dir with ted_hrlr_translate/pt_to_en: 12 / 3 / 4 pairs, plus a blank example and one empty on
    one side (skipped and counted, not refused: the user cannot fix a published dataset)."""
    data_dir = tmp_path_factory.mktemp("tfds_ted")
    train = sentences("train", 12, "pt", "en") + [{"pt": "", "en": ""}, {"pt": "só isto", "en": "  "}]
    store(data_dir, "ted_hrlr_translate/pt_to_en", "1.0.0",
          {"train": train, "validation": sentences("val", 3, "pt", "en"), "test": sentences("test", 4, "pt", "en")},
          supervised_keys=("pt", "en"))
    return data_dir


def test_ted_is_read_with_its_official_splits_in_its_own_direction(ted):
    corpus = pair_reader.read_corpus(ted)
    assert corpus.languages == ("pt", "en") and corpus.format == "tfds ted_hrlr_translate/pt_to_en/1.0.0"
    assert {split: len(pairs) for split, pairs in corpus.splits.items()} == {"train": 12, "validation": 3, "test": 4}
    # File order is the order tfds wrote (its own hashing), identical on every read.
    assert corpus.splits == pair_reader.read_corpus(ted / "ted_hrlr_translate").splits
    assert all(p.source.startswith("pt ") and p.target.startswith("en ") for p in corpus.splits["train"])
    assert corpus.statistics["train"] == {"examples": 14, "blank_pairs": 1, "empty_side": 1, "pairs": 12}
    splits = pair_reader.complete_splits(corpus, 0.1, 0.1, seed=0)
    assert splits.facts == {"splits_from": {"validation": "official", "test": "official"},
                            "test_sources_seen_in_training": 0}
    reverse = pair_reader.read_corpus(ted, direction="second-to-first")
    assert reverse.languages == ("en", "pt") and reverse.splits["test"][0].source.startswith("en ")
    assert pair_reader.read_corpus(ted, target_language="pt").languages == ("en", "pt")
    # max_pairs caps training only, a seeded choice kept in file order; official splits stay whole.
    capped = pair_reader.read_corpus(ted, max_pairs=5, seed=3)
    order = {pair: i for i, pair in enumerate(corpus.splits["train"])}
    assert len(capped.splits["train"]) == 5 and len(capped.splits["test"]) == 4
    assert [order[p] for p in capped.splits["train"]] == sorted(order[p] for p in capped.splits["train"])
    assert capped.splits == pair_reader.read_corpus(ted, max_pairs=5, seed=3).splits
    with pytest.raises(DataError, match="source_language='fr', but the languages present are \\['pt', 'en'\\]"):
        pair_reader.read_corpus(ted, source_language="fr")
    with pytest.raises(DataError, match="validation_set'\\] do not apply"):
        pair_reader.read_corpus(ted, validation_set="newstest2013")


def test_batched_tfrecord_parsing_reads_what_tfds_decodes(ted):
    """The fast path (TFRecord shards + tf.io.parse_example) against tfds' own as_dataset decoding."""
    (found,) = tfds_sources.find(ted, tfds_sources.TRANSLATION_DATASETS)
    builder = tfds_sources._builder(found)
    for split in ("train", "test"):
        fast = [dict(zip(b, values)) for b in tfds_sources._string_batches(builder, split, ("pt", "en"), "x")
                for values in zip(*(b[key] for key in b))]
        slow = [dict(zip(b, values)) for b in tfds_sources._examples(builder, split, "x", batch=5)
                for values in zip(*(b[key] for key in b))]
        assert fast == slow and len(fast) == {"train": 14, "test": 4}[split]


def test_several_wmt14_pairs_in_one_data_dir_need_tfds_dataset(tmp_path):
    for pair in ("fr-en", "de-en"):
        language = pair[:2]
        store(tmp_path, f"wmt14_translate/{pair}", "1.0.0",
              {"train": sentences("train", 6, language, "en"), "validation": sentences("val", 2, language, "en"),
               "test": sentences("test", 2, language, "en")}, supervised_keys=(language, "en"))
    with pytest.raises(DataError, match=r"several tfds translation datasets \['wmt14_translate/de-en', "
                                        r"'wmt14_translate/fr-en'\]; choose one with --set tfds_dataset"):
        pair_reader.read_corpus(tmp_path)
    corpus = pair_reader.read_corpus(tmp_path, tfds_dataset="wmt14_translate/fr-en")
    assert corpus.languages == ("fr", "en") and len(corpus.splits["train"]) == 6
    with pytest.raises(DataError, match="no tfds translation dataset 'wmt14_translate/ru-en'"):
        pair_reader.read_corpus(tmp_path, tfds_dataset="wmt14_translate/ru-en")
    # One pair's folder given directly is unambiguous.
    assert pair_reader.read_corpus(tmp_path / "wmt14_translate" / "de-en").languages == ("de", "en")


def test_the_newest_version_is_read_and_a_damaged_dataset_is_a_data_error(tmp_path):
    store(tmp_path, "ted_hrlr_translate/pt_to_en", "1.0.0", {"train": sentences("old", 4, "pt", "en")},
          supervised_keys=("pt", "en"))
    store(tmp_path, "ted_hrlr_translate/pt_to_en", "1.2.0", {"train": sentences("new", 5, "pt", "en")},
          supervised_keys=("pt", "en"))
    (found,) = tfds_sources.find(tmp_path, tfds_sources.TRANSLATION_DATASETS)
    assert found.version == "1.2.0" and found.folder.name == "1.2.0"
    assert len(pair_reader.read_corpus(tmp_path).splits["train"]) == 5
    for shard in found.folder.glob("*.tfrecord*"):
        shard.write_bytes(b"\x00" * 40)  # a damaged shard
    with pytest.raises(DataError, match="cannot read split 'train'"):
        pair_reader.read_corpus(tmp_path)
    (found.folder / "features.json").write_text("{not json")
    with pytest.raises(DataError, match="not a readable tfds dataset"):
        pair_reader.read_corpus(tmp_path)


def test_translation_task_reads_a_tfds_data_dir(ted, tmp_path):
    from tasks.translation.config import Config
    from tasks.translation.task import TranslationTask

    data = TranslationTask(Config.from_preset("tiny")).load_data(ted, tmp_path)
    assert data.info["pairs"] == {"train": 12, "validation": 3, "test": 4}
    assert data.info["languages"] == ("pt", "en") and data.info["splits_from"]["test"] == "official"
    assert len(data.test_sources) == 4


# --- --download: only on request, up to the network call ----------------------------------------------
@pytest.fixture
def offline_fetch(monkeypatch):
    """Stands in for the network: records each URL tfds asks for, then refuses it."""
    from tensorflow_datasets.core.download import downloader

    requested = []

    def fetch(self, url, destination_path, verify=True):
        requested.append(url)
        raise ConnectionError(f"offline test: refused {url}")

    monkeypatch.setattr(downloader._Downloader, "_sync_download", fetch)
    return requested


@pytest.mark.parametrize("name, url", [
    ("ted_hrlr_translate/pt_to_en", "http://www.phontron.com/data/qi18naacl-dataset.tar.gz"),
    ("wmt14_translate/fr-en", "statmt.org/wmt13/training-parallel-europarl-v7.tgz"),
])
def test_translation_download_reaches_the_fetch_of_the_dataset(name, url, offline_fetch, tmp_path):
    from tasks.translation.config import Config
    from tasks.translation.task import TranslationTask

    task = TranslationTask(Config.from_preset("tiny", [f"tfds_dataset={name}"]))
    assert task.can_download
    task.download = True
    with pytest.raises(DataError, match=f"Downloading {name} into .*downloads failed .*offline test"):
        task.load_data(None, tmp_path)
    assert offline_fetch and offline_fetch[0].endswith(url)


def test_captioning_download_reaches_the_fetch_of_coco(offline_fetch, tmp_path):
    from tasks.captioning.config import Config
    from tasks.captioning.task import CaptioningTask

    task = CaptioningTask(Config.from_preset("tiny", ["metrics=approximate"]))
    assert task.can_download
    task.download = True
    with pytest.raises(DataError, match="Downloading coco_captions/2014 into .*coco_dl failed .*offline test"):
        task.load_data(tmp_path / "coco_dl", tmp_path)
    assert "http://images.cocodataset.org/annotations/annotations_trainval2014.zip" in offline_fetch


def test_nothing_is_fetched_without_download(offline_fetch, ted, tmp_path):
    from tasks.translation.config import Config
    from tasks.translation.task import TranslationTask

    task = TranslationTask(Config.from_preset("tiny"))
    task.load_data(ted, tmp_path)
    task.load_data(None, tmp_path)  # the synthetic default
    assert offline_fetch == []


def test_download_runs_the_real_ted_builder_then_reads_what_it_wrote(monkeypatch, tmp_path):
    """The real ted_hrlr_translate builder, fed a fake extracted archive instead of the network."""
    from tensorflow_datasets.core.download import download_manager

    extracted = tmp_path / "extracted"
    folder = extracted / "datasets" / "pt_to_en"
    folder.mkdir(parents=True)
    for split, count in (("train", 10), ("dev", 2), ("test", 3)):
        # ted's files end with a newline; its builder drops the empty last "pair" itself.
        (folder / f"pt.{split}").write_text("".join(f"frase {split} {i}\n" for i in range(count)))
        (folder / f"en.{split}").write_text("".join(f"sentence {split} {i}\n" for i in range(count)))
    asked = []
    monkeypatch.setattr(download_manager.DownloadManager, "download_and_extract",
                        lambda self, url: asked.append(url) or str(extracted))
    from tasks.translation.config import Config
    from tasks.translation.task import TranslationTask

    task = TranslationTask(Config.from_preset("tiny"))
    task.download = True
    data = task.load_data(tmp_path / "tfds", tmp_path / "work")
    assert asked == ["http://www.phontron.com/data/qi18naacl-dataset.tar.gz"]
    assert data.info["pairs"] == {"train": 10, "validation": 2, "test": 3}
    assert data.info["file_statistics"]["train"] == {"examples": 10, "blank_pairs": 0, "empty_side": 0, "pairs": 10}
    assert {(p.source, p.target) for p in data.test} == {(f"frase test {i}", f"sentence test {i}") for i in range(3)}
    assert (tmp_path / "tfds" / "ted_hrlr_translate" / "pt_to_en" / "1.0.0" / "dataset_info.json").is_file()


def test_config_checks_tfds_dataset():
    from common.config import ConfigError
    from tasks.translation.config import Config

    assert Config.from_preset("tiny", ["tfds_dataset=wmt14_translate/de-en"]).tfds_dataset == "wmt14_translate/de-en"
    with pytest.raises(ConfigError, match="tfds_dataset='imdb_reviews'"):
        Config.from_preset("tiny", ["tfds_dataset=imdb_reviews"])


# --- captioning: coco_captions ------------------------------------------------------------------------
def jpeg(color: tuple[int, int, int]) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (24, 16), color).save(buffer, "JPEG")
    return buffer.getvalue()


def coco_example(split: str, index: int, image_id: int, captions: list[str]) -> dict:
    no_objects = {"area": np.zeros([0], np.int64), "bbox": np.zeros([0, 4], np.float32), "id": np.zeros([0], np.int64),
                  "is_crowd": np.zeros([0], bool), "label": np.zeros([0], np.int64)}
    folder = "train2014" if split == "train" else "val2014"
    return {"image": jpeg((40 * index % 256, 90, 200)), "image/filename": f"COCO_{folder}_{image_id:012d}.jpg",
            "image/id": image_id, "objects": no_objects,
            "captions": {"id": np.arange(len(captions), dtype=np.int64), "text": captions}}


@pytest.fixture(scope="module")
def coco(tmp_path_factory) -> Path:
    """coco_captions/2014 in Karpathy's four splits: train 3, restval 2, val 2, test 2 images."""
    data_dir = tmp_path_factory.mktemp("tfds_coco")
    splits, image_id = {}, 0
    for split, count in (("train", 3), ("restval", 2), ("val", 2), ("test", 2)):
        splits[split] = []
        for index in range(count):
            image_id += 1
            splits[split].append(coco_example(split, index, image_id, [f"a {split} picture {index}", " two words "]))
    store(data_dir, "coco_captions/2014", "1.1.0", splits)
    return data_dir


def test_coco_captions_from_a_tfds_data_dir(coco, tmp_path):
    from data.captioning import TFDS, read_splits

    kind, splits = read_splits(coco, image_folder=tmp_path / "images")
    assert kind == TFDS
    assert {split: len(records) for split, records in splits.items()} == {"train": 5, "validation": 2, "test": 2}
    assert len({r.image_id for records in splits.values() for r in records}) == 9
    record = splits["test"][0]
    assert record.captions[1] == "two words" and record.captions[0].startswith("a test picture")
    assert Path(record.path).parent == tmp_path / "images" / "test" and Path(record.path).name.startswith("COCO_val")
    from PIL import Image

    with Image.open(record.path) as image:
        assert image.size == (24, 16)
    # A second read reuses the written images (same size: not rewritten).
    stamp = Path(record.path).stat().st_mtime_ns
    assert read_splits(coco, "tfds_coco_captions", image_folder=tmp_path / "images")[1] == splits
    assert Path(record.path).stat().st_mtime_ns == stamp


def test_captioning_task_reads_coco_captions_from_tfds(coco, tmp_path):
    from tasks.captioning.config import Config
    from tasks.captioning.task import CaptioningTask

    data = CaptioningTask(Config.from_preset("tiny", ["metrics=approximate"])).load_data(coco, tmp_path)
    assert data.info["format"] == "tfds_coco_captions"
    assert data.info["images"] == {"train": 5, "validation": 2, "test": 2}
    assert all(Path(r.path).is_file() and str(tmp_path / "data" / "tfds_images") in r.path for r in data.train)


def test_coco_captions_without_captions_is_a_data_error(tmp_path):
    from data.captioning import read_splits

    store(tmp_path, "coco_captions/2014", "1.1.0",
          {split: [coco_example(split, 0, n + 1, ["fine"] if split != "test" else [" "])]
           for n, split in enumerate(("train", "val", "test"))})
    with pytest.raises(DataError, match=r"coco_captions/2014/1.1.0:test\[0\]: image 'COCO_val2014_000000000003.jpg' "
                                        "with 0 captions"):
        read_splits(tmp_path, image_folder=tmp_path / "images")


def test_tfds_info_of_other_datasets_is_not_mistaken_for_captions(tmp_path):
    folder = tmp_path / "imdb_reviews" / "plain_text" / "1.0.0"
    folder.mkdir(parents=True)
    (folder / "dataset_info.json").write_text(json.dumps({"name": "imdb_reviews", "version": "1.0.0"}))
    from data.captioning import read_splits

    with pytest.raises(DataError, match="no captioning data recognised"):
        read_splits(tmp_path)
    assert tfds_sources.find(tmp_path, ("coco_captions",)) == []


@pytest.mark.real_data
def test_real_coco_mini_photos_and_captions_survive_the_tfds_layout(shared_data, tmp_path):
    """coco_mini's real JPEGs and captions stored as tfds coco_captions, read back: the same captions per
    image as the COCO JSON reader gives, and byte-identical photos."""
    from data.captioning import read_splits

    _, original = read_splits(shared_data / "coco_mini", "coco")
    splits = {}
    for tfds_split, split in (("train", "train"), ("val", "validation"), ("test", "test")):
        splits[tfds_split] = [
            {**coco_example(tfds_split, 0, int(r.image_id), list(r.captions)), "image/filename": Path(r.path).name,
             "image": Path(r.path).read_bytes()}
            for r in original[split]]
    store(tmp_path / "tfds", "coco_captions/2014", "1.1.0", splits)
    kind, read = read_splits(tmp_path / "tfds", image_folder=tmp_path / "images")
    assert kind == "tfds_coco_captions"
    for split in ("train", "validation", "test"):
        expected = {Path(r.path).name: (r.image_id, r.captions) for r in original[split]}
        assert {Path(r.path).name: (r.image_id, r.captions) for r in read[split]} == expected
    first = original["test"][0]
    assert (tmp_path / "images" / "test" / Path(first.path).name).read_bytes() == Path(first.path).read_bytes()
