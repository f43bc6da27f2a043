"""Knowledge distillation: a small dense student learns the trained (MoE) teacher's soft
targets, its probabilities at a temperature, mixed with the labels (Hinton et al. 2015,
"Distilling the Knowledge in a Neural Network").

The student is the dense counterpart of the teacher's family at the `quantize.distill.student`
sizes and is returned as a plain RiskClassifier: it checkpoints, exports and quantizes like
any trained model, with no trace of the teacher.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pipelines.compression.finetune import FineTuning, fine_tune
from pipelines.config import to_container
from pipelines.datamodule import TabularDataModule
from pipelines.errors import PipelineError
from pipelines.lightning_module import RiskClassifier
from pipelines.models import families
from pipelines.models.moe import count_parameters
from pipelines.schema.compression import DistillConfig, StudentConfig
from pipelines.schema.model import ModelConfig

STUDENT_KEY = "quantize.distill.student"


def student_model_config(teacher: ModelConfig, student: StudentConfig) -> dict[str, Any]:
    """The teacher's model config with its dense counterpart's name and the student's sizes,
    as the plain dict RiskClassifier takes.

    An MoE family's dense twin (pipelines/models/families.py: moe_mlp -> dense_mlp,
    moe_transformer -> dense_transformer); dense families stay as they are, and a user's own
    model class gets a dense_mlp student over the same features (its own arguments mean
    nothing to a smaller copy of it).

    A bilstm_attention teacher gets a bilstm_attention student with the student's hidden_dim
    (both LSTM directions together): that architecture has one LSTM layer and no feed-forward
    block, so num_blocks and ffn_dim are recorded but unused. A Transformer
    student was the alternative, but it would swap the architecture the user chose for one
    that must learn a different inductive bias in a few epochs, and bring num_heads
    constraints the bilstm config never had to meet.

    Everything else (seq_len, num_heads, head_dim, dropout) is the teacher's: seq_len fixes the
    shape of the inputs both models read, so the student must keep it.
    """
    for key in ("hidden_dim", "num_blocks", "ffn_dim"):
        value = getattr(student, key)
        # the schema's bounds check this for a composed config; a StudentConfig made in code
        # would otherwise fail deep inside torch with no key named
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PipelineError(
                f"config key '{STUDENT_KEY}.{key}' = {value!r}: expected an integer >= 1"
            )
    name = families.student_name(teacher)
    if (
        name == "dense_transformer"
        and teacher.head_dim is None
        and student.hidden_dim % teacher.num_heads
    ):
        # without an explicit head_dim, hidden_dim is split into num_heads equal parts
        raise PipelineError(
            f"config key '{STUDENT_KEY}.hidden_dim' = {student.hidden_dim}: a {name} student "
            f"keeps the teacher's model.num_heads = {teacher.num_heads}, so expects hidden_dim "
            "divisible by it"
        )
    if name == "bilstm_attention" and student.hidden_dim % 2:
        raise PipelineError(
            f"config key '{STUDENT_KEY}.hidden_dim' = {student.hidden_dim}: a {name} student "
            "expects an even number (half per LSTM direction)"
        )
    config = dataclasses.replace(
        teacher,
        _target_=families.FAMILIES[name].target,
        name=name,
        args={},
        hidden_dim=student.hidden_dim,
        num_blocks=student.num_blocks,
        ffn_dim=student.ffn_dim,
        num_experts=1,
        top_k=1,
        aux_loss_weight=0.0,
    )
    return to_container(config)


def soft_target_loss(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """T^2 * BCE(student / T, sigmoid(teacher / T)): the binary form of Hinton et al.'s
    soft-target cross-entropy. Minimal (zero gradient) where the student's logits equal the
    teacher's, whatever the temperature."""
    soft_targets = torch.sigmoid(teacher_logits / temperature)
    bce = F.binary_cross_entropy_with_logits(student_logits / temperature, soft_targets)
    # dividing the logits by T scales the soft term's gradients by 1/T^2; multiplying back
    # keeps them on the scale of the hard-label loss, so alpha means the same at any T
    return temperature**2 * bce


