"""Shared building blocks of the suite; knows nothing of any one task."""
