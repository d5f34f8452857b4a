"""--download (sentiment, tensorflow-datasets imdb_reviews) works up to the network call, offline."""

import pytest

from data import DataError


def test_tfds_download_reaches_the_fetch_of_the_imdb_archive(tmp_path, monkeypatch):
    from tensorflow_datasets.core.download import downloader

    from data import aclimdb

    requested = []

    def fetch(self, url, destination_path, verify=True):  # stands in for the network
        requested.append(url)
        raise ConnectionError(f"offline test: refused {url}")

    monkeypatch.setattr(downloader._Downloader, "_sync_download", fetch)
    with pytest.raises(DataError, match="Downloading imdb_reviews into .* failed .*offline test"):
        aclimdb.download_tfds_imdb(tmp_path / "downloads")
    assert requested and requested[0].endswith("aclImdb_v1.tar.gz")


# --- ImageNet encoder weights: keras.applications(weights="imagenet"), only on --download ---------------------


def test_imagenet_weights_are_fetched_only_on_download():
    from common import encoders

    with pytest.raises(DataError, match="pass --download"):
        encoders.check_weights_request("resnet50", "imagenet", download=False)
    with pytest.raises(DataError, match="small_cnn.* has no ImageNet weights"):
        encoders.check_weights_request("small_cnn", "imagenet", download=True)
    encoders.check_weights_request("resnet50", "imagenet", download=True)
    encoders.check_weights_request("resnet50", "weights/resnet50_notop.h5", download=False)  # a local file: no network


@pytest.mark.parametrize("task_name", ["captioning", "vqa"])
def test_paper_presets_use_imagenet_weights_and_refuse_them_without_download(task_name):
    import types

    from tasks import load_task

    task_class = load_task(task_name)
    config = task_class.Config.from_preset("paper")
    assert config.encoder_weights == "imagenet"
    stub_task = types.SimpleNamespace(config=config, download=False)
    # The check is the first thing the preprocessor's fit does: no data is read before the clear error.
    with pytest.raises(DataError, match="pass --download"):
        task_class.Preprocessor.fit(stub_task, data=None, workdir=None)


def test_imagenet_encoder_goes_through_keras_applications_fetch(tmp_path, monkeypatch):
    """weights="imagenet" reaches keras.applications' own fetch (the network call stands in as a local file)
    and the encoder then holds exactly the fetched weights."""
    import h5py
    import keras
    import numpy as np
    from keras.src.legacy.saving import legacy_h5_format
    from keras.src.utils import file_utils

    from common import encoders

    published = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3),
                                                   pooling="avg", include_preprocessing=True)
    weights_file = tmp_path / "published_notop.h5"
    with h5py.File(weights_file, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, published)
    requested = []

    def fetch(fname=None, origin=None, **options):  # stands in for the download into ~/.keras/models
        requested.append((fname, origin, options.get("cache_subdir")))
        return str(weights_file)

    monkeypatch.setattr(file_utils, "get_file", fetch)
    encoder = encoders.build_encoder("mobilenet_v3_small", 32, encoders.IMAGENET)
    assert len(requested) == 1
    fname, origin, cache_subdir = requested[0]
    assert "mobilenet_v3" in fname and "no_top" in fname and origin.startswith("https://") and cache_subdir == "models"
    backbone = next(layer for layer in encoder.layers if isinstance(layer, keras.Model))
    for fetched, expected in zip(backbone.get_weights(), published.get_weights()):
        np.testing.assert_array_equal(fetched, expected)
