"""Published Penn Treebank word-level numbers (test perplexity, as metrics["model"]["perplexity"] is written).

Checked against the source on 2026-11-26. Left out because it could not be confirmed here: the small
non-regularized LSTM's test perplexity.
"""

from common.anchors import Anchor

ANCHORS = (
    Anchor("perplexity", 82.7, "Penn Treebank (word level, Mikolov's 10k vocabulary)", "test",
           "Zaremba, Sutskever & Vinyals 2014, Recurrent Neural Network Regularization, medium LSTM",
           "2 x 650 LSTM, dropout 0.5"),
    Anchor("perplexity", 78.4, "Penn Treebank (word level, Mikolov's 10k vocabulary)", "test",
           "Zaremba, Sutskever & Vinyals 2014, Recurrent Neural Network Regularization, large LSTM",
           "the paper's largest single model"),
)
