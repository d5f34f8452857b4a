"""Published translation numbers (corpus BLEU 0-100, cased, as metrics["model"]["bleu_cased"] is written).

Checked against the source on 2026-11-26. These are WMT'14 English→French: a different corpus and direction
from the suite's Tatoeba runs, shown for scale only. Left out because it could not be confirmed here: the
single reversed-LSTM BLEU in Sutskever et al.'s table, and Luong et al. 2015's numbers.
"""

from common.anchors import Anchor

ANCHORS = (
    Anchor("bleu_cased", 34.8, "WMT'14 English→French", "test",
           "Sutskever, Vinyals & Le 2014, Sequence to Sequence Learning with Neural Networks (abstract)",
           "multilayered LSTMs, source sentences reversed, out-of-vocabulary words penalised"),
    Anchor("bleu_cased", 33.3, "WMT'14 English→French", "test",
           "Sutskever, Vinyals & Le 2014 (abstract): the phrase-based SMT baseline they compare with",
           "not a neural model"),
)
