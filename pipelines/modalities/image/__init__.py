"""Image modality: a seeded defect-image simulator, cleaning rules and the image profile,
shaped like the text modality (pipelines/text) so the stages can treat both as plug-ins."""

# the content and label columns ingest writes (every later stage reads these)
COLUMNS = ("image", "label")
# what one row of this modality is called in reports
ROWS = "images"
# what the latency figures of its evaluate report take as input
LATENCY_INPUTS = (
    "preprocessed images in (the baselines' featurising is timed as texture"
    "_features_only in outputs/latency/latency.json)"
)
