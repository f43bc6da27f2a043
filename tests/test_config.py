"""The config tree is the single source of truth, and it is validated before any work."""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pipelines.compose import compose_params
from pipelines.config import PipelineConfig, load_params, validate
from pipelines.errors import PipelineError
from pipelines.layout import Layout
from pipelines.schema.fields import Bounds
from tests.small import REPO

CONF = str(REPO / "conf")


def composed(overrides: list[str] | None = None):
    with initialize_config_dir(CONF, version_base=None):
        return compose("config", overrides=overrides or [])


def test_committed_params_yaml_equals_the_composed_default(tmp_path: Path) -> None:
    fresh = tmp_path / "params.yaml"
    compose_params(fresh, [])
    assert fresh.read_text() == (REPO / "params.yaml").read_text(), (
        "params.yaml drifted from conf/: run `make params` and commit it"
    )


def test_params_yaml_has_no_hydra_interpolation_outside_the_hydra_node() -> None:
    text = (REPO / "params.yaml").read_text()
    assert "${" not in text
    cfg = composed()
    OmegaConf.resolve(cfg)  # what DVC does, outside any Hydra app: must not raise
    assert "hydra" not in cfg


@pytest.mark.parametrize("experiment", ["finance_risk", "german_credit"])
@pytest.mark.parametrize("model", ["moe_mlp", "dense_mlp"])
def test_every_experiment_and_model_composes_and_validates(experiment: str, model: str) -> None:
    cfg = validate(composed([f"+experiment={experiment}", f"model={model}"]))
    assert isinstance(cfg, PipelineConfig)
    assert cfg.model.name == model


@pytest.mark.parametrize(
    "model", ["image_cnn_moe", "image_cnn_dense", "image_patch_moe", "image_patch_dense"]
)
def test_the_image_experiment_composes_with_every_image_model(model: str) -> None:
    cfg = validate(composed(["+experiment=visual_inspection", f"model={model}"]))
    assert cfg.data.modality == "image" and cfg.model.name == model
    if model.endswith("_dense"):  # the dense twin: the MoE model's active width, one expert
        moe = validate(composed(["+experiment=visual_inspection", f"model={model[:-6]}_moe"]))
        assert cfg.model.ffn_dim == moe.model.ffn_dim * moe.model.top_k
        assert cfg.model.num_experts == 1


def test_an_image_model_on_a_table_fails_naming_the_modality() -> None:
    with pytest.raises(PipelineError, match=r"'model\.name' = 'image_cnn_moe' with data\.modality"):
        validate(composed(["model=image_cnn_moe"]))


def test_dense_baseline_has_the_moe_models_active_feed_forward_width() -> None:
    moe = validate(composed(["model=moe_mlp"])).model
    dense = validate(composed(["model=dense_mlp"])).model
    assert dense.ffn_dim == moe.ffn_dim * moe.top_k


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["+trainer.max_epoch=3"], "trainer.max_epoch"),
        (["trainer.max_epochs=abc"], "trainer.max_epochs"),
        (["model.name=transformer"], "model.name"),
        (["data.split.method=random"], "data.split.method"),
        (["data.split.val_fraction=0.9"], "data.split.val_fraction"),
        (["model.top_k=1"], "model.top_k"),
        (["quantize.static.calibration_method=kl"], "quantize.static.calibration_method"),
        # attention heads split hidden_dim into equal parts
        (["model=dense_transformer", "model.hidden_dim=30"], "'model.num_heads' = 4"),
        (["model=moe_transformer", "model.num_heads=5"], "'model.hidden_dim' = 64"),
        # half of hidden_dim per LSTM direction
        (["model=bilstm_attention", "model.hidden_dim=33"], "'model.hidden_dim' = 33"),
        (
            [
                "data.profile.gates.min_positive_fraction=0.6",
                "data.profile.gates.max_positive_fraction=0.5",
            ],
            "'data.profile.gates.min_positive_fraction' = 0.6",
        ),
        (["train.pos_weight=inf"], "'train.pos_weight' = inf"),
        (["train.pos_weight=-inf"], "'train.pos_weight' = -inf"),
        (["train.pos_weight=nan"], "'train.pos_weight' = nan"),
        (["train.pos_weight=0"], "'train.pos_weight' = 0"),
        (
            ["evaluate.baselines=[logistic_regression,xgboost]"],
            "'evaluate.baselines' has 'xgboost'",
        ),
        (["export.select.rule=slowest"], "export.select.rule"),
        (["export.select.variant=int4"], "export.select.variant"),
    ],
)
def test_bad_config_fails_early_naming_the_key(overrides: list[str], named: str) -> None:
    with pytest.raises(PipelineError, match=re.escape(named)) as err:
        validate(composed(overrides))
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=dense_transformer", "model.hidden_dim=32", "model.num_heads=8"],
        ["model=bilstm_attention", "model.hidden_dim=34"],
        # an equal lower and upper bound admits exactly one positive fraction
        [
            "data.profile.gates.min_positive_fraction=0.3",
            "data.profile.gates.max_positive_fraction=0.3",
        ],
        ["train.pos_weight=12.5"],
        ["train.pos_weight=auto"],
    ],
)
def test_values_at_the_edge_of_a_cross_key_rule_pass(overrides: list[str]) -> None:
    validate(composed(overrides))


