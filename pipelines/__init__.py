"""Reusable parts of the declarative experiment pipeline: the stages are thin over these."""
