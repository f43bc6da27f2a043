"""Seeded card-transaction simulator and rolling features for fraud detection.

Follows the design of the "Reproducible Machine Learning for Credit Card Fraud Detection -
Practical Handbook" (Le Borgne et al.): customer and terminal profiles on a 100x100 grid,
day-by-day Poisson transactions, and three fraud scenarios (large amounts, compromised
terminals, compromised cards). Everything is vectorised with numpy and driven by one seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipelines.errors import PipelineError

SECONDS_PER_DAY = 86_400
_NS_PER_SECOND = 1_000_000_000
_NS_PER_DAY = SECONDS_PER_DAY * _NS_PER_SECOND
_GRID_SIZE = 100.0

# Handbook profile distributions.
_MEAN_AMOUNT_RANGE = (5.0, 100.0)
_MEAN_TX_PER_DAY_MAX = 4.0
_TIME_MEAN_S = SECONDS_PER_DAY / 2
_TIME_STD_S = 20_000.0
# Times drawn outside the day are dropped (as in the handbook); this is the kept share.
_KEEP_FRACTION = math.erf(_TIME_MEAN_S / (_TIME_STD_S * math.sqrt(2.0)))

# Compromise rates are quoted for the handbook's population so the fraud rate does not
# drift with the number of rows.
_REF_TERMINALS = 10_000
_REF_CUSTOMERS = 5_000
_TERMINAL_COMPROMISE_DAYS = 28
_CARD_COMPROMISE_DAYS = 14
_CARD_FRAUD_SHARE = 1.0 / 3.0
_CARD_FRAUD_MULTIPLIER = 5.0

# Bounds the candidate (customer, terminal) pairs held in memory at once.
_MAX_PAIRS_PER_CHUNK = 4_000_000

FIRST_TX_SENTINEL_S = 30.0 * SECONDS_PER_DAY

COLUMNS = (
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "tx_amount",
    "tx_fraud",
    "tx_fraud_scenario",
)


@dataclass(frozen=True)
class SimulatorSettings:
    """Simulation size and fraud knobs; compromise rates are per reference population."""

    n_transactions: int = 100_000  # target row count; the number of customers is derived from it
    n_days: int = 90
    n_terminals: int | None = None  # None -> 2 terminals per customer, as in the handbook
    radius: float = 5.0
    start_date: str = "2026-01-01"
    # Terminals compromised per day per 10,000 terminals in use (scaled to the actual count).
    terminal_compromise_per_day: float = 2.0
    # Cards compromised per day per 5,000 customers (scaled to the actual count).
    card_compromise_per_day: float = 5.0
    amount_fraud_threshold: float = 220.0

    def __post_init__(self) -> None:
        if self.n_transactions < 1:
            raise PipelineError(
                f"simulator: n_transactions must be >= 1, got {self.n_transactions}"
            )
        if self.n_days < 1:
            raise PipelineError(f"simulator: n_days must be >= 1, got {self.n_days}")
        if self.n_terminals is not None and self.n_terminals < 1:
            raise PipelineError(f"simulator: n_terminals must be >= 1, got {self.n_terminals}")
        if not self.radius > 0:
            raise PipelineError(f"simulator: radius must be > 0, got {self.radius}")
        if self.terminal_compromise_per_day < 0 or self.card_compromise_per_day < 0:
            raise PipelineError("simulator: compromise rates must be >= 0")
        try:
            np.datetime64(self.start_date, "ns")
        except ValueError as exc:
            raise PipelineError(f"simulator: bad start_date {self.start_date!r}") from exc

    def n_customers(self) -> int:
        """Customers needed so the expected row count equals n_transactions."""
        per_customer = self.n_days * _MEAN_TX_PER_DAY_MAX / 2 * _KEEP_FRACTION
        return max(1, round(self.n_transactions / per_customer))

    def resolved_n_terminals(self) -> int:
        return self.n_terminals if self.n_terminals is not None else 2 * self.n_customers()


def _ragged_arange(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Concatenation of arange(s, s + n) for each (s, n), without a Python loop."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(lengths)
    offsets = np.repeat(starts - (ends - lengths), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def _terminals_within_radius(
    cust_xy: np.ndarray, term_xy: np.ndarray, radius: float
) -> tuple[np.ndarray, np.ndarray]:
    """CSR (offsets, terminal ids) of each customer's terminals within radius.

    A customer with none in reach gets its nearest terminal, so small populations (sparse
    grids) still produce the requested number of rows.
    """
    n_cust = len(cust_xy)
    n_cells = max(1, math.ceil(_GRID_SIZE / radius))
    # Cells at least `radius` wide: every terminal in reach lies in the 3x3 block around.
    t_cx = np.minimum((term_xy[:, 0] / radius).astype(np.int64), n_cells - 1)
    t_cy = np.minimum((term_xy[:, 1] / radius).astype(np.int64), n_cells - 1)
    t_cell = t_cx * n_cells + t_cy
    t_order = np.argsort(t_cell, kind="stable").astype(np.int32)
    t_x, t_y = term_xy[t_order, 0], term_xy[t_order, 1]
    cell_counts = np.bincount(t_cell, minlength=n_cells * n_cells)
    cell_start = np.concatenate(([0], np.cumsum(cell_counts)[:-1]))

    c_x, c_y = cust_xy[:, 0], cust_xy[:, 1]
    c_cx = np.minimum((c_x / radius).astype(np.int64), n_cells - 1)
    c_cy = np.minimum((c_y / radius).astype(np.int64), n_cells - 1)
    shifts = np.array([(dx, dy) for dx in (-1, 0, 1) for dy in (-1, 0, 1)], dtype=np.int64)

    per_customer = 9 * len(term_xy) / (n_cells * n_cells) + 1
    chunk = max(1, int(_MAX_PAIRS_PER_CHUNK / per_customer))
    found: list[np.ndarray] = []
    counts = np.zeros(n_cust, dtype=np.int64)
    r2 = radius * radius
    for lo in range(0, n_cust, chunk):
        hi = min(n_cust, lo + chunk)
        nx = c_cx[lo:hi, None] + shifts[None, :, 0]
        ny = c_cy[lo:hi, None] + shifts[None, :, 1]
        valid = (nx >= 0) & (nx < n_cells) & (ny >= 0) & (ny < n_cells)
        cell = np.where(valid, nx * n_cells + ny, 0)
        lengths = np.where(valid, cell_counts[cell], 0).ravel()
        pos = _ragged_arange(cell_start[cell].ravel(), lengths)
        cust = np.repeat(np.repeat(np.arange(lo, hi, dtype=np.int64), 9), lengths)
        dx = c_x[cust] - t_x[pos]
        dy = c_y[cust] - t_y[pos]
        keep = dx * dx + dy * dy < r2
        found.append(t_order[pos[keep]])
        counts[lo:hi] = np.bincount(cust[keep] - lo, minlength=hi - lo)

    lonely = np.flatnonzero(counts == 0)
    if len(lonely):
        # Pairs are grouped by customer already; splice each lonely customer's nearest in.
        nearest = np.empty(len(lonely), dtype=np.int32)
        step = max(1, _MAX_PAIRS_PER_CHUNK // len(term_xy))
        for lo in range(0, len(lonely), step):
            idx = lonely[lo : lo + step]
            d2 = (c_x[idx, None] - term_xy[None, :, 0]) ** 2 + (
                c_y[idx, None] - term_xy[None, :, 1]
            ) ** 2
            nearest[lo : lo + step] = d2.argmin(axis=1)
        found_all = np.concatenate(found)
        insert_at = np.concatenate(([0], np.cumsum(counts)))[lonely]
        found = [np.insert(found_all, insert_at, nearest)]
        counts[lonely] = 1
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    return offsets, np.concatenate(found)


def _compromise_events(
    rate_per_day: float, n_days: int, n_entities: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(entity, start day) of compromise events.

    Fractional rates are spread evenly over the days (random phase) rather than drawn from a
    Poisson, which keeps the fraud rate steady for small populations.
    """
    phase = rng.random()
    cumulative = np.floor(np.arange(n_days + 1) * rate_per_day + phase).astype(np.int64)
    per_day = np.diff(cumulative)
    days = np.repeat(np.arange(n_days, dtype=np.int64), per_day)
    # Distinct entities (while there are enough): a repeat would overlap and waste an event.
    n_rounds = -(-len(days) // n_entities)
    entities = [rng.permutation(n_entities) for _ in range(n_rounds)]
    entities.append(np.zeros(0, dtype=np.int64))
    return np.concatenate(entities)[: len(days)].astype(np.int64), days


def _active_mask(
    entities: np.ndarray, start_days: np.ndarray, duration: int, n_entities: int, n_days: int
) -> np.ndarray:
    """Boolean (entity, day) matrix: True while any compromise event is running."""
    delta = np.zeros((n_entities, n_days + 1), dtype=np.int32)
    np.add.at(delta, (entities, start_days), 1)
    np.add.at(delta, (entities, np.minimum(start_days + duration, n_days)), -1)
    return np.cumsum(delta[:, :n_days], axis=1) > 0


def simulate_transactions(settings: SimulatorSettings, seed: int) -> pd.DataFrame:
    """Simulated transactions sorted by time; same settings and seed give the same frame."""
    rng = np.random.default_rng(seed)
    n_days = settings.n_days
    n_cust = settings.n_customers()
    n_term = settings.resolved_n_terminals()

    cust_xy = rng.uniform(0.0, _GRID_SIZE, size=(n_cust, 2))
    mean_amount = rng.uniform(*_MEAN_AMOUNT_RANGE, size=n_cust)
    std_amount = mean_amount / 2
    tx_per_day = rng.uniform(0.0, _MEAN_TX_PER_DAY_MAX, size=n_cust)
    # Rescale so the expected total hits the target even with a handful of customers.
    expected = tx_per_day.sum() * n_days * _KEEP_FRACTION
    if expected > 0:
        tx_per_day *= settings.n_transactions / expected
    term_xy = rng.uniform(0.0, _GRID_SIZE, size=(n_term, 2))
    offsets, reachable = _terminals_within_radius(cust_xy, term_xy, settings.radius)

    # Day-major so the pre-sort order (and thus stable-sort ties) is deterministic.
    counts = rng.poisson(np.broadcast_to(tx_per_day, (n_days, n_cust)))
    slot = np.repeat(np.arange(n_days * n_cust, dtype=np.int64), counts.ravel())
    day = slot // n_cust
    customer = slot % n_cust
    time_s = np.floor(rng.normal(_TIME_MEAN_S, _TIME_STD_S, size=len(slot))).astype(np.int64)
    in_day = (time_s >= 0) & (time_s < SECONDS_PER_DAY)
    day, customer, time_s = day[in_day], customer[in_day], time_s[in_day]
    n = len(day)

    amount = rng.normal(mean_amount[customer], std_amount[customer])
    negative = amount < 0
    amount[negative] = rng.uniform(0.0, 2 * mean_amount[customer[negative]])
    n_reach = offsets[customer + 1] - offsets[customer]
    pick = offsets[customer] + (rng.random(n) * n_reach).astype(np.int64)
    terminal = reachable[pick]

    seconds = day * SECONDS_PER_DAY + time_s
    order = np.argsort(seconds, kind="stable")
    seconds, day, customer, terminal, amount = (
        a[order] for a in (seconds, day, customer, terminal, amount)
    )

    scenario = np.zeros(n, dtype=np.int8)
    scenario[amount > settings.amount_fraud_threshold] = 1

    # Only terminals some customer can reach: on sparse grids many are never used, and
    # compromising those would make the fraud rate swing wildly from seed to seed.
    in_use = np.flatnonzero(np.bincount(reachable, minlength=n_term))
    term_rate = settings.terminal_compromise_per_day * len(in_use) / _REF_TERMINALS
    ents, starts = _compromise_events(term_rate, n_days, len(in_use), rng)
    ents = in_use[ents]
    active_term = _active_mask(ents, starts, _TERMINAL_COMPROMISE_DAYS, n_term, n_days)
    scenario[active_term[terminal, day]] = 2

    card_rate = settings.card_compromise_per_day * n_cust / _REF_CUSTOMERS
    ents, starts = _compromise_events(card_rate, n_days, n_cust, rng)
    active_card = _active_mask(ents, starts, _CARD_COMPROMISE_DAYS, n_cust, n_days)
    candidates = np.flatnonzero(active_card[customer, day])
    stolen = candidates[rng.random(len(candidates)) < _CARD_FRAUD_SHARE]
    amount[stolen] *= _CARD_FRAUD_MULTIPLIER
    scenario[stolen] = 3

    # Cents, and strictly positive as a card amount must be.
    amount = np.maximum(np.round(amount, 2), 0.01)
    start_ns = np.datetime64(settings.start_date, "ns").astype(np.int64)
    tx_datetime = (start_ns + seconds * _NS_PER_SECOND).view("datetime64[ns]")
    return pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype=np.int64),
            "tx_datetime": tx_datetime,
            "customer_id": customer.astype(np.int64),
            "terminal_id": terminal.astype(np.int64),
            "tx_amount": amount.astype(np.float64),
            "tx_fraud": (scenario > 0).astype(np.int8),
            "tx_fraud_scenario": scenario,
        }
    )


