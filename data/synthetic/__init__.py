"""Seeded generators that write the real on-disk formats: the embedded default of every task."""
