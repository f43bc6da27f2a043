"""Compose a config from conf/, run the pipeline into a Hydra run directory, return the metric.

    python train.py +experiment=finance_risk trainer.max_epochs=2
    python train.py data=german_credit model=dense_mlp
    python train.py --cfg job            # print the composed config (no torch import)
    python train.py -m hparams_search=finance_risk_optuna   # Optuna sweep (README)

Heavy imports happen inside main(), so `--cfg job` and `--help` stay fast.

An optional top-level `pipeline` node (set by conf/hparams_search/*.yaml, not part of the
composed default that DVC tracks) trims what a sweep trial runs:
    pipeline.stages       the first n stages to run (a trial stops after train)
    pipeline.data_cache   a folder where ingest..augment outputs are reused across trials
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

STAGES = ("ingest", "profile", "clean", "augment", "train", "quantize", "evaluate", "export")


def process_rank() -> int:
    """This process's global rank under a multi-process launch (Lightning's DDP children,
    torchrun, SLURM tasks); 0 for a plain run."""
    for variable in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if variable in os.environ:
            return int(os.environ[variable])
    return 0


def run_plan(cfg: DictConfig) -> tuple[tuple[str, ...], Path | None]:
    """The stages to run and the data cache folder, from the optional `pipeline` node."""
    from pipelines.errors import PipelineError

    node = cfg.get("pipeline") or {}
    unknown = set(node) - {"stages", "data_cache"}
    if unknown:
        raise PipelineError(
            f"train.py config: unknown key(s) 'pipeline.{sorted(unknown)[0]}': "
            "expected pipeline.stages, pipeline.data_cache"
        )
    stages = tuple(node.get("stages") or STAGES)
    if stages != STAGES[: len(stages)] or "train" not in stages:
        raise PipelineError(
            f"train.py config: key 'pipeline.stages' = {list(stages)}: expected the first n "
            f"stages of {', '.join(STAGES)}, through train at least"
        )
    if str(cfg.get("optimized_metric", "")).startswith("test/") and "evaluate" not in stages:
        raise PipelineError(
            f"train.py config: optimized_metric = {cfg.optimized_metric!r} needs the evaluate "
            f"stage, but pipeline.stages stops at {stages[-1]}"
        )
    cache = node.get("data_cache")
    return stages, Path(cache) if cache else None


@hydra.main(config_path="conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    import importlib

    from pipelines import tracking
    from pipelines.config import validate
    from pipelines.errors import PipelineError
    from pipelines.layout import Layout
    from pipelines.strategy import check_hardware
    from pipelines.summary import metric_value, print_summary
    from pipelines.sweeps.cache import DATA_STAGES, run_data_stages

    hydra_cfg = HydraConfig.get()
    layout = Layout(Path(hydra_cfg.runtime.output_dir))
    try:
        stages, data_cache = run_plan(cfg)
        pipeline_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "pipeline"])
        typed = validate(pipeline_cfg, source="train.py config")
        check_hardware(typed, source="train.py config")
        name = f"{typed.data.name}-{typed.model.name}"
        if process_rank() != 0:
            # a DDP/DeepSpeed worker: rank 0 prepares the data and writes every output
            wait_for(layout.features_file, layout.augmented_train)
            importlib.import_module("stages.train").run(typed, layout)
            return float("nan")

        def run_stage(stage: str) -> None:
            importlib.import_module(f"stages.{stage}").run(typed, layout)

        with tracking.pipeline_run(typed, name) as run:
            if data_cache is not None:
                run_data_stages(typed, layout, data_cache, run_stage)
            for stage in stages:
                if data_cache is None or stage not in DATA_STAGES:
                    run_stage(stage)
            value = metric_value(layout, typed.optimized_metric)
            if "export" in stages:
                tracking.log_model_artifact(run, layout, name)
    except PipelineError as err:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            # in a sweep, the sweeper records this trial as failed and goes on with the next;
            # sys.exit would end the whole sweep
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if "evaluate" in stages:
        print_summary(layout)
    print(f"{typed.optimized_metric} = {value:.4f}  (run dir: {layout.root})")
    return value


def wait_for(*paths: Path, timeout_s: float = 3600.0) -> None:
    """Worker ranks of a job that starts them all at once (SLURM) wait for rank 0's data."""
    import time

    deadline = time.monotonic() + timeout_s
    while not all(p.exists() for p in paths):
        if time.monotonic() > deadline:
            raise TimeoutError(f"rank {process_rank()}: no {paths[0]} from rank 0 in {timeout_s} s")
        time.sleep(2.0)


def check_group_choices(argv: list[str], conf: Path = Path(__file__).parent / "conf") -> None:
    """An unknown config group option (`model=moe_mlpp`, `+experiment=nope`) stops here with
    one line; Hydra's own report spans a dozen lines with its search path."""
    if any(arg.startswith(("hydra.searchpath", "--config-path", "-cp")) for arg in argv):
        return  # options may come from another tree; leave it to Hydra
    roots = [conf, *_extra_config_dirs(argv)]
    for arg in argv:
        key, sep, value = arg.lstrip("+~").partition("=")
        if not sep or key.startswith(("hydra/", "-")) or "(" in value:
            continue
        groups = [root / key for root in roots if (root / key).is_dir()]
        if not groups:
            continue
        options = sorted({p.stem for group in groups for p in group.glob("*.yaml")})
        for choice in filter(None, value.split(",")):  # a -m sweep may list several
            if choice not in options and choice != "null":
                print(
                    f"error: train.py: config group '{key}' has no option {choice!r}: expected "
                    f"one of {', '.join(options)} (conf/{key}/*.yaml)",
                    file=sys.stderr,
                )
                sys.exit(2)


def check_override_keys(argv: list[str]) -> None:
    """A typo in an overridden key (`trainer.max_epoch=2`) stops here with one line and the
    closest valid keys; Hydra's own report is a six-line struct error. Keys added with `+`
    are left to the schema check in main()."""
    from pipelines.config import PipelineConfig, unknown_key_message

    sections = set(PipelineConfig.__dataclass_fields__)
    for arg in argv:
        key, sep, _ = arg.partition("=")
        if not sep or key.startswith(("-", "+", "~", "hydra")) or "/" in key:
            continue
        if key.split(".")[0] not in sections:
            continue
        message = unknown_key_message(key)
        if message:
            print(f"error: train.py: {message}", file=sys.stderr)
            sys.exit(2)


def _extra_config_dirs(argv: list[str]) -> list[Path]:
    dirs = []
    for i, arg in enumerate(argv):
        if arg in ("--config-dir", "-cd") and i + 1 < len(argv):
            dirs.append(Path(argv[i + 1]))
        elif arg.startswith("--config-dir="):
            dirs.append(Path(arg.split("=", 1)[1]))
    return dirs


if __name__ == "__main__":
    check_group_choices(sys.argv[1:])
    check_override_keys(sys.argv[1:])
    main()
