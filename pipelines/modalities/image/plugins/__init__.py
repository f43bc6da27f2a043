"""The image modality's plug-ins: one module per stage, each with `run(cfg, layout)`, which
the stage in stages/ calls when data.modality = image."""
