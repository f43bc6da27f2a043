"""The text modality's plug-in for each stage: stages/<name>.py runs
`pipelines.modalities.text.plugins.<name>.run` when data.modality = text. Same inputs, outputs and
atomic
writes as the tabular code (paths from pipelines.layout), so dvc.yaml, train.py, sweeps and the
data cache serve both modalities. One module per stage, so DVC reruns a stage only for a
change in the code it runs."""
