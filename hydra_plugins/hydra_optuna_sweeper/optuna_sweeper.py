"""Alias for sweep configs written for the released plugin (lightning-hydra-template's
`hparams_search/*.yaml` set `_target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.
OptunaSweeper`): they run unchanged on this project's sweeper. The released package pins
optuna<3 and cannot be installed next to this project (optuna>=4), so the names do not clash.
"""

from hydra_plugins.moe_optuna_sweeper.optuna_sweeper import OptunaSweeper as _OptunaSweeper


class OptunaSweeper(_OptunaSweeper):
    """A subclass, not a re-export: Hydra accepts a sweeper `_target_` only under the module
    path it discovered the class in."""
