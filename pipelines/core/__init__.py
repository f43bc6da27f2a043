"""Modality-free building blocks that every modality's plug-ins share."""
