"""Progress of long non-training loops: every item passes through, and logs say start and end."""

import logging

from common import progress


def test_track_yields_every_item_and_logs_the_stage_when_not_a_terminal(caplog):
    with caplog.at_level(logging.INFO, logger="progress"):
        assert list(progress.track(iter(range(5)), 5, "decoding the test set", unit="batches")) == [0, 1, 2, 3, 4]
        with progress.stage("scoring"):
            pass
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "decoding the test set: 5 batches ..."
    assert messages[1].startswith("decoding the test set: 5 batches done in ")
    assert messages[2] == "scoring ..." and messages[3].startswith("scoring: done in ")
