"""The time-series modality's plug-ins: one module per stage, each with `run(cfg, layout)`."""
