"""What the docs build generates from the code (mkdocs.yml's hook runs it): the config
reference from the schema, the CLI reference, the stage table from dvc.yaml and the benchmark
results files as tables. Generated, not hand-written, so the pages cannot drift."""
