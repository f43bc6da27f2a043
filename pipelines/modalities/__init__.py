"""Modality plug-ins: one package per data modality, found through registry.py."""