class DistillationModule(RiskClassifier):
    """A student RiskClassifier whose training loss mixes a frozen teacher's soft targets
    with the labels; validation is RiskClassifier's (val/auprc on the labels).

    Build it with `from_teacher`. The teacher is not an __init__ argument: Lightning's
    save_hyperparameters collects every __init__ argument up the class chain, so it would land
    in hparams (deep-copied, and in checkpoints) and the student would no longer rebuild as a
    plain RiskClassifier from them. It is not a submodule either (kept outside nn.Module's
    registries), so it is absent from parameters(), state_dict(), the optimizer and
    checkpoints, and the trainer's train()/eval() switches never reach it.
    """

    # set by from_teacher
    temperature: float
    alpha: float

    @classmethod
    def from_teacher(
        cls,
        teacher: RiskClassifier,
        student_model: dict[str, Any],
        *,
        temperature: float,
        alpha: float,
    ) -> DistillationModule:
        """A student with `student_model` and everything else (features, their statistics,
        train settings, pos_weight) the teacher's, so the task loss is the teacher's."""
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha}")
        hparams = teacher.hparams
        module = cls(
            n_features=hparams["n_features"],
            feature_names=list(hparams["feature_names"]),
            feature_mean=list(hparams["feature_mean"]),
            feature_std=list(hparams["feature_std"]),
            model=student_model,
            train=dict(hparams["train"]),
            pos_weight=hparams.get("pos_weight"),
        )
        # eval: no dropout, and deterministic MoE routing (no 2nd-expert sampling), so the soft
        # targets are the teacher's inference outputs
        teacher.eval()
        # object.__setattr__ bypasses nn.Module's registration of submodules
        object.__setattr__(module, "_teacher", teacher)
        module.temperature = float(temperature)
        module.alpha = float(alpha)
        return module

    @property
    def teacher(self) -> RiskClassifier:
        teacher = self.__dict__.get("_teacher")
        if teacher is None:
            raise RuntimeError("DistillationModule has no teacher: build it with from_teacher()")
        return teacher

    def on_fit_start(self) -> None:
        # the trainer moves registered modules only; the teacher follows by hand, and goes back
        # where the caller had it when the fit ends
        self._teacher_home = next(self.teacher.parameters()).device
        self.teacher.to(self.device).eval()

    def on_fit_end(self) -> None:
        self.teacher.to(self._teacher_home)

    @torch.no_grad()
    def teacher_logits(self, x: Tensor) -> Tensor:
        """The teacher's logits for this batch, computed per batch rather than precomputed once:
        fine_tune's datamodule yields (x, y) only, so precomputing would need a second dataset
        carrying a logit column (and a datamodule of its own), to save (epochs - 1) forward
        passes of the teacher, with no backward, over the train split: little for the few epochs
        distill runs. Per batch, a teacher whose MoE gate drops tokens scores a row among its
        batch-mates, as it does at inference. no_grad: the teacher gets no gradients and keeps
        no activations. A DeepSpeed MoE teacher creates its single-process group on first use
        (pipelines.models.moe.ensure_process_group)."""
        return self.teacher(x)

    def distillation_loss(
        self, student_logits: Tensor, teacher_logits: Tensor, y: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """(loss, soft-target term, task term): loss = alpha * soft + (1 - alpha) * task.
        The soft term has no pos_weight: it should reproduce the teacher's probabilities, and
        a class weight would bias the student away from them. The task term is the teacher's
        (BCE with its pos_weight, or focal)."""
        soft = soft_target_loss(student_logits, teacher_logits, self.temperature)
        task = self._task_loss(student_logits, y)
        return self.alpha * soft + (1.0 - self.alpha) * task, soft, task

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        # the student is dense (student_model_config), so it has no load-balancing loss
        student_logits = self(x)
        loss, soft, task = self.distillation_loss(student_logits, self.teacher_logits(x), y)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True)
        self.log("train/distill_loss", soft, on_step=True, on_epoch=True, sync_dist=True)
        self.log("train/task_loss", task, on_step=True, on_epoch=True, sync_dist=True)
        return loss


def distill(
    teacher: RiskClassifier,
    dm: TabularDataModule,
    cfg: DistillConfig,
    tuning: FineTuning,
) -> tuple[RiskClassifier, dict[str, Any]]:
    """Trains a dense student from scratch on the teacher's soft targets and the labels for
    `cfg.epochs` at `tuning.lr * cfg.lr_factor` (fine_tune: constant lr, best val/auprc epoch kept).
    Returns the student as a plain RiskClassifier in eval mode, and the fit's summary. The
    teacher is left as it was, apart from being in eval mode."""
    student_model = student_model_config(teacher.model_cfg, cfg.student)
    # the student's initial weights depend on the seed alone, without moving the caller's RNG
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(tuning.seed)
        module = DistillationModule.from_teacher(
            teacher, student_model, temperature=cfg.temperature, alpha=cfg.alpha
        )
    module, fit = fine_tune(
        module, dm, tuning.scaled(cfg.lr_factor), epochs=cfg.epochs, label="distillation"
    )
    # a plain RiskClassifier from the same hparams: what load_checkpoint would rebuild, with
    # the teacher's train settings (fine_tune's constant-lr copy lives on `module` only)
    student = RiskClassifier(**dict(module.hparams))
    student.load_state_dict(module.state_dict())
    # count_parameters' {total, active_per_row}, as the quantize stage reports other models: an
    # MoE teacher's active count is the fairer comparison for latency, its total for size
    info = {
        **fit,
        "student_parameters": count_parameters(student.model),
        "teacher_parameters": count_parameters(teacher.model),
    }
    return student.eval(), info
