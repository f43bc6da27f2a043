"""Compose a config from conf/, run the pipeline into a Hydra run directory, return the metric.

    python train.py +experiment=finance_risk trainer.max_epochs=2
    python train.py data=german_credit model=dense_mlp
    python train.py --cfg job            # print the composed config (no torch import)

Heavy imports happen inside main(), so `--cfg job` and `--help` stay fast.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

STAGES = ("ingest", "profile", "clean", "augment", "train", "quantize", "evaluate", "export")


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    import importlib

    from pipelines.config import validate
    from pipelines.errors import PipelineError
    from pipelines.layout import Layout
    from pipelines.summary import metric_value, print_summary

    layout = Layout(Path(HydraConfig.get().runtime.output_dir))
    try:
        typed = validate(cfg, source="train.py config")
        for name in STAGES:
            importlib.import_module(f"stages.{name}").run(typed, layout)
        value = metric_value(layout, typed.optimized_metric)
    except PipelineError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print_summary(layout)
    print(f"{typed.optimized_metric} = {value:.4f}  (run dir: {layout.root})")
    return value


if __name__ == "__main__":
    main()
