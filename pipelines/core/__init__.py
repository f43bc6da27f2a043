"""Modality-free pieces the modality plug-ins share: each module here serves every modality."""
