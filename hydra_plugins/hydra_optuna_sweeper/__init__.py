"""See hydra_optuna_sweeper.optuna_sweeper: a compatibility alias of moe_optuna_sweeper."""
