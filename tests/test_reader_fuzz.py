"""Fuzz-style checks of every reader: truncated, empty, binary and wrong-encoding versions of a good
file must give a clean DataError (naming the file) or a correct read, never another exception."""

import io
import json
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pandas
import pytest
import scipy.io

from data import DataError

FIXTURES = Path(__file__).parent / "fixtures"
RANDOM = np.random.default_rng(7).integers(0, 256, size=2048, dtype=np.uint8).tobytes()


def _variants(content: bytes, text: bool) -> dict[str, bytes]:
    variants = {"truncated": content[: len(content) // 2], "empty": b"", "binary": RANDOM,
                "one_byte": content[:1], "tail": content[len(content) // 3 :]}
    if text:
        decoded = content.decode("utf-8")
        variants["utf16"] = decoded.encode("utf-16")
        variants["latin1_accents"] = (decoded + " café naïve").encode("latin-1")
    return variants


def _check(read, path: Path) -> None:
    try:
        read(path)
    except DataError as error:
        assert str(error), "a DataError must say what is wrong"
    except Exception as error:  # noqa: BLE001 - any other exception is what this test forbids
        pytest.fail(f"{path.name}: {type(error).__name__} instead of a DataError: {error}")


def _fuzz_file(tmp_path: Path, name: str, content: bytes, read, text: bool) -> None:
    for variant, data in _variants(content, text).items():
        folder = tmp_path / variant
        folder.mkdir(parents=True)
        path = folder / name
        path.write_bytes(data)
        _check(read, path)


# --- signals ------------------------------------------------------------------------------------


def _signal_files(tmp_path: Path) -> dict[str, bytes]:
    signal = np.sin(np.arange(3000) / 7.0)
    buffers = {}
    handle = io.BytesIO()
    np.save(handle, signal)
    buffers["x.npy"] = handle.getvalue()
    handle = io.BytesIO()
    np.savez(handle, DE=signal[:, None])
    buffers["x.npz"] = handle.getvalue()
    buffers["x.csv"] = ("DE\n" + "\n".join(f"{v:.6f}" for v in signal) + "\n").encode()
    buffers["x.pkl"] = pickle.dumps(pandas.DataFrame({"DE": signal}))
    path = tmp_path / "x.mat"
    scipy.io.savemat(path, {"DE": signal[:, None]})
    buffers["x.mat"] = path.read_bytes()
    return buffers


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".pkl", ".mat"])
def test_signal_reader(tmp_path, suffix):
    from data.signal import read_signal

    content = _signal_files(tmp_path)[f"x{suffix}"]
    good = tmp_path / f"good{suffix}"
    good.write_bytes(content)
    assert read_signal(good).shape == (3000,)
    _fuzz_file(tmp_path, f"x{suffix}", content, read_signal, text=suffix == ".csv")


# --- text pairs, COCO / Karpathy / VQA JSON, Flickr8k text ----------------------------------------


def test_pairs_reader(tmp_path):
    from data.pairs import read_pairs

    content = "Go.\tVa !\tCC-BY 2.0 #1\nHi.\tSalut !\tCC-BY 2.0 #2\nRun!\tCours !\tCC-BY 2.0 #3\n".encode()
    _fuzz_file(tmp_path, "fra.txt", content, read_pairs, text=True)


def test_coco_captions_and_results_readers(tmp_path):
    from data.coco_captions import read_caption_annotations, read_coco_captions, read_results_file

    annotations = (FIXTURES / "captioning" / "captions_fixture.json").read_bytes()
    _fuzz_file(tmp_path / "a", "captions.json", annotations, read_caption_annotations, text=True)
    _fuzz_file(tmp_path / "b", "captions.json", annotations,
               lambda p: read_coco_captions(p, FIXTURES / "captioning" / "images", False), text=True)
    results = (FIXTURES / "captioning" / "results_fixture.json").read_bytes()
    _fuzz_file(tmp_path / "c", "results.json", results, read_results_file, text=True)


def test_karpathy_reader(tmp_path):
    from data.karpathy import read_karpathy_split

    content = (FIXTURES / "captioning" / "dataset_fixture.json").read_bytes()
    _fuzz_file(tmp_path, "dataset_x.json", content, lambda p: read_karpathy_split(p, p.parent, False), text=True)


@pytest.mark.parametrize("name", ["Flickr8k.token.txt", "Flickr_8k.trainImages.txt"])
def test_flickr8k_reader(tmp_path, name):
    from data.flickr8k import read_flickr8k

    source = FIXTURES / "captioning" / "flickr8k"
    for variant, data in _variants((source / name).read_bytes(), text=True).items():
        folder = tmp_path / variant
        shutil.copytree(source, folder)
        (folder / name).write_bytes(data)
        _check(lambda p: read_flickr8k(p, require_images=False), folder)


@pytest.mark.parametrize("kind", ["questions", "annotations"])
def test_vqa_readers(tmp_path, kind):
    from data import vqa

    source = FIXTURES / "vqa"
    name = next(p.name for p in source.iterdir() if kind in p.name)
    read = vqa.read_questions if kind == "questions" else vqa.read_annotations
    _fuzz_file(tmp_path / "single", name, (source / name).read_bytes(), read, text=True)
    for variant, data in _variants((source / name).read_bytes(), text=True).items():
        folder = tmp_path / "directory" / variant
        shutil.copytree(source, folder)
        (folder / name).write_bytes(data)
        _check(lambda p: vqa.read_directory(p, image_folder=p), folder)


def test_vqa_results_reader(tmp_path):
    from data.vqa import read_results

    content = json.dumps([{"question_id": 1, "answer": "yes"}, {"question_id": 2, "answer": "two"}]).encode()
    _fuzz_file(tmp_path, "results.json", content, read_results, text=True)


# --- reviews ------------------------------------------------------------------------------------


def _aclimdb_tar(tmp_path: Path) -> bytes:
    root = tmp_path / "source" / "aclImdb"
    for split in ("train", "test"):
        for label, words in (("pos", "a wonderful film"), ("neg", "a dull film")):
            (root / split / label).mkdir(parents=True)
            for index in range(3):
                (root / split / label / f"{index}_{7 if label == 'pos' else 2}.txt").write_text(f"{words} {index}")
    archive = tmp_path / "aclImdb.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(root, arcname="aclImdb")
    return archive.read_bytes()


def test_aclimdb_archive_reader(tmp_path):
    from data.aclimdb import read_reviews

    content = _aclimdb_tar(tmp_path)
    good = tmp_path / "good.tar.gz"
    good.write_bytes(content)
    assert len(read_reviews(good).splits["train"]) == 6
    _fuzz_file(tmp_path, "aclImdb.tar.gz", content, read_reviews, text=False)


def test_aclimdb_review_files(tmp_path):
    from data.aclimdb import read_reviews

    _aclimdb_tar(tmp_path)
    review = tmp_path / "source" / "aclImdb" / "train" / "pos" / "0_7.txt"
    for variant, data in _variants(review.read_bytes(), text=True).items():
        folder = tmp_path / "copies" / variant
        shutil.copytree(tmp_path / "source" / "aclImdb", folder / "aclImdb")
        (folder / "aclImdb" / "train" / "pos" / "0_7.txt").write_bytes(data)
        _check(read_reviews, folder / "aclImdb")
