"""The text model on a GPU: Lightning's DeepSpeed strategy (ZeRO-2) with bf16 mixed precision
trains the MoE text Transformer through the shared fit, as it does the tabular models.

Token ids are synthetic (each intent is marked by its own token among noise), so this file
needs only torch, Lightning and DeepSpeed: the GPU machine has no `datasets` or `tokenizers`
to build real tickets with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
VOCAB, CLASSES, MAX_LEN, PAD = 300, 6, 40, 0


def synthetic_tickets(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """ids (rows, MAX_LEN): [CLS]=1 first, then 5..MAX_LEN-1 noise tokens one of which is the
    intent's marker (10 + class), then padding."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, size=rows)
    ids = np.full((rows, MAX_LEN), PAD, dtype=np.int64)
    for row, label in enumerate(y):
        length = int(rng.integers(5, MAX_LEN))
        ids[row, 1:length] = rng.integers(20, VOCAB, size=length - 1)
        ids[row, int(rng.integers(1, length))] = 10 + label
    ids[:, 0] = 1
    return ids, y.astype(np.int64)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_moe_text_model_trains_with_deepspeed_zero2_in_bf16(tmp_path: Path) -> None:
    from pipelines.compose import compose_params
    from pipelines.config import load_params, to_container
    from pipelines.datamodule import TabularDataModule
    from pipelines.modalities.text.lightning import TextIntentClassifier
    from pipelines.training import fit_classifier

    compose_params(
        tmp_path / "params.yaml",
        ["strategy=deepspeed_zero2", "trainer=gpu", "model=moe_transformer"],
    )
    cfg = load_params(
        tmp_path / "params.yaml",
        [
            f"model.seq_len={MAX_LEN}",
            "train.batch_size=64",
            "train.lr=0.003",
            "trainer.max_epochs=3",
            "callbacks.checkpoint.monitor=val/macro_f1",
            "callbacks.early_stopping.enabled=false",
            "logger.wandb.enabled=false",
        ],
    )
    assert cfg.trainer.precision == "bf16-mixed" and cfg.strategy.zero_stage == 2
    assert cfg.model.name == "moe_transformer"
    train, val = synthetic_tickets(3000, seed=0), synthetic_tickets(600, seed=1)
    dm = TabularDataModule(train, val, ["input_ids"], 64, 256, seed=cfg.seed)

    def build() -> TextIntentClassifier:
        return TextIntentClassifier(
            vocab_size=VOCAB,
            pad_id=PAD,
            class_names=[f"intent{k}" for k in range(CLASSES)],
            model=to_container(cfg.model),
            train=to_container(cfg.train),
        )

    result = fit_classifier(cfg, dm, tmp_path / "work", build_module=build)

    f1s = [row["val_macro_f1"] for row in result.history]
    assert len(f1s) == 3 and f1s[-1] > 0.9, f1s  # the markers are learnable in one epoch on CPU
    assert all(torch.isfinite(p).all() for p in result.module.parameters())