def feature_columns(windows_days: Sequence[int] = (1, 7, 30)) -> list[str]:
    """Model inputs produced by add_features (plus tx_amount), in a stable order."""
    windows = _check_windows(windows_days)
    names = [
        "tx_amount",
        "tx_during_weekend",
        "tx_during_night",
        "tx_hour",
        "seconds_since_customer_prev_tx",
    ]
    for w in windows:
        names += [f"customer_nb_tx_{w}d", f"customer_avg_amount_{w}d"]
    for w in windows:
        names += [f"terminal_nb_tx_{w}d", f"terminal_risk_{w}d"]
    names.append("amount_to_customer_avg_30d")
    return names


def _check_windows(windows_days: Sequence[int]) -> tuple[int, ...]:
    windows = tuple(int(w) for w in windows_days)
    if not windows or any(w < 1 for w in windows) or len(set(windows)) != len(windows):
        raise PipelineError(
            f"features: windows_days must be distinct positive ints, got {list(windows_days)}"
        )
    return windows


class _GroupTimeIndex:
    """Rows sorted by (group, time) with one int64 key per row for window searches.

    key = group_rank * stride + time, with stride larger than the time span plus the longest
    look-back, so a search never crosses into a neighbouring group.
    """

    def __init__(self, groups: np.ndarray, t_ns: np.ndarray, lookback_ns: int) -> None:
        _, codes = np.unique(groups, return_inverse=True)
        codes = codes.astype(np.int64).ravel()
        n_groups = int(codes.max()) + 1 if len(codes) else 1
        t_rel = t_ns - (t_ns.min() if len(t_ns) else 0)
        # Coarsen the time unit only when ns keys would overflow int64 (huge populations).
        for unit in (1, 1_000, 1_000_000, _NS_PER_SECOND):
            t_units = t_rel // unit
            stride = int(t_units.max() if len(t_units) else 0) + -(-lookback_ns // unit) + 1
            if n_groups * stride < 2**62:
                break
        else:
            raise PipelineError("features: time span x number of groups too large to index")
        self.unit_ns = unit
        key = codes * stride + t_units
        self.order = np.argsort(key, kind="stable")
        self.key = key[self.order]
        sorted_codes = codes[self.order]
        self.first_in_group = np.ones(len(key), dtype=bool)
        self.first_in_group[1:] = sorted_codes[1:] != sorted_codes[:-1]

    def days(self, d: int) -> int:
        return d * _NS_PER_DAY // self.unit_ns

    def scatter(self, sorted_values: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """Values in sorted order -> values in the frame's row order."""
        out = np.empty(len(sorted_values), dtype=dtype)
        out[self.order] = sorted_values
        return out


def add_features(
    tx: pd.DataFrame,
    windows_days: Sequence[int] = (1, 7, 30),
    terminal_delay_days: int = 7,
) -> pd.DataFrame:
    """Frame with calendar, customer-window and delayed terminal-risk features appended.

    Customer windows cover (t - w, t] and include the current row. Terminal windows cover
    [t - delay - w, t - delay) so only labels known by time t are used; terminal_nb_tx_{w}d
    counts the same delayed window (as in the handbook). Row order and index are kept.
    """
    windows = _check_windows(windows_days)
    delay = int(terminal_delay_days)
    if delay < 0 or delay != terminal_delay_days:
        raise PipelineError(
            f"features: terminal_delay_days must be an int >= 0, got {terminal_delay_days}"
        )
    required = ("tx_datetime", "customer_id", "terminal_id", "tx_amount", "tx_fraud")
    missing = [c for c in required if c not in tx.columns]
    if missing:
        raise PipelineError(f"features: transactions frame lacks columns {missing}")
    if tx["tx_datetime"].isna().any():
        raise PipelineError("features: tx_datetime has missing values")

    t_ns = tx["tx_datetime"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    amount = tx["tx_amount"].to_numpy(dtype=np.float64)
    fraud = tx["tx_fraud"].to_numpy(dtype=np.int64)
    n = len(tx)
    feats: dict[str, np.ndarray] = {}

    day_number = t_ns // _NS_PER_DAY
    weekday = (day_number + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    hour = (t_ns // (3600 * _NS_PER_SECOND)) % 24
    feats["tx_during_weekend"] = (weekday >= 5).astype(np.float32)
    feats["tx_during_night"] = (hour <= 6).astype(np.float32)  # handbook: 00:00-06:59
    feats["tx_hour"] = hour.astype(np.float32)

    idx = np.arange(n, dtype=np.int64)
    avg_windows = windows if 30 in windows else (*windows, 30)
    cust = _GroupTimeIndex(tx["customer_id"].to_numpy(), t_ns, max(avg_windows) * _NS_PER_DAY)
    gap = np.empty(n, dtype=np.float64)
    if n:
        gap[1:] = np.diff(cust.key) * (cust.unit_ns / _NS_PER_SECOND)
    gap[cust.first_in_group] = FIRST_TX_SENTINEL_S
    feats["seconds_since_customer_prev_tx"] = cust.scatter(gap)

    amount_cs = np.concatenate(([0.0], np.cumsum(amount[cust.order])))
    avg_30 = np.ones(n, dtype=np.float64)
    for w in avg_windows:
        lo = np.searchsorted(cust.key, cust.key - cust.days(w), side="right")
        nb = idx - lo + 1
        avg = (amount_cs[idx + 1] - amount_cs[lo]) / nb
        if w in windows:
            feats[f"customer_nb_tx_{w}d"] = cust.scatter(nb)
            feats[f"customer_avg_amount_{w}d"] = cust.scatter(avg)
        if w == 30:
            avg_30 = cust.scatter(avg, np.float64)

    term = _GroupTimeIndex(tx["terminal_id"].to_numpy(), t_ns, (delay + max(windows)) * _NS_PER_DAY)
    fraud_cs = np.concatenate(([0], np.cumsum(fraud[term.order])))
    # side="left" on both ends: the window is half-open, ending strictly before t - delay.
    hi = np.searchsorted(term.key, term.key - term.days(delay), side="left")
    for w in windows:
        lo = np.searchsorted(term.key, term.key - term.days(delay + w), side="left")
        nb = hi - lo
        n_fraud = fraud_cs[hi] - fraud_cs[lo]
        risk = np.divide(n_fraud, nb, out=np.zeros(n, dtype=np.float64), where=nb > 0)
        feats[f"terminal_nb_tx_{w}d"] = term.scatter(nb)
        feats[f"terminal_risk_{w}d"] = term.scatter(risk)

    ratio = np.divide(amount, avg_30, out=np.ones(n, dtype=np.float64), where=avg_30 > 0)
    feats["amount_to_customer_avg_30d"] = ratio.astype(np.float32)

    ordered = {name: feats[name] for name in feature_columns(windows)[1:]}
    base = tx.drop(columns=[c for c in ordered if c in tx.columns])
    return pd.concat([base, pd.DataFrame(ordered, index=tx.index)], axis=1)
