"""clean: declarative rules; every removed row goes to quarantine with the rule that removed
it, and the counts per rule to the metrics.

The configured modality's plug-in does the work (pipelines/modalities/registry.py)."""

from stages._cli import Stage

run = Stage("clean")

if __name__ == "__main__":
    run.main()
