"""The time-series data stages' parts, on their own: the simulator's dirt is what the rules
catch or repair, the rules' verdicts, the shipped archive sets, the long-format reader's
refusals (each one line naming the column or series, nothing written), the augmenter, and
the settings checked before any series is read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.config import PipelineConfig
from pipelines.errors import PipelineError
from pipelines.layout import Layout
from pipelines.modalities.timeseries.augment import augment_train
from pipelines.modalities.timeseries.config import AugmentConfig, CleanConfig, SimulatorConfig
from pipelines.modalities.timeseries.rules import REMOVAL_RULES, clean_one, clean_series_splits
from pipelines.modalities.timeseries.series import LABEL, series_values, windows
from pipelines.modalities.timeseries.simulator import simulate_series
from tests.modality_runs import SMALL_SERIES, fails, small_config

RATE = 200.0
CHANNELS = ["vibration", "current", "temperature"]
RULES = CleanConfig(min_samples=128, max_gap_samples=8, stuck_samples=48, spike_z=12.0)
# each dirt kind: the rule that removes it, or None when clean repairs it
EXPECTED = {
    "long_gap": "gap",
    "too_short": "too_short",
    "stuck": "stuck",
    "short_gap": "",
    "nan_burst": "",
    "spikes": "",
    "duplicate_timestamps": "",
    "jitter": "",
    # kept by the row rules: the exact pass across rows removes the copy
    "exact_duplicate": "",
    "": "",
}


def series_config(tmp: Path, *extra: str) -> PipelineConfig:
    return small_config("machine_monitoring", SMALL_SERIES, tmp, *extra)


@pytest.fixture(scope="module")
def dirty() -> object:
    # every dirt kind well represented
    dirt = {k: 0.1 for k in EXPECTED if k}
    cfg = SimulatorConfig(samples=256, dirt=dirt)
    return simulate_series(300, 7, cfg, RATE, with_dirt=True)


def test_the_simulator_is_seeded_and_labels_every_declared_class(dirty: object) -> None:
    again = simulate_series(300, 7, SimulatorConfig(samples=256, dirt={k: 0.1 for k in
                            EXPECTED if k}), RATE, with_dirt=True)  # fmt: skip
    assert again["series_id"] == dirty["series_id"] and again["label"] == dirty["label"]
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in
               zip(series_values(again), series_values(dirty), strict=True))  # fmt: skip
    assert set(dirty["label"]) == {"healthy", "bearing_wear", "imbalance", "looseness",
                                   "overheating"}  # fmt: skip
    assert {k for k in dirty["dirt"] if k} == {k for k in EXPECTED if k}


def test_each_dirt_kind_trips_its_rule_or_is_repaired(dirty: object) -> None:
    verdicts = {}
    for t, v, kind in zip(dirty["time"], series_values(dirty), dirty["dirt"], strict=True):
        out = clean_one(np.asarray(t), v, RULES, RATE, CHANNELS)
        verdicts.setdefault(kind, []).append(out)
        if not out["_ts_rule"]:
            cleaned = np.asarray(out["_ts_clean"])
            # resampled to the declared rate, no NaN left, the three channels kept
            assert cleaned.shape[0] == 3 and not np.isnan(cleaned).any()
    for kind, rule in EXPECTED.items():
        rules = [o["_ts_rule"] for o in verdicts[kind]]
        assert rules.count(rule) == len(rules), (kind, rules)
    assert all(o["_ts_spikes"] >= 3 for o in verdicts["spikes"])
    assert all(o["_ts_repeats"] == 5 for o in verdicts["duplicate_timestamps"])
    assert all(o["_ts_filled"] == 1 for o in verdicts["nan_burst"] + verdicts["short_gap"])
    assert not any(o["_ts_spikes"] for o in verdicts[""])  # clean series are left alone


def test_a_removed_series_reaches_quarantine_with_its_reason_and_figure(dirty: object) -> None:
    splits = {"train": dirty.select(range(200)), "test": dirty.select(range(200, 300))}
    splits = {k: v.remove_columns("dirt") for k, v in splits.items()}
    cleaned, quarantine, report = clean_series_splits(splits, RULES, RATE, CHANNELS)
    assert set(quarantine["rule"]) <= set(REMOVAL_RULES)
    assert len(quarantine) == sum(sum(s["removed"].values()) for s in report.values()) > 0
    row = quarantine[0]
    assert row["reason"] and row["split"] in splits
    assert row["figure"].startswith(b"\x89PNG")
    # every simulated copy of an earlier series is removed, within a split or as a leak
    dirt = {**dict(zip(dirty["series_id"], dirty["dirt"], strict=True))}
    copies = {i for i, kind in dirt.items() if kind == "exact_duplicate"}
    removed = {r["series_id"]: r["rule"] for r in quarantine}
    assert copies and all(removed.get(i) in ("exact_duplicate", "exact_leak") for i in copies)
    gap = next(r for r in quarantine if r["rule"] == "gap")
    assert "samples missing after t =" in gap["reason"] and "max_gap_samples 8" in gap["reason"]
    # kept series leave on the regular grid of the declared rate
    for t in cleaned["train"]["time"][:20]:
        assert np.allclose(np.diff(t), 1 / RATE)


def test_windows_never_mix_series_and_cover_each_series_by_stride() -> None:
    series = [np.arange(300, dtype=np.float32).reshape(1, 300), np.ones((1, 100), np.float32)]
    x, y, source = windows(series, np.array([0, 1]), 64, 32)
    assert x.shape == (8 + 2, 1, 64) and list(source) == [0] * 8 + [1] * 2
    assert x[1, 0, 0] == 32 and list(y) == [0] * 8 + [1] * 2


def test_the_aeon_package_ships_the_archive_sets_read_here(tmp_path: Path) -> None:
    from pipelines.modalities.timeseries.sources import aeon_data_dir

    for name in ("BasicMotions", "ACSF1"):
        assert (aeon_data_dir() / name / f"{name}_TRAIN.ts").is_file()
    cfg = series_config(tmp_path, "data.source.kind=aeon", "data.source.path=NotShipped")
    with pytest.raises(PipelineError, match=r"'data\.source\.path' = 'NotShipped': not a set "
                       r"the installed aeon ships \(with \.ts files: .*BasicMotions"):  # fmt: skip
        from stages import ingest

        ingest.run(cfg, Layout(tmp_path))


def long_format(tmp: Path, frame: pd.DataFrame) -> list[str]:
    path = tmp / "signals.csv"
    frame.to_csv(path, index=False)
    return [
        "data.source.kind=file",
        f"data.source.path={path}",
        "data.schema.id_columns=[machine]",
        "data.schema.time_column=timestamp",
    ]


def machines(n: int = 40, samples: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for m in range(n):
        t = pd.Timestamp("2026-01-01") + pd.to_timedelta(np.arange(samples) / RATE, unit="s")
        label = ["healthy", "imbalance"][m % 2]
        vib = rng.normal(0, 1 + m % 2, samples)
        rows.append(pd.DataFrame({"machine": f"m{m}", "timestamp": t, "vibration": vib,
                                  "current": rng.normal(10, 1, samples),
                                  "temperature": 40 + rng.normal(0, 1, samples),
                                  "label": label}))  # fmt: skip
    return pd.concat(rows, ignore_index=True)


def test_a_long_format_file_becomes_one_row_per_series(tmp_path: Path) -> None:
    from stages import ingest

    extra = [*long_format(tmp_path, machines()), "data.timeseries.profile.gates.min_rows=1"]
    rows = ingest.run(series_config(tmp_path, *extra), Layout(tmp_path))
    assert sum(rows.values()) == 40


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.drop(columns="timestamp"),
         r"signals\.csv: no column 'timestamp' \(config key 'data\.schema\.time_column'\)"),
        (lambda f: f.assign(current=np.nan),
         r"signals\.csv: channel column 'current' is all NaN"),
        (lambda f: f[(f.machine != "m3") | (f.index == f.index[f.machine == "m3"][0])],
         r"signals\.csv: series 'm3' has 1 sample; expected at least 2"),
        (lambda f: f.assign(timestamp=f.timestamp.where(f.machine != "m5", f.timestamp
                                                          + (f.timestamp - f.timestamp.min()))),
         r"signals\.csv: series 'm5' is sampled at 100 Hz; expected 200 Hz .*mixed sampling"),
    ],
    ids=["no timestamp column", "a channel all NaN", "a series of one sample", "mixed rates"],
)  # fmt: skip
def test_bad_long_format_input_stops_ingest_naming_it(tmp_path: Path, damage, message) -> None:
    cfg = series_config(tmp_path, *long_format(tmp_path, damage(machines())))
    fails("ingest", cfg, tmp_path, message, Layout(tmp_path).ingested)


def test_augment_tops_up_short_classes_with_transformed_copies(dirty: object) -> None:
    train = dirty.remove_columns("dirt").select(range(100))
    cfg = AugmentConfig(min_class_share=0.8)
    combined, report = augment_train(train, cfg, 0)
    counts = pd.Series(combined[LABEL]).value_counts()
    assert counts.min() >= int(np.ceil(0.8 * counts.max())) - 0
    assert sum(report["added"].values()) == len(combined) - len(train) > 0
    assert report["rows_after"] == len(combined)
    copies = series_values(combined.select(range(len(train), len(combined))))
    originals = series_values(train)
    assert not any(any(c.shape == o.shape and np.allclose(c, o) for o in originals)
                   for c in copies)  # fmt: skip
    again, _ = augment_train(train, cfg, 0)
    assert again["series_id"] == combined["series_id"]
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in
               zip(series_values(again), series_values(combined), strict=True))  # fmt: skip
    # every copy says which train series it was made from, and has that series' class
    sources = combined["source_row"][len(train) :]
    assert [combined[LABEL][s] for s in sources] == combined[LABEL][len(train) :]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.timeseries.window.length=512",
         r"data\.timeseries\.clean\.min_samples = 128: expected at least data\.timeseries\."
         r"window\.length = 512"),
        ("data.timeseries.simulator.dirt.stuck=2.0",
         r"data\.timeseries\.simulator\.dirt\.stuck = 2\.0: expected a number in \[0, 1\]"),
        ("model.hidden_dim=18", r"'model\.hidden_dim' = 18: ts_inception_moe expects a multiple"),
        ("model.name=image_cnn_moe", r"'model\.name' = 'image_cnn_moe' with data\.modality = "
         r"timeseries: expected one of ts_inception_moe"),
    ],
)  # fmt: skip
def test_settings_are_checked_before_any_series_is_read(
    tmp_path: Path, override: str, message: str
) -> None:
    with pytest.raises(PipelineError, match=message):
        series_config(tmp_path, override)


def test_the_dense_twin_composes_with_the_same_active_width(tmp_path: Path) -> None:
    from pipelines.compose import compose_params
    from pipelines.config import load_params
    from pipelines.models.families import is_moe, matched_dense

    models = {}
    for name in ("ts_inception_moe", "ts_inception_dense"):
        compose_params(
            tmp_path / f"{name}.yaml", ["+experiment=machine_monitoring", f"model={name}"]
        )
        models[name] = load_params(tmp_path / f"{name}.yaml").model
    moe, dense = models["ts_inception_moe"], models["ts_inception_dense"]
    twin = matched_dense(moe)
    assert is_moe(moe) and not is_moe(dense)
    assert (dense.name, dense.ffn_dim, dense.hidden_dim) == (
        twin.name,
        twin.ffn_dim,
        twin.hidden_dim,
    )
