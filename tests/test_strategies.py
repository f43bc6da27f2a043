"""Training strategies from conf/strategy/: what each composes to, the early errors on a
machine without CUDA, and real DeepSpeed engines started from the YAML on CPU."""

from __future__ import annotations

import json

import pytest
import torch
from hydra import compose, initialize_config_dir

from pipelines.config import validate
from pipelines.errors import PipelineError
from pipelines.strategy import build_strategy, check_hardware, deepspeed_config
from pipelines.zero_check import CONF
from tests.small import run_python, run_stage

STRATEGIES = (
    "auto",
    "ddp",
    "deepspeed_zero1",
    "deepspeed_zero2",
    "deepspeed_zero3",
    "deepspeed_zero3_offload",
)
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only errors")


def composed(*overrides: str):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return validate(compose("config", overrides=list(overrides)), source="test")


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_option_composes_and_validates(name: str) -> None:
    model = "model=dense_mlp" if name.startswith("deepspeed_zero3") else "model=moe_mlp"
    cfg = composed(f"strategy={name}", model)
    expected = name.split("_")[0]
    assert cfg.strategy.name == expected
    if expected == "deepspeed":
        stage = int(name.removeprefix("deepspeed_zero")[0])
        assert cfg.strategy.zero_stage == stage
        assert cfg.strategy.offloads_optimizer == name.endswith("offload")


def test_zero_settings_and_precision_reach_the_deepspeed_config() -> None:
    cfg = composed(
        "strategy=deepspeed_zero2",
        "trainer.precision=bf16-mixed",
        "trainer.accumulate_grad_batches=4",
        "strategy.config.zero_optimization.reduce_bucket_size=5e7",
    )
    for_lightning = deepspeed_config(cfg)
    assert for_lightning["zero_optimization"]["stage"] == 2
    assert for_lightning["zero_optimization"]["reduce_bucket_size"] == 5e7
    assert for_lightning["bf16"]["enabled"] and not for_lightning["fp16"]["enabled"]
    # Lightning sets accumulation itself and refuses a config that already has it
    assert "gradient_accumulation_steps" not in for_lightning
    complete = deepspeed_config(cfg, micro_batch_size=32)
    assert complete["gradient_accumulation_steps"] == 4
    assert complete["train_batch_size"] == 32 * 4
    assert complete["gradient_clipping"] == cfg.trainer.gradient_clip_val


def test_fp16_turns_on_loss_scaling_from_the_yaml() -> None:
    cfg = composed("strategy=deepspeed_zero1", "trainer.precision=16-mixed")
    ds = deepspeed_config(cfg)
    assert ds["fp16"]["enabled"] and ds["fp16"]["initial_scale_power"] == 16
    assert not ds["bf16"]["enabled"]


def test_zero3_with_the_deepspeed_moe_layer_is_refused_before_any_work() -> None:
    with pytest.raises(PipelineError, match="ZeRO stage 1 or 2 only"):
        composed("strategy=deepspeed_zero3", "model=moe_mlp")


@no_cuda
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("strategy=deepspeed_zero2", "'strategy' = deepspeed"),
        ("trainer=gpu", "'trainer.accelerator'"),
        ("trainer.precision=16-mixed", "'trainer.precision'"),
    ],
)
def test_cuda_only_settings_fail_early_on_a_cpu_machine(override: str, key: str) -> None:
    with pytest.raises(PipelineError, match=key):
        check_hardware(composed(override))


