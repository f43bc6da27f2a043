"""Data sources, splitting and the tabular schema."""
