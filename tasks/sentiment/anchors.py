"""Published IMDB sentiment numbers (accuracy as a fraction, as metrics["model"]["accuracy"] is written).

Each was checked on 2026-11-26 against its source or a published table that quotes it (Dai & Le's two IMDB
error rates also appear in the IMDB table of Dieng et al. 2017, TopicRNN); numbers that could not be confirmed
are left out.
"""

from common.anchors import Anchor

ANCHORS = (
    Anchor("accuracy", 0.8428, "IMDB (keras.datasets, 20k words, first 200)", "test half (used as validation)",
           "keras-io example 'Bidirectional LSTM on IMDB' (fchollet), val_accuracy after 2 epochs",
           "the suite's `paper` preset follows this recipe"),
    Anchor("accuracy", 0.865, "IMDB (aclImdb, 25k/25k)", "test",
           "Dai & Le 2015, Semi-supervised Sequence Learning, LSTM with tuning and dropout (13.50 % error)",
           "trained from scratch on the labelled reviews, no pre-training"),
    Anchor("accuracy", 0.9122, "IMDB (aclImdb, 25k/25k)", "test",
           "Wang & Manning 2012, Baselines and Bigrams, NBSVM-bi (sidaw/nbsvm results table)",
           "bag of uni+bigrams, no recurrence"),
    Anchor("accuracy", 0.9276, "IMDB (aclImdb) + its 50k unlabelled reviews", "test",
           "Dai & Le 2015, Semi-supervised Sequence Learning, SA-LSTM (7.24 % error)",
           "LSTM after sequence-autoencoder pre-training"),
)
