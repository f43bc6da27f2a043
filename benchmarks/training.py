"""Training-side figures, all in one process on the same prepared data:

    python benchmarks/training.py [--rows 100000] [--epochs 2] [--threads 2]

- MoE cost: each MoE config vs the dense model with the same active parameters per token
  (pipelines.models.families.matched_dense), trained through the same Lightning stage code:
  step time ratio and validation AUPRC side by side.
- Framework overhead: the same model and batches through a bare PyTorch loop (forward,
  loss, backward, AdamW step, LR schedule) vs Lightning's fit loop with logging and
  progress off, and with the project's full callbacks (checkpoints, CSV log, history).

Writes benchmarks/results/training.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import tempfile
import time
from pathlib import Path

import torch
from results_file import add_record_flag, write_results

from pipelines.compose import compose_params
from pipelines.config import load_params, to_container
from pipelines.datamodule import TabularDataModule, model_inputs
from pipelines.evaluation import ranking_metrics
from pipelines.io import read_json
from pipelines.layout import Layout
from pipelines.models.families import matched_dense
from pipelines.onnx_export import torch_probabilities
from pipelines.training import fit_classifier
from stages import augment, clean, ingest, profile


def prepare(root: Path, rows: int, epochs: int, model: str):
    params = root / f"params_{model}.yaml"
    compose_params(params, [f"model={model}"])
    return load_params(
        params,
        [
            f"data.source.rows={rows}",
            f"trainer.max_epochs={epochs}",
            "callbacks.early_stopping.enabled=false",
            "logger.wandb.enabled=false",
            "trainer.enable_progress_bar=false",
        ],
    )


def datamodule(cfg, layout: Layout) -> TabularDataModule:
    features = read_json(layout.features_file)["features"]
    data = model_inputs(cfg, layout, features, ("train", "val"))
    return TabularDataModule.from_config(cfg, data["train"], data["val"], features)


def timed_fit(cfg, layout: Layout, work: Path) -> dict[str, float]:
    dm = datamodule(cfg, layout)
    start = time.perf_counter()
    result = fit_classifier(cfg, dm, work)
    seconds = time.perf_counter() - start
    steps = result.history[-1]["step"] if result.history else float("nan")
    x_val, y_val = dm.val_xy
    val = ranking_metrics(y_val, torch_probabilities(result.module.model, x_val))
    return {
        "seconds": seconds,
        "steps": steps,
        "step_ms": 1000 * seconds / steps,
        "val_auprc": val["auprc"],
        "val_auroc": val["auroc"],
    }


def moe_vs_dense(layout: Layout, root: Path, rows: int, epochs: int) -> dict:
    out = {}
    for moe_name in ("moe_mlp", "moe_transformer"):
        moe_cfg = prepare(root, rows, epochs, moe_name)
        dense_cfg = dataclasses.replace(moe_cfg, model=matched_dense(moe_cfg.model))
        moe = timed_fit(moe_cfg, layout, root / f"work_{moe_name}")
        dense = timed_fit(dense_cfg, layout, root / f"work_{dense_cfg.model.name}")
        out[moe_name] = {
            "moe": moe,
            "dense_matched": {**dense, "model": to_container(dense_cfg.model)},
            "step_time_ratio_moe_over_dense": moe["step_ms"] / dense["step_ms"],
        }
        print(moe_name, json.dumps(out[moe_name]["step_time_ratio_moe_over_dense"]))
    return out


def bare_loop(cfg, dm: TabularDataModule, module, epochs: int) -> float:
    """What Lightning's automatic optimisation does for this module, by hand."""
    optimizers = module.configure_optimizers()
    optimizer, scheduler = optimizers["optimizer"], optimizers["lr_scheduler"]["scheduler"]
    module.train()
    loader = dm.train_dataloader()
    start = time.perf_counter()
    for epoch in range(epochs):
        dm.train_sampler.set_epoch(epoch)
        for x, y in loader:
            logits, aux_loss, _ = module.model.forward_with_aux(x)
            loss = module._task_loss(logits, y) + module.model_cfg.aux_loss_weight * aux_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.trainer.gradient_clip_val)
            optimizer.step()
            scheduler.step()
    return time.perf_counter() - start


def framework_overhead(layout: Layout, root: Path, rows: int, epochs: int) -> dict:
    import lightning as L

    from pipelines.lightning_module import RiskClassifier

    cfg = prepare(root, rows, epochs, "moe_mlp")
    dm = datamodule(cfg, layout)
    x_train, _ = dm.train_xy

    def fresh_module() -> RiskClassifier:
        L.seed_everything(cfg.seed)
        module = RiskClassifier(
            n_features=x_train.shape[1],
            feature_names=list(dm.features),
            feature_mean=[0.0] * x_train.shape[1],
            feature_std=[1.0] * x_train.shape[1],
            model=to_container(cfg.model),
            train=to_container(cfg.train),
        )
        module.total_steps = epochs * (len(x_train) // cfg.train.batch_size)
        return module

    # warm-up: first-call costs (thread pools, process group) hit neither side
    bare_loop(cfg, dm, fresh_module(), 1)
    rounds = {"bare": [], "lightning_minimal": [], "lightning_project": []}
    for _ in range(2):
        rounds["bare"].append(bare_loop(cfg, dm, fresh_module(), epochs))
        trainer = L.Trainer(
            accelerator="cpu",
            max_epochs=epochs,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            limit_val_batches=0,
            num_sanity_val_steps=0,
            gradient_clip_val=cfg.trainer.gradient_clip_val,
            use_distributed_sampler=False,
        )
        start = time.perf_counter()
        trainer.fit(fresh_module(), train_dataloaders=dm.train_dataloader())
        rounds["lightning_minimal"].append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as work:
            start = time.perf_counter()
            fit_classifier(cfg, dm, Path(work))  # adds validation each epoch
            rounds["lightning_project"].append(time.perf_counter() - start)
    best = {name: min(values) for name, values in rounds.items()}
    return {
        "seconds_best_of_2": best,
        "lightning_minimal_over_bare": best["lightning_minimal"] / best["bare"],
        "lightning_project_over_bare": best["lightning_project"] / best["bare"],
        "note": "lightning_project also runs validation every epoch and writes checkpoints",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    add_record_flag(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        layout = Layout(root)
        cfg = prepare(root, args.rows, args.epochs, "moe_mlp")
        for stage in (ingest, profile, clean, augment):
            stage.run(cfg, layout)
        results = {
            "moe_vs_dense": moe_vs_dense(layout, root, args.rows, args.epochs),
            "framework_overhead": framework_overhead(layout, root, args.rows, args.epochs),
            "command": f"python benchmarks/training.py --rows {args.rows} --epochs "
            f"{args.epochs} --threads {args.threads}",
            "machine": f"{platform.processor() or platform.machine()}, "
            f"{torch.get_num_threads()} threads",
        }
    write_results("training", results, args.record)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
