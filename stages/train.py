"""train: Lightning fit of the configured model; a weights-only checkpoint, metrics, curves.

The configured modality's plug-in does the work (pipelines/modalities/registry.py)."""

from stages._cli import Stage

run = Stage("train")

if __name__ == "__main__":
    run.main()
