"""profile: quality report (JSON metrics, PNG, HTML) and the declared quality gates; a failed
gate stops the pipeline with the report written beside the inputs.

The configured modality's plug-in does the work (pipelines/modalities/registry.py)."""

from stages._cli import Stage

run = Stage("profile")

if __name__ == "__main__":
    run.main()
