"""IMDB sentiment: raw review text → BiLSTM → positive/negative, vs a TF-IDF bag-of-n-grams baseline."""
