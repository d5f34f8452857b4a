"""Corpus-level metrics, one module per family, each with known-answer tests."""
