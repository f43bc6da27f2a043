"""The documented commands, run exactly as written: read out of the pages where they live
(README.md and docs/, through tests/doc_blocks.py), not retyped. Every bash block of the
documentation is run by a test, or marked not runnable here with the reason."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.doc_blocks import NOT_RUN, block_under, commands, doc_pages, fenced_blocks
from tests.modality_runs import SHARED_SMALL, SMALL_IMAGES, SMALL_TEXT
from tests.small import REPO, committed_clone, copy_project, env


def doc_block(page: str, heading: str) -> list[str]:
    """The commands of the first ```bash block under `heading` on `page`."""
    return commands(block_under(page, heading))


@pytest.mark.slow
def test_your_own_table_runs_end_to_end_exactly_as_the_readme_says(tmp_path: Path) -> None:
    clone = copy_project(tmp_path / "clone")
    commands = doc_block("docs/tutorials/your-own-table.md", "Your own table, with config only")
    assert len(commands) == 2 and commands[1].startswith("python train.py data=my_table")
    for command in commands:
        done = subprocess.run(
            command, shell=True, cwd=clone, env=env(), capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
    assert "val/auprc = " in done.stdout
    (run,) = (clone / "outputs" / "runs").iterdir()
    evaluation = json.loads((run / "metrics" / "evaluate.json").read_text())
    assert evaluation["test_rows"] == 150
    for name, metrics in evaluation["variants"].items():
        assert metrics["f1"] > 0.3, name
    card = json.loads((run / "export" / "model_card.json").read_text())
    assert 0 < card["decision_threshold"] < 1


# the small data of the end-to-end tests, one epoch, and evaluate's and quantize's small
# settings (3 latency repeats rather than 30 were a third of each run's time); the pruned,
# distilled and QAT variants are left to the tests of compression (tests/test_stages.py,
# tests/test_dvc_pipeline.py): these commands compare runs and ship one, whatever its variants
SMALL_SETTINGS = [
    "data.source.rows=6000",
    "data.source.n_days=30",
    "trainer.max_epochs=1",
    "evaluate.latency_repeats=3",
    "quantize.static.calibration_rows=256",
    "quantize.prune.enabled=false",
    "quantize.distill.enabled=false",
    "quantize.qat.enabled=false",
]
SMALL = [flag for setting in SMALL_SETTINGS for flag in ("-S", setting)]
QUICK = [flag for setting in SMALL_SETTINGS[3:] for flag in ("-S", setting)]


def sh(command: str, cwd: Path) -> str:
    done = subprocess.run(
        command, shell=True, cwd=cwd, env=env(), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_the_readme_dvc_experiment_commands_run_and_compare(tmp_path: Path) -> None:
    """`dvc exp run -S ... -n lr-3e-3`, `-n lr-5e-4`, `dvc exp show --only-changed`, `dvc plots
    diff` and `python -m pipelines.compare` as docs/how-to/compare-runs.md writes them, on 6,000 rows and one
    epoch (the `-S` settings added to each `dvc exp run`) so the test stays short."""
    clone = committed_clone(tmp_path / "clone")
    commands = doc_block("docs/how-to/compare-runs.md", "Comparing runs")
    small = " ".join(SMALL)
    for command in commands:
        if command.startswith("dvc exp run -S train.lr="):
            sh(f"{command} {small}", clone)
    shown = json.loads(sh("dvc exp show --only-changed --json", clone))
    names = {exp.get("name") for row in shown for exp in row.get("experiments") or []}
    assert {"lr-3e-3", "lr-5e-4"} <= names
    assert "dvc exp show --only-changed" in commands
    diff = next(c for c in commands if c.startswith("dvc plots diff"))
    sh(f"{diff} -o {tmp_path / 'plots'}", clone)
    assert (tmp_path / "plots" / "index.html").is_file()
    compare = next(c for c in commands if c.startswith("python -m pipelines.compare lr-3e-3"))
    out = sh(compare, clone)
    assert "train.lr" in out and "0.0005" in out


@pytest.mark.slow
def test_the_readme_german_credit_experiment_runs_through_dvc(tmp_path: Path) -> None:
    """`dvc exp run -S '+experiment=german_credit'` (it failed at export on the 150-row test
    split before the parity check cycled rows)."""
    clone = committed_clone(tmp_path / "clone")
    using_it = doc_block("docs/tutorials/first-run.md", "Using it")
    command = next(c for c in using_it if "+experiment=german_credit'" in c)
    sh(" ".join([command, "-S trainer.max_epochs=2", *QUICK]), clone)
    assert (clone / "export" / "model_card.json").is_file()


# what each modality's experiment must ship: (its page and heading, small-data overrides, task,
# shipped variant, headline rows)
MODALITY_EXPERIMENTS = {
    "text": (
        ("docs/tutorials/your-own-text.md", "Text experiments (customer_service)"),
        SMALL_TEXT,
        "text classification",
        "int8_dynamic",
        {"onnx_fp32", "onnx_int8_dynamic", "tfidf_logistic_regression"},
    ),
    "image": (
        ("docs/tutorials/your-own-images.md", "Image experiments (visual_inspection)"),
        SMALL_IMAGES,
        "image classification",
        "int8_static",
        {"onnx_fp32", "onnx_int8_static", "hog_gradient_boosting"},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("modality", sorted(MODALITY_EXPERIMENTS))
def test_the_readme_modality_experiment_runs_through_dvc(tmp_path: Path, modality: str) -> None:
    """`dvc exp run -S '+experiment=customer_service'` (or `visual_inspection`): DVC composes
    the experiment into params.yaml and `dvc repro` runs the same eight stages with the
    modality's plug-ins (on the small data of the end-to-end tests, the `-S` settings added)."""
    (page, heading), small, task, variant, rows = MODALITY_EXPERIMENTS[modality]
    clone = committed_clone(tmp_path / "clone")
    command = next(c for c in doc_block(page, heading) if "dvc exp run" in c)
    sh(command + "".join(f" -S {o}" for o in [*small, *SHARED_SMALL]), clone)
    card = json.loads((clone / "export" / "model_card.json").read_text())
    assert card["task"] == task and card["variant"] == variant
    headline = json.loads((clone / "metrics" / "headline.json").read_text())["test"]
    assert rows <= set(headline)
    assert f"modality: {modality}" in (clone / "dvc.lock").read_text()
    if modality == "image":
        assert card["preprocessing"]["height"] == 32
        assert "defect_recall" in headline["onnx_int8_static"]


def test_the_remote_guide_points_the_default_remote_elsewhere_in_the_clone_only(
    tmp_path: Path,
) -> None:
    """The guide's `dvc remote modify --local ...` and `dvc remote list`, as written: the
    remote moves for this clone (`.dvc/config.local`), the committed `.dvc/config` is left."""
    clone = committed_clone(tmp_path / "clone")
    guide = doc_block("docs/how-to/dvc-remote.md", "Point the DVC remote at shared storage")
    modify, listing = guide[:2]
    committed = (clone / ".dvc" / "config").read_text()
    sh(modify, clone)
    assert "/mnt/shared/dvc-storage" in sh(listing, clone)
    assert (clone / ".dvc" / "config").read_text() == committed
    assert "/mnt/shared/dvc-storage" in (clone / ".dvc" / "config.local").read_text()


def documented_commands() -> tuple[list[str], list[str]]:
    """(the commands of every bash block meant to run, those of the blocks marked not-run)."""
    run, not_run = [], []
    for page in doc_pages():
        for block in fenced_blocks(page):
            if block.lang == "bash":
                (not_run if block.not_run else run).extend(commands(block))
    return run, not_run


# ruff: noqa: E501 (the registry's entries are test ids, kept whole so they can be grepped)
# Where each documented command runs: a test (file::function) that runs it or the same command
# on smaller data, CI itself, or (for a block marked not-run) what covers it on a CPU. A new or
# changed command in a block meant to run without an entry fails the test below, and so does an
# entry that no documented command matches.
# A key is the whole command as the page writes it (whitespace runs read as one space). A
# key ending in ANY_REST stands for every command that starts with the text before it: kept
# for commands whose tail is data (a JSON body, a column list) that the test runs verbatim.
ANY_REST = "*"
EXERCISED_BY: dict[str, str] = {
    "make run": "the fresh-clone check before each landing; its `dvc repro` on small data: "
    "tests/test_dvc_pipeline.py::test_repro_runs_eight_stages_then_nothing_then_exactly_the_changed_ones",
    "make test": ".ci/run (CI)",
    "python train.py +experiment=customer_service": "on 1,500 tickets through train, with a "
    "model override: tests/test_text_pipeline.py::test_train_py_runs_the_text_experiment_with_hydra_overrides; "
    "all eight stages: tests/test_text_pipeline.py::test_every_stage_writes_what_dvc_yaml_declares",
    "python train.py +experiment=customer_service model=dense_transformer": "tests/test_text_pipeline.py::test_train_py_runs_the_text_experiment_with_hydra_overrides",
    "python train.py +experiment=customer_service data=rotten_tomatoes": "its ingest of the real corpus: "
    "tests/test_text_pipeline.py::test_the_real_rotten_tomatoes_corpus_ingests_through_the_same_stage",
    "python train.py -m hparams_search=customer_service_optuna": "two trials on small data: "
    "tests/test_text_pipeline.py::test_the_text_search_space_runs_as_an_optuna_sweep",
    "dvc exp run -S '+experiment=customer_service'": "tests/test_readme.py::test_the_readme_modality_experiment_runs_through_dvc[text]",
    "python train.py +experiment=visual_inspection": "on 600 images through train, with a "
    "model override: tests/test_image_pipeline.py::test_train_py_runs_the_image_experiment_with_the_patch_transformer; "
    "all eight stages: tests/test_image_pipeline.py::test_every_stage_writes_what_dvc_yaml_declares",
    "python train.py +experiment=visual_inspection model=image_cnn_dense": "composition: "
    "tests/test_config.py::test_the_image_experiment_composes_with_every_image_model; trained "
    "for the figures on docs/benchmarks/image.md",
    "python train.py +experiment=visual_inspection model=image_patch_moe": "composition: "
    "tests/test_config.py::test_the_image_experiment_composes_with_every_image_model; its dense "
    "twin through train.py: tests/test_image_pipeline.py::test_train_py_runs_the_image_experiment_with_the_patch_transformer",
    "python train.py +experiment=visual_inspection data=my_images data.source.path=my_images": "the "
    "template composed with the experiment, ingest and profile of a 100-image folder: "
    "tests/test_own_data_templates.py::test_my_images_template_profiles_a_folder_of_100_images",
    "python train.py +experiment=customer_service data=my_text data.source.path=my_texts.csv data.schema.text=body data.schema.label=intent": "the "
    "template composed with the experiment, ingest and profile of 1,000 real texts with these column names: "
    "tests/test_own_data_templates.py::test_my_text_template_profiles_1000_real_labelled_texts",
    "python train.py +experiment=visual_inspection data=digits": "its ingest of the real digits: "
    "tests/test_image_pipeline.py::test_the_real_digits_ingest_through_the_same_stage",
    "python train.py -m hparams_search=visual_inspection_optuna": "two trials on small data: "
    "tests/test_image_pipeline.py::test_the_image_search_space_runs_as_an_optuna_sweep",
    "dvc exp run -S '+experiment=visual_inspection'": "tests/test_readme.py::test_the_readme_modality_experiment_runs_through_dvc[image]",
    "python train.py +experiment=machine_monitoring": "all eight stages on 150 machines: "
    "tests/test_timeseries_pipeline.py::test_every_stage_writes_what_dvc_yaml_declares; run "
    "as written for the README's figures",
    "python train.py +experiment=machine_monitoring model=ts_inception_dense": "composition: "
    "tests/test_timeseries_data.py::test_the_dense_twin_composes_with_the_same_active_width; "
    "run as written for the README's figures",
    "python train.py +experiment=machine_monitoring model=ts_patch_moe": "composition, shapes, "
    "training steps and ONNX export: tests/test_timeseries_patch_model.py::"
    "test_the_yaml_selects_the_patch_model_and_its_dense_twin",
    "python train.py -m hparams_search=machine_monitoring_optuna": "two trials on small data: "
    "tests/test_timeseries_pipeline.py::test_the_series_search_space_runs_as_an_optuna_sweep",
    "python train.py +experiment=machine_monitoring data=basic_motions": "aeon ships the set: "
    "tests/test_timeseries_data.py::test_the_aeon_package_ships_the_archive_sets_read_here; "
    "run through all eight stages for the README's figures",
    "python train.py +experiment=machine_monitoring data=acsf1": "aeon ships the set: "
    "tests/test_timeseries_data.py::test_the_aeon_package_ships_the_archive_sets_read_here; "
    "run through all eight stages for the README's figures",
    "python benchmarks/gpu.py --record": "needs CUDA (run on an H200, docs/benchmarks/gpu.md); its "
    "whole code path at toy size on CPU: "
    "tests/test_gpu_benchmark.py::test_the_gpu_benchmark_runs_its_code_path_on_a_cpu_at_toy_size",
    "python benchmarks/text_int8.py --record": "at a toy width, the same code path: "
    "tests/test_int8_benchmarks.py::test_the_benchmark_compares_int8_with_onnx_fp32",
    "python benchmarks/image_int8.py --hidden 64 128 256 --batches 1 32 --repeats 20 --record": "at a toy "
    "width, the same code path: tests/test_int8_benchmarks.py::test_the_benchmark_compares_int8_with_onnx_fp32",
    "python benchmarks/data_scale.py --sizes 1000000 10000000 --record": "at small sizes, the same code path: "
    "tests/test_data_scale_benchmark.py::test_the_benchmark_measures_ingest_and_clean_at_each_size",
    "python train.py +experiment=finance_risk trainer.max_epochs=2": "on 6,000 rows: "
    "tests/test_train_entry.py::test_experiment_with_overrides_trains_evaluates_and_returns_the_metric",
    "python train.py +experiment=german_credit": "through DVC, same composition: "
    "tests/test_readme.py::test_the_readme_german_credit_experiment_runs_through_dvc",
    "python train.py model=dense_mlp": "composition: "
    "tests/test_config.py::test_every_experiment_and_model_composes_and_validates; "
    "trained side by side with the MoE model in benchmarks/training.py",
    "python train.py --cfg job": "tests/test_train_entry.py::test_cfg_job_prints_the_config_without_importing_torch",
    "dvc exp run -S 'trainer.max_epochs=3'": "the same command with other -S values: "
    "tests/test_readme.py::test_the_readme_dvc_experiment_commands_run_and_compare",
    "dvc exp run -S '+experiment=german_credit'": "tests/test_readme.py::test_the_readme_german_credit_experiment_runs_through_dvc",
    "dvc exp show": "its --only-changed form: "
    "tests/test_readme.py::test_the_readme_dvc_experiment_commands_run_and_compare",
    "dvc exp show --only-changed": "tests/test_readme.py::test_the_readme_dvc_experiment_commands_run_and_compare",
    "make exps": "the command the Makefile's exps target runs, on two experiments: "
    "tests/test_exps_view.py::test_make_exps_fits_160_columns_for_two_experiments_with_what_differs",
    "python -m pipelines.data.examples loans data/loans.csv": "tests/test_readme.py::test_your_own_table_runs_end_to_end_exactly_as_the_readme_says",
    "python train.py data=my_table data.source.path=data/loans.csv *": "run verbatim, column lists and all: "
    "tests/test_readme.py::test_your_own_table_runs_end_to_end_exactly_as_the_readme_says",
    "python train.py strategy=ddp trainer.devices=2": "the train stage with the same keys: "
    "tests/test_training.py::test_ddp_on_two_cpu_processes_agrees_on_the_validation_metric",
    "python train.py strategy=deepspeed_zero2 trainer=gpu trainer.devices=8 trainer.precision=bf16-mixed": "needs CUDA "
    "(Lightning's DeepSpeed strategy): tests/test_strategies.py::test_lightning_deepspeed_training_on_gpu (gpu marker); "
    "on CPU the YAML's engine: tests/test_strategies.py::test_the_yaml_zero_configs_start_a_real_deepspeed_engine_that_learns",
    "python train.py strategy=deepspeed_zero2 'strategy.config.zero_optimization.reduce_bucket_size=5e7'": "composition: "
    "tests/test_strategies.py::test_zero_settings_and_precision_reach_the_deepspeed_config",
    "python train.py -m hydra/launcher=slurm hydra.launcher.partition=gpu strategy=deepspeed_zero2 trainer=gpu trainer.devices=8 trainer.num_nodes=4": "needs a SLURM "
    "cluster; the launcher config: "
    "tests/test_strategies.py::test_submitit_slurm_launcher_takes_nodes_and_tasks_from_the_trainer_config",
    "python -m stages.train callbacks.checkpoint.every_n_train_steps=50": "with 7 steps and a "
    "SIGKILL: tests/test_training.py::test_sigkill_mid_epoch_then_the_same_command_ends_with_identical_metrics",
    "python -m stages.train trainer.max_epochs=1 +trainer.profiler=simple +callbacks.lr_monitor._target_=lightning.pytorch.callbacks.LearningRateMonitor +callbacks.lr_monitor.logging_interval=epoch": "tests/test_training.py::test_trainer_options_and_callbacks_from_the_command_line_reach_lightning",
    "python train.py -m hparams_search=finance_risk_optuna hydra.sweeper.n_trials=40 hydra/sweeper/sampler=random hydra/sweeper/pruner=successive_halving": "tests/test_sweeps.py::test_the_readme_sampler_and_pruner_switch_runs_a_sweep",
    "python train.py -m hparams_search=finance_risk_optuna hydra/launcher=joblib hydra.launcher.n_jobs=2 hydra.sweeper.n_jobs=2": "tests/test_sweeps.py::test_parallel_trials_run_in_joblib_worker_processes",
    "python train.py -m hparams_search=finance_risk_optuna": "the project's sweep config: "
    "tests/test_sweeps.py::test_every_sampler_and_pruner_choice_runs_with_the_project_sweep_config; "
    "a pipeline sweep through train.py: "
    "tests/test_sweeps.py::test_pipeline_sweep_prunes_fails_caches_data_and_tracks_without_the_key; "
    "benchmarks/pruning.py",
    "python train.py --config-dir outputs/sweeps +experiment=finance_risk +finance_risk_optuna=best_params": "tests/test_sweeps.py::test_best_params_file_round_trips_as_overrides",
    "dvc exp run -S train.lr=0.003 -n lr-3e-3": "tests/test_readme.py::test_the_readme_dvc_experiment_commands_run_and_compare",
    "dvc exp run -S train.lr=0.0005 -n lr-5e-4": "tests/test_readme.py::test_the_readme_dvc_experiment_commands_run_and_compare",
    "dvc exp run --queue -S 'model.num_experts=2,4,8'": "a queued experiment run with --run-all: "
    "tests/test_tracking.py::test_a_queued_dvc_experiment_keeps_its_wandb_run",
    "dvc queue start -j 1 && dvc queue status": "dvc's own commands; queued runs: "
    "tests/test_tracking.py::test_a_queued_dvc_experiment_keeps_its_wandb_run",
    "dvc plots diff lr-3e-3 lr-5e-4": "tests/test_readme.py::test_the_readme_dvc_experiment_commands_run_and_compare",
    "python -m pipelines.compare lr-3e-3 lr-5e-4 workspace": "tests/test_readme.py::test_the_readme_dvc_experiment_commands_run_and_compare",
    "python -m pipelines.compare outputs/runs/<a> outputs/sweeps/finance_risk_optuna/3": "two run directories: "
    "tests/test_compare.py::test_two_run_directories_compare_side_by_side",
    "make serve": "the command it runs, `python -m pipelines.serve --export ...`: "
    "tests/test_serve.py::test_the_cli_prints_its_url_reloads_on_sighup_and_drains_on_sigterm",
    "curl -s localhost:8000/predict -H 'content-type: application/json' -d *": "a POST /predict "
    "of feature rows by name: tests/test_serve.py::test_predict_scores_rows_like_the_onnx_session_and_names_the_version",
    "dvc remote modify --local local url /mnt/shared/dvc-storage": "tests/test_readme.py::test_the_remote_guide_points_the_default_remote_elsewhere_in_the_clone_only",
    "dvc remote list": "tests/test_readme.py::test_the_remote_guide_points_the_default_remote_elsewhere_in_the_clone_only",
    "dvc push": "a push and a pull through the default remote: "
    "tests/test_dvc_pipeline.py::test_outputs_round_trip_through_the_default_remote",
    "dvc pull": "tests/test_dvc_pipeline.py::test_outputs_round_trip_through_the_default_remote",
    'make compare RUNS="lr-3e-3 lr-5e-4"': "the Makefile's compare target runs `python -m pipelines.compare $(RUNS)`: "
    "tests/test_readme.py::test_the_readme_dvc_experiment_commands_run_and_compare",
}


def registry_entries(command: str, registry: dict[str, str]) -> list[str]:
    """The registry keys that stand for `command`: the same command, or a key ending in
    ANY_REST whose text before it begins the command. Nothing else: a key is never read as a
    prefix of a longer command unless it says so."""
    command = _one_space(command)
    found = []
    for key in registry:
        if key.endswith(ANY_REST):
            # "cmd *" stands for cmd with more arguments; "cmd=*" for any value of cmd=
            stem = key[: -len(ANY_REST)]
            if command.startswith(_one_space(stem) + (" " if stem.endswith(" ") else "")):
                found.append(key)
        elif _one_space(key) == command:
            found.append(key)
    return found


def _one_space(text: str) -> str:
    return " ".join(text.split())


def test_a_registry_key_matches_its_command_exactly_or_by_an_explicit_wildcard() -> None:
    registry = {"dvc exp show": "x", "make serve": "y", "curl -s localhost:8000/predict -d *": "z"}
    assert registry_entries("dvc exp show", registry) == ["dvc exp show"]
    # a longer command is another command: "dvc exp show" does not vouch for it
    assert registry_entries("dvc exp show --only-changed", registry) == []
    assert registry_entries("make  serve", registry) == ["make serve"]
    assert registry_entries("curl -s localhost:8000/predict -d '{}'", registry) == [
        "curl -s localhost:8000/predict -d *"
    ]
    # the wildcard stands for more arguments, not for a longer word
    assert registry_entries("curl -s localhost:8000/predict -dx '{}'", registry) == []


def test_every_documented_command_is_exercised_somewhere() -> None:
    run, not_run = documented_commands()
    unmatched = [c for c in run if not registry_entries(c, EXERCISED_BY)]
    assert not unmatched, "documented commands no test or script runs:\n" + "\n".join(unmatched)
    ambiguous = [c for c in run + not_run if len(registry_entries(c, EXERCISED_BY)) > 1]
    assert not ambiguous, "documented commands with more than one registry entry:\n" + "\n".join(
        ambiguous
    )
    used = {key for c in run + not_run for key in registry_entries(c, EXERCISED_BY)}
    stale = [key for key in EXERCISED_BY if key not in used]
    assert not stale, "registry entries no documented command matches:\n" + "\n".join(stale)
    for where in EXERCISED_BY.values():
        for ref in re.findall(r"(tests/\w+\.py)::(\w+)", where):
            source = (REPO / ref[0]).read_text()
            assert f"def {ref[1]}(" in source, f"{ref[0]}::{ref[1]} does not exist"


def test_every_bash_block_on_the_site_is_run_by_a_test_or_says_why_not() -> None:
    """A block is either meant to run (each command then needs a registry entry, checked
    above) or carries `<!-- not-run: reason -->` right before its fence; a marker anywhere
    else would exempt nothing and is refused."""
    for page in doc_pages():
        blocks = fenced_blocks(page)
        marked_lines = {b.line - 1 for b in blocks if b.not_run is not None}
        inside = {b.line + n for b in blocks for n in range(1, b.text.count("\n") + 1)}
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            if NOT_RUN.match(line) and number not in marked_lines | inside:
                pytest.fail(
                    f"{page.relative_to(REPO)}:{number}: a not-run marker must sit on "
                    "the line right before a ```bash fence"
                )
        for block in blocks:
            where = f"{block.page}:{block.line}"
            if block.not_run is not None:
                assert block.lang == "bash", f"{where}: not-run marks bash blocks only"
                assert len(block.not_run.split()) >= 3, f"{where}: say why it cannot run here"
            elif block.lang == "bash":
                assert commands(block), f"{where}: an empty bash block"


def test_the_block_reader_sees_markers_headings_and_multi_line_commands(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## Run it\n\n```bash\nmake run   # comment\n# a comment line\n"
        "python train.py a=1 \\\n  b=2\ncurl -d '{\"rows\": [1,\n  2]}'\n```\n\n"
        "<!-- not-run: needs a CUDA GPU -->\n```bash\npython gpu.py\n```\n"
    )
    first, second = fenced_blocks(page)
    assert (first.heading, first.not_run, second.not_run) == ("Run it", None, "needs a CUDA GPU")
    assert commands(first) == [
        "make run",
        "python train.py a=1 b=2",
        "curl -d '{\"rows\": [1, 2]}'",
    ]
