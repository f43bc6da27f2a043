"""The Hydra Sweeper plugin class of this project's Optuna sweeper (hydra_plugins/
moe_optuna_sweeper holds its config nodes and implementation). Heavy imports (optuna,
sqlalchemy) wait for `sweep()`.

It lives under the released plugin's module path so that a sweep config naming
`_target_: hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper` (lightning-hydra-
template's `hparams_search/*.yaml`) runs unchanged: Hydra instantiates a sweeper only under the
module path it discovered the class in, and one class under one path means the plugin appears
once in Hydra's plugin discovery (`python train.py --info plugins`). The released package pins
optuna<3 and cannot be installed next to this project (optuna>=4), so the paths do not clash.
"""

from __future__ import annotations

from typing import Any

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class OptunaSweeper(Sweeper):
    """`hydra/sweeper: optuna` - keys as in the released plugin, plus `pruner` and `plots`."""

    def __init__(self, **settings: Any) -> None:
        """The node's keys (hydra_plugins/moe_optuna_sweeper/config.py, which Hydra checks
        them against), handed to the implementation as they are."""
        from hydra_plugins.moe_optuna_sweeper._impl import OptunaSweeperImpl

        self.sweeper = OptunaSweeperImpl(**settings)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        return self.sweeper.sweep(arguments)
