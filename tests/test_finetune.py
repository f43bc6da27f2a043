"""The short fit every compression method ends with: it trains a loaded (eval-mode) model, and
hands back the weights of its best validation epoch with that epoch's score."""

from __future__ import annotations

import re

import numpy as np
import torch

from pipelines.compression.finetune import FineTuning, fine_tune
from pipelines.config import to_container
from pipelines.datamodule import TabularDataModule, feature_statistics
from pipelines.evaluation import ranking_metrics
from pipelines.lightning_module import RiskClassifier
from pipelines.onnx_export import torch_probabilities
from pipelines.schema.model import ModelConfig
from pipelines.schema.training import TrainConfig

FEATURES = [f"f{i}" for i in range(6)]


def _problem() -> tuple[RiskClassifier, TabularDataModule]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] * x[:, 2] + 0.5 * rng.normal(size=3000) > 1).astype(np.float32)
    mean, std = feature_statistics(x[:2000])
    torch.manual_seed(0)
    model = ModelConfig(name="dense_mlp", hidden_dim=16, ffn_dim=16, num_experts=1, top_k=1)
    module = RiskClassifier(
        6, FEATURES, mean, std, to_container(model), to_container(TrainConfig())
    )
    dm = TabularDataModule(
        (x[:2000], y[:2000]), (x[2000:], y[2000:]), FEATURES, 128, 1000, 0, seed=0
    )
    return module.eval(), dm


def test_the_returned_weights_are_the_best_epochs_and_score_what_it_reports() -> None:
    module, dm = _problem()
    tuned, info = fine_tune(module, dm, FineTuning(lr=3e-3, seed=0), epochs=3)
    x_val, y_val = dm.val_xy
    score = ranking_metrics(y_val, torch_probabilities(tuned.model, x_val))["auprc"]
    assert 0.0 < info["best_val_auprc"] <= 1.0
    # torchmetrics' and the evaluation's AUPRC agree to float precision
    assert abs(score - info["best_val_auprc"]) < 1e-4
    assert not tuned.training


def test_a_model_loaded_in_eval_mode_is_trained_in_train_mode() -> None:
    module, dm = _problem()
    modes: list[bool] = []
    original = module.training_step

    def spy(batch, batch_idx):
        modes.append(module.training and all(m.training for m in module.model.modules()))
        return original(batch, batch_idx)

    module.training_step = spy  # type: ignore[method-assign]
    fine_tune(module, dm, FineTuning(lr=1e-3, seed=0), epochs=1)
    assert modes and all(modes)


def test_the_same_seed_gives_the_same_weights() -> None:
    first, _ = fine_tune(*_problem(), FineTuning(lr=1e-3, seed=3), epochs=1)
    second, _ = fine_tune(*_problem(), FineTuning(lr=1e-3, seed=3), epochs=1)
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_a_fit_that_only_makes_validation_worse_hands_back_the_starting_weights() -> None:
    module, dm = _problem()
    trained, _ = fine_tune(module, dm, FineTuning(lr=3e-3, seed=0), epochs=3)
    start = {k: v.clone() for k, v in trained.state_dict().items()}
    # a learning rate this large wrecks the weights in one epoch
    again, info = fine_tune(trained, dm, FineTuning(lr=50.0, seed=0), epochs=1)
    assert info["kept_start"] and info["best_epoch"] == -1
    assert info["best_val_auprc"] == info["start_val_auprc"]
    for name, value in again.state_dict().items():
        assert torch.equal(value, start[name]), name


def test_without_keep_start_only_trained_epochs_come_back() -> None:
    module, dm = _problem()
    _, info = fine_tune(module, dm, FineTuning(lr=1e-3, seed=0), epochs=1, keep_start_if_best=False)
    assert info["best_epoch"] == 0 and "kept_start" not in info


def test_each_epoch_of_a_fine_tune_prints_a_line_with_its_label_metrics_and_time(capsys) -> None:
    # the quantize stage's fine-tunes print what training prints per epoch (issue 29, item 9)
    fine_tune(*_problem(), FineTuning(lr=1e-3, seed=0), epochs=2, label="distillation")
    lines = [line for line in capsys.readouterr().out.splitlines() if "epoch" in line]
    number = r"-?\d+\.\d{4}"
    for epoch, line in enumerate(lines, start=1):
        assert re.fullmatch(
            rf"quantize: distillation: epoch {epoch}/2: train_loss_epoch {number}, "
            rf"val_loss {number}, val_auprc {number}, val_auroc {number} \(\d+\.\d s\)",
            line,
        ), line
    assert len(lines) == 2
