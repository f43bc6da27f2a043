"""Knowledge distillation: a small dense student learns a trained MoE teacher's soft targets
and comes back as a plain RiskClassifier."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipelines.compression.distillation import (
    DistillationModule,
    distill,
    soft_target_loss,
    student_model_config,
)
from pipelines.compression.finetune import FineTuning, fine_tune
from pipelines.datamodule import TabularDataModule
from pipelines.errors import PipelineError
from pipelines.lightning_module import RiskClassifier
from pipelines.models.moe import MoEBlock, count_parameters
from pipelines.schema.compression import DistillConfig, StudentConfig
from pipelines.schema.model import ModelConfig
from pipelines.schema.training import TrainConfig
from pipelines.training import load_checkpoint, save_checkpoint
from tests.tiny_models import identity_scaled_classifier, small_model_config

N_FEATURES = 6
FEATURES = [f"f{i}" for i in range(N_FEATURES)]
TEACHER = ModelConfig(
    name="moe_mlp", hidden_dim=16, num_blocks=1, ffn_dim=20, num_experts=4, top_k=2, dropout=0.0
)
STUDENT = StudentConfig(hidden_dim=8, num_blocks=1, ffn_dim=16)
LR = 1e-2
TUNING = FineTuning(lr=LR, seed=0)

# the datamodule, and the validation features that agreement is measured on
Problem = tuple[TabularDataModule, torch.Tensor]
# the student, distill()'s summary, and the teacher's weights from before it ran
Distilled = tuple[RiskClassifier, dict[str, Any], dict[str, torch.Tensor]]


def rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A small learnable problem with an interaction term, labels drawn from its logit."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    logit = 2 * x[:, 0] - 1.5 * x[:, 1] * x[:, 2] + x[:, 3]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return x, y


def datamodule(
    train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray]
) -> TabularDataModule:
    return TabularDataModule(train, val, FEATURES, batch_size=64, eval_batch_size=256, seed=0)


def classifier(model: ModelConfig, pos_weight: float | None = None, **train: Any) -> RiskClassifier:
    settings = TrainConfig(batch_size=64, eval_batch_size=256, lr=LR, **train)
    return identity_scaled_classifier(model, FEATURES, settings, pos_weight).eval()


def student_of(
    teacher: RiskClassifier, alpha: float = 0.7, temperature: float = 2.0
) -> DistillationModule:
    student_model = student_model_config(teacher.model_cfg, STUDENT)
    return DistillationModule.from_teacher(
        teacher, student_model, temperature=temperature, alpha=alpha
    )


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in module.state_dict().items()}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """These models are tiny: intra-op threads only add OpenMP spin-waits, which took this file
    from about 10 s to over 40 s while other tests shared the two CPUs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def problem() -> Problem:
    train, val = rows(2048, seed=0), rows(256, seed=1)
    return datamodule(train, val), torch.from_numpy(val[0])


@pytest.fixture(scope="module")
def teacher(problem: Problem) -> RiskClassifier:
    """A trained DeepSpeed MoE teacher."""
    # train(): Lightning 2.x keeps the modes it finds, and classifier() returns eval mode
    trained, _ = fine_tune(classifier(TEACHER).train(), problem[0], TUNING, epochs=4)
    return trained


@pytest.fixture(scope="module")
def distilled(teacher: RiskClassifier, problem: Problem) -> Distilled:
    """distill() with soft targets only, and the teacher's weights from before it ran."""
    before = snapshot(teacher)
    cfg = DistillConfig(student=STUDENT, alpha=1.0, temperature=2.0, epochs=4)
    student, info = distill(teacher, problem[0], cfg, TUNING)
    return student, info, before


# --- the student's architecture ---


@pytest.mark.parametrize(
    ("teacher_name", "student_name"),
    [
        ("moe_mlp", "dense_mlp"),
        ("moe_transformer", "dense_transformer"),
        ("dense_mlp", "dense_mlp"),
        ("dense_transformer", "dense_transformer"),
        # dense already: stays itself, at the student's hidden_dim
        ("bilstm_attention", "bilstm_attention"),
    ],
)
def test_the_student_is_the_dense_counterpart_of_the_teacher_at_the_student_sizes(
    teacher_name: str, student_name: str
) -> None:
    teacher = ModelConfig(name=teacher_name, seq_len=12, num_heads=4, dropout=0.2)
    student = ModelConfig(**student_model_config(teacher, StudentConfig(32, 1, 64)))

    assert student.name == student_name and not student.is_moe
    assert (student.hidden_dim, student.num_blocks, student.ffn_dim) == (32, 1, 64)
    assert (student.num_experts, student.top_k, student.aux_loss_weight) == (1, 1, 0.0)
    # the inputs' shape and the attention layout are the teacher's
    assert (student.seq_len, student.num_heads, student.dropout) == (12, 4, 0.2)


