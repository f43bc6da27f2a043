"""What `train.py` does differently inside an Optuna sweep trial: report each epoch's
validation metric to the study's pruner (pruning.py) and reuse the data stages' outputs across
trials whose data config is the same (cache.py). The sweeper itself is the Hydra plugin in
hydra_plugins/moe_optuna_sweeper/."""
