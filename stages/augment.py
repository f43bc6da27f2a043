"""augment: the train split topped up or resampled by the data config's augment policy.

The configured modality's plug-in does the work (pipelines/modalities/registry.py)."""

from stages._cli import Stage

run = Stage("augment")

if __name__ == "__main__":
    run.main()