def test_the_student_is_dense_and_much_smaller_than_the_moe_teacher() -> None:
    teacher = classifier(TEACHER)
    student = student_of(teacher)

    assert not any(isinstance(m, MoEBlock) for m in student.modules())
    assert student.model_cfg.hidden_dim == STUDENT.hidden_dim
    assert count_parameters(student.model)["total"] < count_parameters(teacher.model)["total"] / 4
    # the same features, statistics and training settings as the teacher
    for key in ("n_features", "feature_names", "feature_mean", "feature_std", "train"):
        assert student.hparams[key] == teacher.hparams[key]


@pytest.mark.parametrize(
    ("teacher_name", "student", "key"),
    [
        # 30 is not divisible by the teacher's 4 heads
        ("moe_transformer", StudentConfig(hidden_dim=30), "hidden_dim"),
        # an LSTM direction gets half of hidden_dim
        ("bilstm_attention", StudentConfig(hidden_dim=7), "hidden_dim"),
        ("moe_mlp", StudentConfig(num_blocks=0), "num_blocks"),
        ("moe_mlp", StudentConfig(ffn_dim=0), "ffn_dim"),
    ],
)
def test_an_invalid_student_config_fails_on_one_line_naming_its_key(
    teacher_name: str, student: StudentConfig, key: str
) -> None:
    with pytest.raises(PipelineError) as error:
        student_model_config(ModelConfig(name=teacher_name, num_heads=4), student)
    message = str(error.value)
    assert f"'quantize.distill.student.{key}'" in message and "\n" not in message


# --- the loss ---


def test_with_alpha_one_the_loss_does_not_depend_on_the_labels() -> None:
    module = student_of(classifier(TEACHER), alpha=1.0)
    torch.manual_seed(1)
    student_logits, teacher_logits = torch.randn(64), torch.randn(64)
    y = (torch.rand(64) < 0.3).float()

    loss, _, _ = module.distillation_loss(student_logits, teacher_logits, y)
    shuffled, _, _ = module.distillation_loss(student_logits, teacher_logits, y[torch.randperm(64)])
    flipped, _, _ = module.distillation_loss(student_logits, teacher_logits, 1 - y)

    assert torch.equal(loss, shuffled) and torch.equal(loss, flipped)


def test_with_alpha_zero_the_loss_is_the_teachers_task_loss() -> None:
    # the teacher's pos_weight carries over to the student's task loss
    module = student_of(classifier(TEACHER, pos_weight=3.0), alpha=0.0)
    torch.manual_seed(1)
    student_logits, teacher_logits = torch.randn(64), torch.randn(64)
    y = (torch.rand(64) < 0.3).float()

    loss, _, task = module.distillation_loss(student_logits, teacher_logits, y)

    expected = F.binary_cross_entropy_with_logits(student_logits, y, pos_weight=torch.tensor(3.0))
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(task, expected)


def test_with_alpha_zero_a_focal_teacher_gives_a_focal_task_loss() -> None:
    module = student_of(classifier(TEACHER, loss="focal", focal_gamma=2.0), alpha=0.0)
    torch.manual_seed(1)
    student_logits, teacher_logits = torch.randn(64), torch.randn(64)
    y = (torch.rand(64) < 0.3).float()

    loss, _, _ = module.distillation_loss(student_logits, teacher_logits, y)

    bce = F.binary_cross_entropy_with_logits(student_logits, y, reduction="none")
    torch.testing.assert_close(loss, ((1 - torch.exp(-bce)) ** 2 * bce).mean())


def test_the_soft_term_is_minimised_where_the_student_matches_the_teacher() -> None:
    torch.manual_seed(1)
    teacher_logits = torch.randn(64) * 3
    student_logits = teacher_logits.clone().requires_grad_(True)

    at_teacher = soft_target_loss(student_logits, teacher_logits, temperature=2.0)
    at_teacher.backward()

    assert student_logits.grad is not None
    assert student_logits.grad.abs().max() < 1e-6
    for shift in (-0.5, 0.5):
        moved = soft_target_loss(teacher_logits + shift, teacher_logits, temperature=2.0)
        assert moved > at_teacher


def test_the_soft_terms_gradient_keeps_its_scale_as_the_temperature_rises() -> None:
    # the T^2 factor: without it, the gradient at T=8 would be ~1/64 of that at T=1
    teacher_logits = torch.zeros(16)

    def gradient(temperature: float) -> torch.Tensor:
        student_logits = torch.full((16,), 0.2, requires_grad=True)
        soft_target_loss(student_logits, teacher_logits, temperature).backward()
        assert student_logits.grad is not None
        return student_logits.grad.abs().mean()

    assert 0.5 < gradient(8.0) / gradient(1.0) < 2.0


# --- the teacher stays outside the student ---


