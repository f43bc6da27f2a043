"""evaluate: every variant and the classical baselines on the same test split: task metrics,
latency percentiles, sizes, plots.

The configured modality's plug-in does the work (pipelines/modalities/registry.py)."""

from stages._cli import Stage

run = Stage("evaluate")

if __name__ == "__main__":
    run.main()
