"""A Hydra sweeper on modern Optuna (>=4) that keeps the YAML interface of the released
`hydra-optuna-sweeper` (1.2/1.3) and adds pruning, resume after a kill, and result plots.

Why this exists instead of the released plugin: `hydra-optuna-sweeper` 1.3.0 pins `optuna<3`
(Optuna 2.10.1), whose SQLite storage fails with SQLAlchemy 2.x, and it cannot prune (Hydra
issue #1954). Hydra's main branch moved to Optuna 4 but is unreleased.

Hydra imports every public module under `hydra_plugins` at start-up, so the modules without a
leading underscore (`config`, `trial`; the plugin class is
hydra_plugins/hydra_optuna_sweeper/optuna_sweeper.py) import nothing heavy at module level:
`python train.py --cfg job` stays fast. The work happens in `_impl`.
"""
