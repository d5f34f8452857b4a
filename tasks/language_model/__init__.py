"""Language model: character- or word-level stacked LSTM on plain text, vs Kneser-Ney n-grams; sampling."""
