"""Model server for an export folder: dynamic batching, Prometheus metrics, input drift
against the training profile, hot reload. `python -m pipelines.serve`; see conf/serve/."""
