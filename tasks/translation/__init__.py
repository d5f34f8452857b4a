"""Translation: encoder–decoder LSTM with attention, in-graph beam search, sacrebleu BLEU."""