def test_load_params_applies_dotlist_overrides_and_validates(tmp_path: Path) -> None:
    cfg = load_params(REPO / "params.yaml", ["train.lr=0.01"])
    assert cfg.train.lr == 0.01
    with pytest.raises(PipelineError, match="params.yaml"):
        load_params(tmp_path / "params.yaml")


def test_dvc_yaml_declares_the_paths_the_stages_write() -> None:
    """dvc.yaml and pipelines.layout name the same artifacts."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    layout = Layout(Path("."))
    declared = set()
    for stage in stages.values():
        for key in ("outs", "metrics", "plots"):
            for entry in stage.get(key, []):
                declared.add(next(iter(entry)) if isinstance(entry, dict) else entry)
    expected = {
        layout.ingested,
        layout.profile_report,
        layout.profile_metrics,
        layout.cleaned,
        layout.quarantine,
        layout.clean_metrics,
        layout.augmented_train,
        layout.augment_metrics,
        layout.checkpoint,
        layout.train_metrics,
        layout.train_history,
        layout.onnx_dir,
        layout.quantize_metrics,
        layout.baselines_onnx_dir,
        layout.evaluate_metrics,
        layout.headline_metrics,
        layout.roc_curves,
        layout.pr_curves,
        layout.evaluate_report,
        layout.export_dir,
    }
    assert {Path(p) for p in declared} == {Path(str(p)) for p in expected}


def test_dvc_params_name_keys_that_exist_in_params_yaml() -> None:
    params = OmegaConf.load(REPO / "params.yaml")
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for key in stage.get("params", []):
            assert OmegaConf.select(params, key) is not None, f"{name}: params key {key} missing"


def test_dvc_hydra_composition_is_enabled() -> None:
    config = (REPO / ".dvc" / "config").read_text()
    assert "[hydra]" in config and "enabled = true" in config


# --- every numeric key has a range, checked before any data work ------------------------------


def field_default(spec: dataclasses.Field) -> typing.Any:
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return spec.default


def bounded_fields(node: type = PipelineConfig, prefix: str = "") -> list[tuple[str, Bounds]]:
    found = []
    for spec in dataclasses.fields(node):
        key = f"{prefix}{spec.name}"
        if "bounds" in spec.metadata:
            found.append((key, spec.metadata["bounds"]))
        default = field_default(spec)
        if dataclasses.is_dataclass(default):
            found.extend(bounded_fields(type(default), f"{key}."))
    return found


def numeric_fields(node: type = PipelineConfig, prefix: str = "") -> list[str]:
    hints = typing.get_type_hints(node)
    found = []
    for spec in dataclasses.fields(node):
        key, hint = f"{prefix}{spec.name}", hints[spec.name]
        args = typing.get_args(hint) or (hint,)
        if any(a in (int, float) for a in args) or (
            typing.get_origin(hint) is list and typing.get_args(hint)[0] in (int, float)
        ):
            found.append(key)
        default = field_default(spec)
        if dataclasses.is_dataclass(default):
            found.extend(numeric_fields(type(default), f"{key}."))
    return found


def out_of_range(bounds: Bounds) -> list[tuple[str, float]]:
    """One value just past each side the range declares: (side, value)."""
    values = []
    if bounds.gt is not None:
        values.append(("below", bounds.gt))
    elif bounds.ge is not None:
        values.append(("below", bounds.ge - 1))
    if bounds.lt is not None:
        values.append(("above", bounds.lt))
    elif bounds.le is not None:
        values.append(("above", bounds.le + 1))
    return values


OUT_OF_RANGE = [
    pytest.param(key, value, id=f"{key}-{side}")
    for key, bounds in bounded_fields()
    for side, value in out_of_range(bounds)
]


def test_keys_with_an_upper_bound_are_also_tested_above_it() -> None:
    ids = {param.id for param in OUT_OF_RANGE}
    for key in ("data.split.val_fraction", "quantize.opset", "seed", "model.dropout"):
        assert {f"{key}-below", f"{key}-above"} <= ids
    assert "data.profile.gates.max_drift_psi-above" not in ids  # declared >= 0 only


# clean.ranges' min/max are user data bounds, any number; pos_weight is checked by hand (it may
# also be "auto")
UNBOUNDED_BY_DESIGN = {"train.pos_weight"}


# the text, image and series settings check their ranges in their dataclasses' __post_init__
# (pipelines/modalities/{text/rules_config,image/config,timeseries/config}.py), so the
# libraries refuse them too when used without the config; the test below holds every one of
# them to it
SELF_CHECKED = ("data.text.", "data.image.", "data.timeseries.")


def test_every_numeric_key_of_the_schema_declares_its_range() -> None:
    declared = {key for key, _ in bounded_fields()}
    numeric = {key for key in numeric_fields() if not key.startswith(SELF_CHECKED)}
    missing = numeric - declared - UNBOUNDED_BY_DESIGN
    assert not missing, f"numeric keys without a range: {sorted(missing)}"


@pytest.mark.parametrize("key", [k for k in numeric_fields() if k.startswith(SELF_CHECKED)])
def test_every_numeric_text_and_image_key_refuses_a_negative_value_naming_the_key(
    key: str,
) -> None:
    cfg = OmegaConf.merge(OmegaConf.load(REPO / "params.yaml"), {})
    default = OmegaConf.select(OmegaConf.structured(PipelineConfig), key)
    if OmegaConf.is_dict(default):  # a mapping of numbers (class shares): one entry at -1
        OmegaConf.update(cfg, f"{key}.crack", -1, force_add=True)
    elif OmegaConf.is_list(default):  # a [low, high] range
        OmegaConf.update(cfg, key, [-1, 1], force_add=True)
    else:
        OmegaConf.update(cfg, key, -1, force_add=True)
    # the libraries' own checks name the key without the "config key '...'" quotes
    refusal = rf"'?{re.escape(key)}(\.crack)?'? = \[?-1(\.0)?(, 1(\.0)?)?\]?: expected"
    with pytest.raises(PipelineError, match=refusal) as err:
        validate(cfg)
    assert len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize(("key", "bad"), OUT_OF_RANGE)
def test_a_value_out_of_range_fails_in_the_config_check_naming_the_key(
    key: str, bad: float
) -> None:
    default = OmegaConf.select(OmegaConf.structured(PipelineConfig), key)
    value = [bad] if isinstance(default, list) or OmegaConf.is_list(default) else bad
    cfg = OmegaConf.merge(OmegaConf.load(REPO / "params.yaml"), {})
    OmegaConf.update(cfg, key, value, force_add=False)
    with pytest.raises(PipelineError, match=re.escape(f"config key '{key}' = ")) as err:
        validate(cfg)
    assert "expected" in str(err.value) and len(str(err.value).splitlines()) == 1


@pytest.mark.parametrize(
    ("typo", "suggested"),
    [
        ("trainer.max_epoch", "trainer.max_epochs"),
        ("train.bach_size", "train.batch_size"),
        ("data.source.rowz", "data.source.rows"),
        ("quantize.static.calibration_row", "quantize.static.calibration_rows"),
    ],
)
def test_a_typo_in_a_key_names_the_closest_valid_key(typo: str, suggested: str) -> None:
    cfg = OmegaConf.load(REPO / "params.yaml")
    OmegaConf.set_struct(cfg, False)
    OmegaConf.update(cfg, typo, 1, force_add=True)
    with pytest.raises(PipelineError, match=f"did you mean {re.escape(suggested)}"):
        validate(cfg)


def test_the_moved_export_variant_key_names_its_new_place() -> None:
    cfg = OmegaConf.load(REPO / "params.yaml")
    OmegaConf.set_struct(cfg, False)
    OmegaConf.update(cfg, "export.variant", "int8_dynamic", force_add=True)
    moved = r"'export.variant' has moved: use export\.select\.variant"
    with pytest.raises(PipelineError, match=moved):
        validate(cfg)


@pytest.mark.parametrize(
    "overrides", [[], ["strategy=deepspeed_zero2", "model=dense_mlp", "trainer=gpu"]]
)
def test_params_compose_the_same_without_dvc_installed(tmp_path: Path, overrides) -> None:
    """A GPU node or cluster job without DVC composes params.yaml exactly as DVC does."""
    from pipelines.compose import _compose_like_dvc, compose_params

    compose_params(tmp_path / "dvc.yaml", overrides)
    _compose_like_dvc(tmp_path / "plain.yaml", overrides)
    assert (tmp_path / "plain.yaml").read_text() == (tmp_path / "dvc.yaml").read_text()


def test_a_choice_that_yaml_reads_as_a_boolean_keeps_its_word() -> None:
    """`export.tensorrt=off` on the command line: YAML 1.1 reads "off" as false."""
    assert load_params(REPO / "params.yaml", ["export.tensorrt=off"]).export.tensorrt == "off"
