"""Bad input fails fast, clearly and cleanly, through the real command lines.

The contract: a config typo or wrong type, an unknown experiment, a missing data file, a
missing label column, a non-numeric value, an empty table or a failed quality gate ends the
process with a non-zero exit and ONE line on stderr that names the file/key/column at fault and
what was expected, and leaves none of the stage's outputs (nor a `.staging` folder) behind for
DVC to cache.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from pipelines.layout import Layout
from tests.small import REPO, env, run_python, run_stage, stage_command

HANDLED = 2  # stages/_cli.py and train.py exit with 2 on a PipelineError


def stderr_lines(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in done.stderr.splitlines() if line.strip()]


def assert_one_clear_line(done: subprocess.CompletedProcess[str], prefix: str, *names: str) -> None:
    """Exit 2, and stderr is one line, starting with `prefix`, that mentions every name."""
    lines = stderr_lines(done)
    assert done.returncode == HANDLED, f"exit {done.returncode}; stderr:\n{done.stderr[-3000:]}"
    assert len(lines) == 1, f"expected one line on stderr, got:\n{done.stderr[-3000:]}"
    assert lines[-1].startswith(prefix), lines[-1]
    for name in names:
        assert name in lines[-1], f"{name!r} not named in: {lines[-1]}"


def assert_no_ingest_outputs(root: Path) -> None:
    layout = Layout(root)
    assert not layout.ingested.exists(), sorted(map(str, layout.ingested.rglob("*")))
    assert not layout.staging.exists()


@pytest.fixture(scope="module")
def params(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The committed params.yaml, on 2,000 simulated rows."""
    cfg = OmegaConf.merge(
        OmegaConf.load(REPO / "params.yaml"), OmegaConf.from_dotlist(["data.source.rows=2000"])
    )
    path = tmp_path_factory.mktemp("params") / "params.yaml"
    path.write_text(OmegaConf.to_yaml(cfg))
    return path


# --- config mistakes: caught before any work, naming the key ---------------------------------


def test_ingest_rejects_an_unknown_key_in_an_override_naming_the_key(
    params: Path, tmp_path: Path
) -> None:
    done = run_stage("ingest", params, tmp_path, "data.source.rowz=5")
    assert_one_clear_line(done, "error: ingest:", str(params), "data.source.rowz")
    assert_no_ingest_outputs(tmp_path)


def test_ingest_rejects_a_value_of_the_wrong_type_naming_the_key_and_value(
    params: Path, tmp_path: Path
) -> None:
    done = run_stage("ingest", params, tmp_path, "data.source.rows=abc")
    assert_one_clear_line(done, "error: ingest:", "data.source.rows", "'abc'", "Integer")
    assert_no_ingest_outputs(tmp_path)


def test_ingest_rejects_a_value_outside_the_choices_listing_the_allowed_ones(
    params: Path, tmp_path: Path
) -> None:
    done = run_stage("ingest", params, tmp_path, "data.split.method=random")
    assert_one_clear_line(
        done, "error: ingest:", "data.split.method", "'random'", "time", "stratified"
    )
    assert_no_ingest_outputs(tmp_path)


