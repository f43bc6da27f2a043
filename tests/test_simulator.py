"""Tests for the seeded fraud-transaction simulator and its rolling features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.data.simulator import (
    FIRST_TX_SENTINEL_S,
    SimulatorSettings,
    add_features,
    feature_columns,
    simulate_transactions,
)
from pipelines.errors import PipelineError

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def tx_100k() -> pd.DataFrame:
    return simulate_transactions(SimulatorSettings(n_transactions=100_000), seed=7)


@pytest.fixture(scope="module")
def feats_100k(tx_100k: pd.DataFrame) -> pd.DataFrame:
    return add_features(tx_100k)


def _frame(days: list[float], fraud: list[int], customer: int = 0, terminal: int = 0):
    n = len(days)
    start = pd.Timestamp("2026-01-05")  # a Monday
    return pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype=np.int64),
            "tx_datetime": [start + d * DAY for d in days],
            "customer_id": np.full(n, customer, dtype=np.int64),
            "terminal_id": np.full(n, terminal, dtype=np.int64),
            "tx_amount": np.arange(1, n + 1, dtype=np.float64) * 10.0,
            "tx_fraud": np.array(fraud, dtype=np.int8),
            "tx_fraud_scenario": np.array(fraud, dtype=np.int8) * 2,
        }
    )


def test_same_seed_same_frame() -> None:
    settings = SimulatorSettings(n_transactions=10_000)
    a = simulate_transactions(settings, seed=3)
    b = simulate_transactions(settings, seed=3)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(add_features(a), add_features(b))


def test_different_seed_different_frame() -> None:
    settings = SimulatorSettings(n_transactions=10_000)
    a = simulate_transactions(settings, seed=1)
    b = simulate_transactions(settings, seed=2)
    assert len(a) != len(b) or not a.equals(b)


def test_schema_and_order(tx_100k: pd.DataFrame) -> None:
    assert list(tx_100k.columns) == [
        "transaction_id",
        "tx_datetime",
        "customer_id",
        "terminal_id",
        "tx_amount",
        "tx_fraud",
        "tx_fraud_scenario",
    ]
    expected = {
        "transaction_id": "int64",
        "tx_datetime": "datetime64[ns]",
        "customer_id": "int64",
        "terminal_id": "int64",
        "tx_amount": "float64",
        "tx_fraud": "int8",
        "tx_fraud_scenario": "int8",
    }
    assert {c: str(t) for c, t in tx_100k.dtypes.items()} == expected
    np.testing.assert_array_equal(tx_100k["transaction_id"], np.arange(len(tx_100k)))
    assert tx_100k["tx_datetime"].is_monotonic_increasing
    assert (tx_100k["tx_amount"] > 0).all()
    assert tx_100k["tx_datetime"].min() >= pd.Timestamp("2026-01-01")
    assert tx_100k["tx_datetime"].max() < pd.Timestamp("2026-01-01") + 90 * DAY
    assert ((tx_100k["tx_fraud"] == 1) == (tx_100k["tx_fraud_scenario"] > 0)).all()


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_row_count_close_to_target(n: int) -> None:
    tx = simulate_transactions(SimulatorSettings(n_transactions=n, n_days=30), seed=11)
    assert abs(len(tx) - n) <= 0.1 * n


@pytest.mark.parametrize("n", [20_000, 100_000])
def test_fraud_rate_about_one_percent(n: int) -> None:
    tx = simulate_transactions(SimulatorSettings(n_transactions=n), seed=0)
    assert 0.005 <= tx["tx_fraud"].mean() <= 0.02


def test_all_scenarios_present(tx_100k: pd.DataFrame) -> None:
    assert set(tx_100k["tx_fraud_scenario"].unique()) == {0, 1, 2, 3}
    scenario_1 = tx_100k[tx_100k["tx_fraud_scenario"] == 1]
    assert (scenario_1["tx_amount"] > 220).all()


def test_feature_columns_added_without_nan(feats_100k: pd.DataFrame) -> None:
    names = feature_columns()
    assert names[0] == "tx_amount"
    assert len(names) == len(set(names))
    assert list(feats_100k.columns[7:]) == names[1:]
    values = feats_100k[names[1:]]
    assert (values.dtypes == np.float32).all()
    assert not values.isna().any().any()
    assert np.isfinite(values.to_numpy()).all()


def test_customer_windows_by_hand() -> None:
    tx = _frame([0.0, 0.5, 10.0], [0, 0, 0])
    out = add_features(tx)
    np.testing.assert_array_equal(out["customer_nb_tx_7d"], [1, 2, 1])
    np.testing.assert_array_equal(out["customer_nb_tx_1d"], [1, 2, 1])
    np.testing.assert_array_equal(out["customer_nb_tx_30d"], [1, 2, 3])
    np.testing.assert_allclose(out["customer_avg_amount_7d"], [10.0, 15.0, 30.0])
    np.testing.assert_allclose(out["customer_avg_amount_30d"], [10.0, 15.0, 20.0])
    np.testing.assert_allclose(out["amount_to_customer_avg_30d"], [1.0, 20 / 15, 1.5], rtol=1e-6)
    np.testing.assert_allclose(
        out["seconds_since_customer_prev_tx"], [FIRST_TX_SENTINEL_S, 43_200, 9.5 * 86_400]
    )
    np.testing.assert_array_equal(out["tx_hour"], [0, 12, 0])
    np.testing.assert_array_equal(out["tx_during_night"], [1, 0, 1])
    np.testing.assert_array_equal(out["tx_during_weekend"], [0, 0, 0])


def test_terminal_risk_by_hand() -> None:
    # Window at t is [t - 7 - w, t - 7) days: labels of the last 7 days are unknown.
    tx = _frame([0.0, 3.0, 6.5, 10.5, 14.0], [1, 1, 0, 0, 0])
    out = add_features(tx, windows_days=(1, 7), terminal_delay_days=7)
    np.testing.assert_array_equal(out["terminal_nb_tx_7d"], [0, 0, 0, 2, 3])
    np.testing.assert_allclose(out["terminal_risk_7d"], [0, 0, 0, 1.0, 2 / 3], rtol=1e-6)
    np.testing.assert_array_equal(out["terminal_nb_tx_1d"], [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(out["terminal_risk_1d"], [0, 0, 0, 1.0, 0.0])


def test_terminal_risk_ignores_labels_inside_delay(tx_100k: pd.DataFrame) -> None:
    tx = tx_100k.iloc[:30_000]
    cut = tx["tx_datetime"].iloc[15_000]
    flipped = tx.copy()
    late = flipped["tx_datetime"] >= cut
    flipped.loc[late, "tx_fraud"] = (1 - flipped.loc[late, "tx_fraud"]).astype(np.int8)
    risk_cols = [c for c in feature_columns() if c.startswith("terminal_risk")]
    a = add_features(tx)[risk_cols]
    b = add_features(flipped)[risk_cols]
    # Rows up to cut + delay only see labels from before cut.
    known = (tx["tx_datetime"] <= cut + 7 * DAY).to_numpy()
    pd.testing.assert_frame_equal(a[known], b[known])
    assert not a[~known].equals(b[~known])


def test_row_order_and_index_preserved(tx_100k: pd.DataFrame) -> None:
    tx = tx_100k.iloc[:5_000]
    shuffled = tx.sample(frac=1.0, random_state=0)
    a = add_features(tx)
    b = add_features(shuffled).loc[tx.index]
    pd.testing.assert_frame_equal(a, b)


def test_bad_inputs_raise() -> None:
    with pytest.raises(PipelineError):
        SimulatorSettings(n_transactions=0)
    with pytest.raises(PipelineError):
        feature_columns((7, 7))
    with pytest.raises(PipelineError):
        add_features(pd.DataFrame({"tx_amount": [1.0]}))
