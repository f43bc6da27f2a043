"""The Lightning strategy from `strategy:` config: auto, DDP, or DeepSpeed ZeRO whose native
config lives in YAML (conf/strategy/)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import torch

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError

CUDA_ONLY_PRECISIONS = ("16-mixed",)


def check_hardware(cfg: PipelineConfig, source: str | None = None) -> None:
    """Fail before any stage runs when the config asks for hardware this machine lacks."""
    cuda = torch.cuda.is_available()
    where = f"{source}: " if source else ""
    if cfg.strategy.name == "deepspeed" and not cuda:
        raise PipelineError(
            f"{where}config key 'strategy' = deepspeed (ZeRO stage {cfg.strategy.zero_stage}) "
            "needs a CUDA GPU (Lightning's DeepSpeed strategy runs on CUDA only); expected "
            "strategy=auto or strategy=ddp on this machine"
        )
    if cfg.trainer.accelerator in ("gpu", "cuda") and not cuda:
        raise PipelineError(
            f"{where}config key 'trainer.accelerator' = {cfg.trainer.accelerator!r} needs a "
            "CUDA GPU; expected trainer=cpu on this machine"
        )
    if cfg.trainer.precision in CUDA_ONLY_PRECISIONS and not cuda:
        raise PipelineError(
            f"{where}config key 'trainer.precision' = {cfg.trainer.precision!r} needs a CUDA "
            "GPU; expected 32-true or bf16-mixed on CPU"
        )


def deepspeed_config(cfg: PipelineConfig, micro_batch_size: int | None = None) -> dict[str, Any]:
    """The DeepSpeed config the YAML describes, with bf16/fp16 switched by trainer.precision.

    Lightning fills batch size, accumulation and clipping itself (and refuses a config that
    already sets accumulation); pass `micro_batch_size` to get the complete config that
    `deepspeed.initialize` needs without Lightning.
    """
    ds = copy.deepcopy(cfg.strategy.config)
    precision = cfg.trainer.precision
    ds.setdefault("bf16", {})["enabled"] = precision.startswith("bf16")
    ds.setdefault("fp16", {})["enabled"] = precision.startswith("16")
    if micro_batch_size is not None:
        accumulation = cfg.trainer.accumulate_grad_batches
        ds["train_micro_batch_size_per_gpu"] = micro_batch_size
        ds["gradient_accumulation_steps"] = accumulation
        ds["train_batch_size"] = micro_batch_size * accumulation * _world_size()
        if cfg.trainer.gradient_clip_val:
            ds["gradient_clipping"] = cfg.trainer.gradient_clip_val
    return ds


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def build_strategy(cfg: PipelineConfig) -> Any:
    """What Lightning's Trainer takes as `strategy=`."""
    s = cfg.strategy
    backend = s.process_group_backend or ("nccl" if torch.cuda.is_available() else "gloo")
    timeout = timedelta(seconds=s.timeout_s)
    if s.name == "ddp":
        from lightning.pytorch.strategies import DDPStrategy

        return DDPStrategy(
            process_group_backend=backend,
            find_unused_parameters=s.find_unused_parameters,
            timeout=timeout,
        )
    if s.name == "deepspeed":
        from lightning.pytorch.strategies import DeepSpeedStrategy

        return DeepSpeedStrategy(
            config=deepspeed_config(cfg), process_group_backend=backend, timeout=timeout
        )
    return "auto"


@contextmanager
def peers_or_one_line(cfg: PipelineConfig) -> Iterator[None]:
    """A multi-process run whose peers cannot be reached or die turns torch.distributed's
    error (a traceback per rank, or a hang without a timeout) into one line naming the
    endpoint and `strategy.timeout_s`."""
    import torch.distributed as dist

    world = cfg.trainer.devices * cfg.trainer.num_nodes
    try:
        yield
    except (dist.DistError, RuntimeError) as err:
        if world == 1 or not _is_distributed_failure(err):
            raise
        endpoint = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        reason = " ".join(str(err).split())[:200]
        timeout = f"strategy.timeout_s = {cfg.strategy.timeout_s:g}"
        if not (dist.is_available() and dist.is_initialized()):
            raise PipelineError(
                f"no rendezvous with the other ranks at MASTER_ADDR:MASTER_PORT = {endpoint} "
                f"within {timeout} s (world size {world}): {reason}"
            ) from None
        raise PipelineError(
            f"rank {dist.get_rank()} of {world} lost its peers during training (another "
            f"node died or stopped answering; a collective waits at most {timeout} s): {reason}"
        ) from None


def _is_distributed_failure(err: BaseException) -> bool:
    """torch.distributed's own errors, and gloo's, which reach Python as RuntimeError."""
    import torch.distributed as dist

    text = str(err).lower()
    return isinstance(err, dist.DistError) or any(
        mark in text for mark in ("gloo", "connection", "timed out", "timeout", "socket")
    )
