"""export: the variant `export.select` chooses, checked once more from the finished folder,
with its preprocessing artifacts and a model card.

The configured modality's plug-in does the work (pipelines/modalities/registry.py)."""

from stages._cli import Stage

run = Stage("export")

if __name__ == "__main__":
    run.main()
