"""Start a real DeepSpeed engine from a strategy config and take optimizer steps, on CPU:

    python -m pipelines.zero_check strategy=deepspeed_zero2 [model=dense_mlp] [steps=5]

Lightning's DeepSpeed strategy needs CUDA, but DeepSpeed's engine and ZeRO stages 1-2 run on
CPU with gloo. This checks, before a cluster job is queued, that the ZeRO YAML is a config
DeepSpeed accepts and that the project's model trains under it (losses printed per step).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import torch

from pipelines.config import PipelineConfig, to_container, validate
from pipelines.errors import PipelineError
from pipelines.strategy import deepspeed_config

CONF = Path(__file__).resolve().parent.parent / "conf"


def compose(overrides: list[str]) -> PipelineConfig:
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(str(CONF), version_base="1.3"):
        return validate(hydra_compose("config", overrides=overrides), source="zero_check")


def zero_steps(
    cfg: PipelineConfig, steps: int = 5, batch_size: int = 32
) -> tuple[list[float], str]:
    """Losses of `steps` DeepSpeed optimizer steps on a synthetic batch stream, and the digest
    of the weights they end with. Under torchrun (WORLD_SIZE > 1) the engine joins the
    launcher's group (gloo on CPU) and each rank draws its own batches."""
    if not torch.cuda.is_available():
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    # what a launcher would set for a single process
    os.environ.setdefault("LOCAL_RANK", "0")
    import deepspeed
    import torch.distributed as dist

    from pipelines.lightning_module import RiskClassifier
    from pipelines.models.moe import ensure_process_group
    from pipelines.training import weights_sha256

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        deepspeed.init_distributed(
            "nccl" if torch.cuda.is_available() else "gloo",
            verbose=False,
            timeout=timedelta(seconds=cfg.strategy.timeout_s),
        )
    ensure_process_group()
    rank = dist.get_rank()
    torch.manual_seed(cfg.seed)
    n_features = 8
    module = RiskClassifier(
        n_features=n_features,
        feature_names=[f"f{i}" for i in range(n_features)],
        feature_mean=[0.0] * n_features,
        feature_std=[1.0] * n_features,
        model=to_container(cfg.model),
        train=to_container(cfg.train),
    )
    module.offload_optimizer = cfg.strategy.offloads_optimizer
    optimizer = module.build_optimizer()
    engine, *_ = deepspeed.initialize(
        model=module, optimizer=optimizer, config=deepspeed_config(cfg, batch_size)
    )
    generator = torch.Generator().manual_seed(cfg.seed + rank)  # each rank its own batches
    losses = []
    for _ in range(steps * cfg.trainer.accumulate_grad_batches):
        x = torch.randn(batch_size, n_features, generator=generator)
        y = (x[:, 0] + 0.5 * x[:, 1] > 0.8).float()
        logits, aux_loss, _ = engine.module.model.forward_with_aux(x)
        loss = module._task_loss(logits, y) + cfg.model.aux_loss_weight * aux_loss
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    return losses, weights_sha256(engine.module)


def main(argv: list[str]) -> None:
    steps = 5
    overrides = []
    for arg in argv:
        if arg.startswith("steps="):
            steps = int(arg.split("=", 1)[1])
        else:
            overrides.append(arg)
    try:
        cfg = compose(overrides)
    except PipelineError as err:
        sys.exit(f"error: {err}")
    if cfg.strategy.name != "deepspeed":
        sys.exit("zero_check: expected a DeepSpeed strategy, e.g. strategy=deepspeed_zero2")
    losses, digest = zero_steps(cfg, steps)
    stage = cfg.strategy.zero_stage
    print(f"rank {os.environ.get('RANK', '0')}: weights sha256 {digest}")
    print(
        f"ZeRO stage {stage}, {cfg.model.name}: {len(losses)} steps, losses "
        + " ".join(f"{v:.4f}" for v in losses)
    )


if __name__ == "__main__":
    main(sys.argv[1:])
