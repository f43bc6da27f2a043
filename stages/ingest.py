"""ingest: source (simulator, files, packaged data) -> validated train/val/test splits, one
memory-mapped Arrow file each, plus schema.json.

The configured modality's plug-in does the work (pipelines/modalities/registry.py)."""

from stages._cli import Stage

run = Stage("ingest")

if __name__ == "__main__":
    run.main()
