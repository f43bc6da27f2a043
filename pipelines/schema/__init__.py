"""The config schema, one module per section; pipelines/config.py assembles and validates it."""