def test_the_teacher_is_frozen_in_eval_mode_and_not_part_of_the_student() -> None:
    teacher = classifier(TEACHER).train()
    module = student_of(teacher).train()

    assert not teacher.training  # and the student's train() does not reach it
    teacher_params = {id(p) for p in teacher.parameters()}
    assert not teacher_params & {id(p) for p in module.parameters()}
    plain = RiskClassifier(**dict(module.hparams))
    assert module.state_dict().keys() == plain.state_dict().keys()
    assert set(module.hparams) == set(plain.hparams)


# Lightning 2.6's pytree use warns under torch 2.13 (fine_tune hides it the same way)
@pytest.mark.filterwarnings(r"ignore:.*isinstance\(treespec, LeafSpec\)")
def test_a_fit_logs_both_losses_and_validates_on_the_labels(problem: Problem) -> None:
    module = student_of(classifier(TEACHER))
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=problem[0])

    logged = trainer.callback_metrics
    assert {"train/loss", "train/distill_loss", "train/task_loss", "val/auprc"} <= set(logged)
    assert not module.teacher.training


def test_distill_leaves_the_teacher_unchanged_and_without_gradients(
    teacher: RiskClassifier, distilled: Distilled
) -> None:
    _, _, before = distilled

    assert not teacher.training
    assert all(p.grad is None for p in teacher.parameters())
    after = teacher.state_dict()
    assert all(torch.equal(before[key], after[key]) for key in before)


def test_distill_returns_a_plain_student_in_eval_mode_with_its_summary(
    teacher: RiskClassifier, distilled: Distilled
) -> None:
    student, info, _ = distilled

    assert type(student) is RiskClassifier and not student.training
    assert student.model_cfg.name == "dense_mlp"
    assert info["epochs"] == 4 and info["lr"] == pytest.approx(LR)
    assert 0.0 < info["best_val_auprc"] <= 1.0
    assert info["student_parameters"] == count_parameters(student.model)
    assert info["teacher_parameters"] == count_parameters(teacher.model)
    # smaller than the teacher even counting only the experts a row is routed to
    assert info["student_parameters"]["total"] < info["teacher_parameters"]["active_per_row"]


def test_the_distilled_student_round_trips_through_a_checkpoint(
    tmp_path: Path,
    problem: Problem,
    distilled: Distilled,
) -> None:
    student, _, _ = distilled
    save_checkpoint(student, tmp_path / "student.ckpt", {})
    loaded = load_checkpoint(tmp_path / "student.ckpt")

    x = problem[1]
    with torch.no_grad():
        assert torch.equal(loaded(x), student(x))


def test_a_distillation_module_checkpoints_as_a_plain_risk_classifier(tmp_path: Path) -> None:
    module = student_of(classifier(TEACHER)).eval()
    save_checkpoint(module, tmp_path / "student.ckpt", {})
    loaded = load_checkpoint(tmp_path / "student.ckpt")

    assert type(loaded) is RiskClassifier
    x = torch.randn(32, N_FEATURES)
    with torch.no_grad():
        assert torch.equal(loaded(x), module(x))


# --- it works ---


def test_distillation_brings_the_student_close_to_the_teacher(
    teacher: RiskClassifier,
    problem: Problem,
    distilled: Distilled,
) -> None:
    """Measured as the mean absolute difference of probabilities on the validation rows
    (seeded: about 0.33 untrained, 0.08 labels only, 0.04 distilled; 0.4-0.55 of the
    labels-only gap over seeds 0-4)."""
    dm, x = problem
    student, _, _ = distilled
    labels_only, _ = distill(
        teacher, dm, DistillConfig(student=STUDENT, alpha=0.0, epochs=4), TUNING
    )
    untrained = student_of(teacher).eval()

    def gap(model: torch.nn.Module) -> float:
        with torch.no_grad():
            return float((torch.sigmoid(model(x)) - torch.sigmoid(teacher(x))).abs().mean())

    assert gap(student) < 0.25 * gap(untrained)
    assert gap(student) < 0.75 * gap(labels_only)


@pytest.mark.parametrize("teacher_name", ["moe_transformer", "bilstm_attention"])
def test_a_sequence_teacher_distils_into_a_sequence_student(teacher_name: str) -> None:
    seq_len = 4

    def histories(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, seq_len, N_FEATURES + 1)).astype(np.float32)
        x[..., -1] = 1.0  # every position a real transaction
        return x, (x[:, -1, 0] > 0).astype(np.float32)

    teacher = classifier(
        small_model_config(teacher_name, hidden_dim=8, ffn_dim=8, num_experts=2, seq_len=seq_len)
    )
    cfg = DistillConfig(student=StudentConfig(hidden_dim=4, num_blocks=1, ffn_dim=8), epochs=1)
    student, info = distill(teacher, datamodule(histories(128, 0), histories(64, 1)), cfg, TUNING)

    expected = {"moe_transformer": "dense_transformer"}.get(teacher_name, teacher_name)
    assert student.model_cfg.name == expected
    assert info["student_parameters"]["total"] < info["teacher_parameters"]["total"]
    with torch.no_grad():
        assert student(torch.from_numpy(histories(8, 2)[0])).shape == (8,)