@no_cuda
def test_choosing_deepspeed_on_cpu_ends_the_train_stage_with_one_line(tmp_path) -> None:
    from tests.small import small_params

    params = small_params(tmp_path / "params.yaml")
    done = run_stage("train", params, tmp_path, "strategy.name=deepspeed", timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("error: train: config key 'strategy'")
    assert "needs a CUDA GPU" in done.stderr
    assert not (tmp_path / "models").exists()


def test_ddp_strategy_is_built_with_the_backend_for_the_machine() -> None:
    strategy = build_strategy(composed("strategy=ddp"))
    expected = "nccl" if torch.cuda.is_available() else "gloo"
    assert strategy._process_group_backend == expected
    assert build_strategy(composed("strategy=auto")) == "auto"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("strategy", "model"),
    [
        ("deepspeed_zero1", "moe_mlp"),
        ("deepspeed_zero2", "moe_mlp"),
        ("deepspeed_zero3", "dense_mlp"),
    ],
)
def test_the_yaml_zero_configs_start_a_real_deepspeed_engine_that_learns(
    strategy: str, model: str
) -> None:
    """DeepSpeed's engine on CPU (gloo): Lightning's strategy needs CUDA, the engine not."""
    done = run_python(
        "-m",
        "pipelines.zero_check",
        f"strategy={strategy}",
        f"model={model}",
        "steps=6",
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    line = done.stdout.strip().splitlines()[-1]
    stage = strategy.removeprefix("deepspeed_zero")
    assert line.startswith(f"ZeRO stage {stage}, {model}: 6 steps")
    losses = [float(v) for v in line.split("losses")[1].split()]
    assert all(v == v for v in losses)  # no NaN
    assert losses[-1] < losses[0]


def test_submitit_slurm_launcher_takes_nodes_and_tasks_from_the_trainer_config() -> None:
    """Multi-node runs change config, not code: SLURM nodes/tasks follow trainer.*."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(
            "config",
            overrides=[
                "hydra/launcher=slurm",
                "strategy=deepspeed_zero2",
                "trainer=gpu",
                "trainer.devices=4",
                "trainer.num_nodes=2",
            ],
            return_hydra_config=True,
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.nodes == 2
    assert launcher.tasks_per_node == 4
    assert launcher.gpus_per_node == 4
    typed = validate(cfg, source="test")
    assert typed.trainer.num_nodes == 2 and typed.strategy.zero_stage == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("strategy", ["deepspeed_zero2", "deepspeed_zero3"])
def test_lightning_deepspeed_training_on_gpu(strategy: str, tmp_path) -> None:
    from tests.small import small_params

    model = "dense_mlp" if strategy.endswith("3") else "moe_mlp"
    params = small_params(
        tmp_path / "params.yaml", groups=[f"strategy={strategy}", "trainer=gpu", f"model={model}"]
    )
    for stage in ("ingest", "profile", "clean", "augment", "train"):
        done = run_stage(stage, params, tmp_path, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "models" / "model.ckpt").is_file()


# A DeepSpeed engine on the CPU (gloo) takes a step and saves a checkpoint the way Lightning's
# DeepSpeed strategy does on a GPU (tag "checkpoint"); the trained weights must come back out.
# Runs in its own process: DeepSpeed's process groups outlive the engine.
WEIGHTS_FROM_DEEPSPEED = """
import json, os, sys
os.environ.setdefault("DS_ACCELERATOR", "cpu"); os.environ.setdefault("LOCAL_RANK", "0")
from pathlib import Path
import deepspeed, torch
from pipelines.config import to_container
from pipelines.lightning_module import RiskClassifier
from pipelines.models.moe import ensure_process_group
from pipelines.strategy import deepspeed_config
from pipelines.training import _best_state_dict, with_weights
from pipelines.zero_check import compose

strategy, model, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
cfg = compose([f"strategy={strategy}", f"model={model}", "model.hidden_dim=256",
               "model.ffn_dim=512"])
ensure_process_group()
torch.manual_seed(0)
hparams = dict(n_features=8, feature_names=[f"f{i}" for i in range(8)], feature_mean=[0.0] * 8,
               feature_std=[1.0] * 8, model=to_container(cfg.model), train=to_container(cfg.train))
module = RiskClassifier(**hparams)
engine, *_ = deepspeed.initialize(model=module, optimizer=module.build_optimizer(),
                                  config=deepspeed_config(cfg, 32))
x = torch.randn(32, 8); y = (x[:, 0] > 0).float()
logits, aux, _ = engine.module.model.forward_with_aux(x)
engine.backward(module._task_loss(logits, y)); engine.step()
engine.save_checkpoint(str(out / "best.ckpt"), tag="checkpoint")
partitioned = any(p.numel() == 0 for p in module.parameters())
if partitioned:
    state = _best_state_dict(out / "best.ckpt", out)
else:
    expected = {k: v.detach().clone().float() for k, v in module.state_dict().items()}
    state = _best_state_dict(out / "best.ckpt", out)
    assert sorted(state) == sorted(expected), (sorted(state), sorted(expected))
    assert all(torch.equal(state[k], expected[k]) for k in expected)
restored = with_weights(module, state).eval()
files = sorted(p.name for p in (out / "best.ckpt" / "checkpoint").iterdir())
print(json.dumps({"partitioned": partitioned, "files": files,
                  "finite": bool(torch.isfinite(restored(torch.randn(4, 8))).all()),
                  "fresh_module": restored is not module}))
"""


def test_an_moe_model_comes_back_whole_from_deepspeeds_per_expert_checkpoint(tmp_path) -> None:
    """DeepSpeed's zero_to_fp32 refuses MoE checkpoints (it reads the per-expert files as
    model states; seen on an H200): the trained module and each expert file make the model."""
    done = run_python(
        "-c", WEIGHTS_FROM_DEEPSPEED, "deepspeed_zero2", "moe_mlp", str(tmp_path), timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert any("expert" in name for name in result["files"])
    assert not result["partitioned"] and result["finite"] and not result["fresh_module"]


def test_zero3_weights_go_into_a_fresh_module_when_training_left_its_own_partitioned(
    tmp_path,
) -> None:
    """ZeRO-3 leaves parameters above its persistence threshold empty on the rank (seen on an
    H200 at 1024x8192 layers); the best weights load into a fresh module instead."""
    done = run_python(
        "-c", WEIGHTS_FROM_DEEPSPEED, "deepspeed_zero3", "dense_mlp", str(tmp_path), timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["partitioned"] and result["finite"] and result["fresh_module"]
