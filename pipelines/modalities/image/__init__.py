"""Image modality: a seeded defect-image simulator, cleaning rules and the image profile,
shaped like the text modality (pipelines/text) so the stages can treat both as plug-ins."""
