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
