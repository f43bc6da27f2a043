"""The scikit-learn baselines become ONNX graphs with the model's own interface, so export
can ship one when it measures best and the server takes it unchanged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from pipelines.modalities.tabular import baselines
from pipelines.modalities.tabular.baseline_onnx import parity, to_onnx
from pipelines.onnx_export import INPUT, OUTPUT
from pipelines.runtime import session
from pipelines.schema.evaluation import BASELINES


def rows_and_labels(n: int, width: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, width)).astype(np.float32)
    # a non-linear target, so the trees grow real splits
    y = (x[:, 0] + x[:, 1] ** 2 + rng.normal(scale=0.5, size=n) > 1).astype(np.int64)
    return x, y


def histories(rows: np.ndarray, length: int, seed: int) -> np.ndarray:
    """Each row as the current (last) transaction of a history, padding flag set."""
    rng = np.random.default_rng(seed)
    past = rng.normal(size=(len(rows), length - 1, rows.shape[1])).astype(np.float32)
    history = np.concatenate([past, rows[:, None, :]], axis=1)
    flag = np.ones((*history.shape[:2], 1), dtype=np.float32)
    return np.concatenate([history, flag], axis=2)


@pytest.mark.parametrize("kind", BASELINES)
@pytest.mark.parametrize("sequence", [False, True], ids=["rows", "histories"])
def test_a_baseline_graph_scores_like_scikit_learn_through_the_model_interface(
    kind: str, sequence: bool, tmp_path: Path
) -> None:
    rows, y = rows_and_labels(2000, 6, seed=0)
    x = histories(rows, 4, seed=1) if sequence else rows
    model = baselines.fit(kind, x, y, seed=0, threads=1)
    path = tmp_path / f"model_sklearn_{kind}.onnx"
    to_onnx(model, x.shape[1:], path)

    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == [INPUT] and [o.name for o in graph.output] == [OUTPUT]
    scores = session(path, threads=1).run(None, {INPUT: x[:7]})[0]
    assert scores.shape == (7,) and scores.dtype == np.float32
    expected = model.predict_proba(rows[:7])[:, 1]
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert max(parity(model, path, x, [1, 7, 300]).values()) < 1e-5
    # the model reads the current row only: changing the past leaves the score unchanged
    if sequence:
        earlier = x[:7].copy()
        earlier[:, :-1, :-1] += 5.0
        changed = session(path, threads=1).run(None, {INPUT: earlier})[0]
        np.testing.assert_array_equal(changed, scores)


def test_a_baseline_graph_is_the_same_file_for_the_same_seed(tmp_path: Path) -> None:
    x, y = rows_and_labels(1000, 5, seed=2)
    for run in ("a", "b"):
        to_onnx(
            baselines.fit("hist_gradient_boosting", x, y, seed=3, threads=1),
            x.shape[1:],
            tmp_path / f"{run}.onnx",
        )
    assert (tmp_path / "a.onnx").read_bytes() == (tmp_path / "b.onnx").read_bytes()