def test_ingest_rejects_a_params_file_that_is_not_valid_yaml_naming_the_file(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "params.yaml"
    broken.write_text("data:\n  source: [kind: file\n")
    done = run_stage("ingest", broken, tmp_path / "root")
    assert_one_clear_line(done, "error: ingest:", str(broken))
    assert_no_ingest_outputs(tmp_path / "root")


# --- data mistakes: a user's file, checked against the declared schema ------------------------


def file_source(path: Path, *extra: str) -> list[str]:
    """Overrides that point ingest at a user's CSV with `amount` and `label` columns."""
    return [
        "data.source.kind=file",
        f"data.source.path={path}",
        "data.schema.label=label",
        "data.schema.numeric=[amount]",
        "data.schema.categorical=[]",
        "data.schema.id_columns=[]",
        "data.schema.time_column=null",
        "data.split.method=stratified",
        *extra,
    ]


def write_csv(path: Path, header: str = "amount,label", bad_row: int | None = None) -> Path:
    """40 rows, every fourth one positive; row `bad_row` gets a word for its amount."""
    rows = [f"{'twelve' if i == bad_row else f'{10.5 * i}'},{int(i % 4 == 0)}" for i in range(40)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_a_well_formed_csv_with_the_same_overrides_is_ingested(
    params: Path, tmp_path: Path
) -> None:
    """The control for the cases below: each fails for its defect, not for the overrides."""
    done = run_stage(
        "ingest", params, tmp_path / "root", *file_source(write_csv(tmp_path / "t.csv"))
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (Layout(tmp_path / "root").schema_file).is_file()
    assert not Layout(tmp_path / "root").staging.exists()


def test_ingest_of_a_file_source_names_the_missing_path_and_its_key(
    params: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "data" / "loans.csv"
    done = run_stage("ingest", params, tmp_path / "root", *file_source(missing))
    assert_one_clear_line(done, "error: ingest:", str(missing), "not found", "data.source.path")
    assert_no_ingest_outputs(tmp_path / "root")


def test_ingest_names_a_misnamed_label_column_and_its_key(params: Path, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "loans.csv", header="amount,target")
    done = run_stage("ingest", params, tmp_path / "root", *file_source(csv))
    assert_one_clear_line(done, "error: ingest:", str(csv), "'label'", "data.schema.label")
    assert_no_ingest_outputs(tmp_path / "root")


def test_ingest_names_the_numeric_column_and_the_value_that_is_not_a_number(
    params: Path, tmp_path: Path
) -> None:
    csv = write_csv(tmp_path / "loans.csv", bad_row=7)
    done = run_stage("ingest", params, tmp_path / "root", *file_source(csv))
    assert_one_clear_line(
        done, "error: ingest:", str(csv), "'amount'", "'twelve'", "data.schema.numeric"
    )
    assert_no_ingest_outputs(tmp_path / "root")


def test_ingest_rejects_a_csv_with_a_header_and_no_rows(params: Path, tmp_path: Path) -> None:
    csv = tmp_path / "loans.csv"
    csv.write_text("amount,label\n")
    done = run_stage("ingest", params, tmp_path / "root", *file_source(csv))
    assert_one_clear_line(done, "error: ingest:", str(csv), "empty")
    assert_no_ingest_outputs(tmp_path / "root")


@pytest.mark.parametrize(
    ("defect", "named"),
    [
        ("latin1", ["not UTF-8 (byte 29 is 0xe9, line 4)", "expected a UTF-8 file"]),
        ("ragged", ["line 6 has 3 fields but the header has 2"]),
        ("duplicate", ["column 'amount' appears twice in the header"]),
    ],
)
def test_ingest_names_the_byte_row_or_column_of_a_malformed_csv(
    params: Path, tmp_path: Path, defect: str, named: list[str]
) -> None:
    csv = write_csv(tmp_path / "loans.csv")
    data = csv.read_bytes()
    if defect == "latin1":  # a Latin-1 "é" on line 4, after 13 + 6 + 7 + 3 bytes
        data = data.replace(b"10.5,0\n", "10.5,0\nCaf\u00e9,1\n".encode("latin-1"), 1)
    elif defect == "ragged":
        data = data.replace(b"\n42.0,1\n", b"\n42.0,1,extra\n", 1)  # line 6
    else:
        data = data.replace(b"amount,label", b"amount,label,amount", 1)
    csv.write_bytes(data)
    done = run_stage("ingest", params, tmp_path / "root", *file_source(csv))
    assert_one_clear_line(done, "error: ingest:", str(csv), *named)
    assert_no_ingest_outputs(tmp_path / "root")


def test_ingest_names_a_label_with_a_single_class(params: Path, tmp_path: Path) -> None:
    csv = tmp_path / "loans.csv"
    csv.write_text("amount,label\n" + "".join(f"{i}.5,1\n" for i in range(40)))
    done = run_stage("ingest", params, tmp_path / "root", *file_source(csv))
    assert_one_clear_line(done, "error: ingest:", "'label'", "one class", "two are needed")
    assert_no_ingest_outputs(tmp_path / "root")


def test_ingest_of_a_hub_dataset_offline_fails_in_one_line_naming_the_id(
    params: Path, tmp_path: Path
) -> None:
    """`datasets` reads the offline switches when imported, so this runs in a process of its
    own with them set (as on a machine with no route to the hub)."""
    hub_id = "acme/no-such-loans"
    done = subprocess.run(
        stage_command(
            "ingest",
            params,
            tmp_path / "root",
            "data.source.kind=hub",
            f"data.source.path={hub_id}",
        ),
        cwd=REPO,
        env={**env(), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert_one_clear_line(done, "error: ingest:", f"'{hub_id}'", "data.source.path", "offline")
    assert_no_ingest_outputs(tmp_path / "root")


def test_profile_names_a_column_of_infinities_not_a_drift_gate(
    params: Path, tmp_path: Path
) -> None:
    csv = tmp_path / "loans.csv"
    rows = [f"{'inf' if i % 50 == 0 else i * 1.5},{int(i % 4 == 0)}" for i in range(400)]
    csv.write_text("amount,label\n" + "\n".join(rows) + "\n")
    root = tmp_path / "root"
    overrides = file_source(csv, "data.profile.gates.min_rows=10")
    assert run_stage("ingest", params, root, *overrides).returncode == 0
    done = run_stage("profile", params, root, *overrides)
    assert_one_clear_line(done, "error: profile:", "'amount'", "8 non-finite values")
    assert "drift" not in done.stderr
    assert not Layout(root).profile_metrics.exists()


# --- a failed quality gate: the report is kept for diagnosis, nothing is cached ----------------


@pytest.fixture(scope="module")
def ingested_root(params: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ingested")
    done = run_stage("ingest", params, root)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


def test_profile_gate_failure_exits_2_naming_the_gate_and_writes_no_outputs(
    params: Path, ingested_root: Path
) -> None:
    done = run_stage("profile", params, ingested_root, "data.profile.gates.min_rows=999999")
    assert_one_clear_line(
        done, "error: profile:", "quality gate failed", "data.profile.gates.min_rows = 999999"
    )
    layout = Layout(ingested_root)
    assert not layout.profile_report.exists()
    assert not layout.profile_metrics.exists()
    assert not layout.staging.exists()
    assert layout.schema_file.is_file(), "the upstream stage's outputs are untouched"


# --- train.py: Hydra composition and the same validation ------------------------------------


def test_train_py_with_an_unknown_experiment_fails_naming_the_config_group_option(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    done = run_python("train.py", "+experiment=does_not_exist", f"hydra.run.dir={run_dir}")
    assert_one_clear_line(done, "error:", "'experiment'", "'does_not_exist'", "finance_risk")
    assert not run_dir.exists()


def test_train_py_with_an_unknown_model_in_a_sweep_list_fails_naming_it(tmp_path: Path) -> None:
    done = run_python("train.py", "-m", "model=moe_mlp,moe_mlpp", f"hydra.sweep.dir={tmp_path}/s")
    assert_one_clear_line(done, "error:", "'model'", "'moe_mlpp'", "dense_mlp")


def test_train_py_rejects_a_value_of_the_wrong_type_naming_the_key(tmp_path: Path) -> None:
    done = run_python("train.py", "trainer.max_epochs=abc", f"hydra.run.dir={tmp_path}")
    assert_one_clear_line(done, "error:", "trainer.max_epochs", "'abc'")
    assert_no_ingest_outputs(tmp_path)


def test_train_py_rejects_an_added_key_that_is_a_typo_naming_the_key(tmp_path: Path) -> None:
    done = run_python("train.py", "+trainer.max_epoch=3", f"hydra.run.dir={tmp_path}")
    assert_one_clear_line(done, "error:", "'trainer.max_epoch'", "did you mean trainer.max_epochs?")
    assert_no_ingest_outputs(tmp_path)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("train.batch_size=0", "'train.batch_size' = 0: expected a number >= 1"),
        ("train.lr=-1", "'train.lr' = -1.0: expected a number > 0"),
        ("trainer.max_epoch=2", "did you mean trainer.max_epochs?"),
    ],
)
def test_train_py_rejects_a_bad_value_or_key_before_any_data_work(
    override: str, named: str, tmp_path: Path
) -> None:
    done = run_python("train.py", override, f"hydra.run.dir={tmp_path}")
    assert_one_clear_line(done, "error:", named)
    assert_no_ingest_outputs(tmp_path)


def test_a_stage_override_with_a_typo_names_the_closest_key(params: Path, tmp_path: Path) -> None:
    done = run_stage("train", params, tmp_path, "trainer.max_epoch=2")
    assert_one_clear_line(done, "error: train:", "did you mean trainer.max_epochs?")
