"""The Optuna sweeper's plugin class, under the released plugin's module path (see
optuna_sweeper.py); its config nodes and implementation are in hydra_plugins/moe_optuna_sweeper."""
