"""A user's own model class, outside the package, named by `model._target_`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.config import load_params, to_container
from pipelines.errors import PipelineError
from pipelines.layout import Layout
from pipelines.lightning_module import RiskClassifier
from pipelines.training import load_checkpoint, save_checkpoint
from tests.doc_blocks import block_under
from tests.small import copy_project, env, small_params

GUIDE = "docs/how-to/add-a-model-or-modality.md"

STAGES = ("ingest", "profile", "clean", "augment", "train", "quantize", "evaluate", "export")
USER_MODEL = ["model._target_=my_models.TinyNet", "model.args.width=16"]


def readme_model_module(folder: Path) -> Path:
    """The documented example class ("Bring your own model"), written to
    `folder/my_models.py`, outside the package."""
    block = block_under(GUIDE, "Bring your own model", lang="python")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "my_models.py").write_text(block.text)
    return folder


@pytest.fixture
def user_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = readme_model_module(tmp_path / "user")
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_a_users_model_gets_its_class_name_and_keeps_its_arguments(
    user_folder: Path, tmp_path: Path
) -> None:
    # composed by Hydra with the documented overrides
    groups = ["model._target_=my_models.TinyNet", "+model.args.width=16"]
    cfg = load_params(small_params(tmp_path / "params.yaml", groups=groups))
    assert (cfg.model.name, cfg.model._target_, cfg.model.args) == (
        "tiny_net",
        "my_models.TinyNet",
        {"width": 16},
    )
    assert not cfg.model.is_moe and not cfg.model.is_sequence


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "model.args.widht=16",
            r"'model.args.widht' is not an argument of my_models.TinyNet: "
            r"did you mean width\?",
        ),
        ("model.args.width=wide", r"'model.args.width' = 'wide': my_models.TinyNet expects int"),
        (
            "model._target_=my_models.TinyNett",
            r"'model._target_' = 'my_models.TinyNett': cannot "
            r"import it",
        ),
        ("model.args.width=16", None),
    ],
)
def test_a_typo_or_bad_value_for_a_users_model_fails_naming_the_key(
    user_folder: Path, tmp_path: Path, override: str, message: str | None
) -> None:
    params = small_params(tmp_path / "params.yaml", ["model._target_=my_models.TinyNet"])
    if message is None:
        assert load_params(params, [override]).model.args == {"width": 16}
        return
    with pytest.raises(PipelineError, match=message):
        load_params(params, [override])


def test_a_family_takes_no_args_and_model_name_still_picks_the_family(tmp_path: Path) -> None:
    params = small_params(tmp_path / "params.yaml")
    cfg = load_params(params, ["model.name=bilstm_attention"])
    assert cfg.model._target_ == "pipelines.models.sequence.BiLSTMAttentionClassifier"
    with pytest.raises(PipelineError, match=r"'model.args' = \{'width': 16\}: moe_mlp takes no"):
        load_params(params, ["model.args.width=16"])


@pytest.mark.slow
def test_a_users_own_model_runs_through_all_eight_stages(tmp_path: Path) -> None:
    clone = copy_project(tmp_path / "clone")
    user = readme_model_module(tmp_path / "user")
    params = small_params(
        tmp_path / "params.yaml",
        [
            *USER_MODEL,
            "trainer.max_epochs=1",
            "quantize.distill.epochs=1",
            # ship the user's network, whatever the baselines measure (rule best could pick one)
            "export.select.rule=variant",
            "export.select.variant=fp32",
        ],
    )
    root = tmp_path / "run"
    stage_env = env() | {"PYTHONPATH": os.pathsep.join([str(user), str(clone)])}
    for stage in STAGES:
        done = subprocess.run(
            [sys.executable, "-m", f"stages.{stage}", "--params", str(params), "--root", str(root)],
            cwd=clone,
            env=stage_env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"{stage}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    layout = Layout(root)
    quantize = json.loads(layout.quantize_metrics.read_text())
    assert quantize["compression"]["pruned"] == {
        "skipped": "skipped: tiny_net has no feed-forward blocks to prune"
    }
    assert quantize["compression"]["student"]["model"] == "dense_mlp"
    assert {"fp32", "int8_dynamic", "int8_static", "student", "qat_int8"} <= set(
        quantize["size_bytes"]
    )
    card = json.loads((layout.export_dir / "model_card.json").read_text())
    assert card["model"] == "tiny_net"
    assert card["version"].startswith("finance_risk-tiny_net-")
    assert card["config"]["model"]["_target_"] == "my_models.TinyNet"
    assert card["config"]["model"]["args"] == {"width": 16}
    assert max(card["parity_max_abs_diff"].values()) <= card["parity_atol"]
    assert "my_models.TinyNet" in (layout.export_dir / "model_card.md").read_text()


def test_a_checkpoint_of_a_users_model_names_the_class_it_cannot_import(
    user_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = load_params(small_params(tmp_path / "params.yaml", USER_MODEL))
    module = RiskClassifier(
        n_features=3,
        feature_names=["a", "b", "c"],
        feature_mean=[0.0] * 3,
        feature_std=[1.0] * 3,
        model=to_container(cfg.model),
        train=to_container(cfg.train),
    )
    path = tmp_path / "model.ckpt"
    save_checkpoint(module, path, {})
    loaded = load_checkpoint(path)
    assert type(loaded.model.network).__name__ == "TinyNet"
    assert loaded.model.network.net[0].out_features == 16
    monkeypatch.delitem(sys.modules, "my_models")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(user_folder)])
    with pytest.raises(PipelineError, match=r"model.ckpt: config key 'model._target_' = "):
        load_checkpoint(path)
