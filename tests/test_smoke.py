"""The fast loop's end-to-end check (`make test-fast` keeps it): all eight stages, in process,
on the shared small table, and the export folder it ships answers through the server's
loader. Training quality is tests/test_stages.py's job; this checks the chain holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipelines.config import load_params
from pipelines.layout import Layout
from pipelines.serve.config import load_serve_config
from pipelines.serve.model import load_model
from tests.modality_runs import assert_every_declared_output_exists, run_pipeline
from tests.small import small_params

# the shared small table (6,000 rows over 30 days: fewer leave a split without fraud)
TINY = [
    "trainer.max_epochs=1",
    "model.hidden_dim=16",
    "model.ffn_dim=16",
    # the compressions that fine-tune are tests/test_stages.py's; here the plain variants
    "quantize.prune.enabled=false",
    "quantize.distill.enabled=false",
    "quantize.qat.enabled=false",
]


def test_every_stage_runs_on_a_tiny_table_and_ships_a_model_that_serves(tmp_path: Path) -> None:
    cfg = load_params(small_params(tmp_path / "params.yaml", TINY))
    root = tmp_path / "run"
    run_pipeline(cfg, root)
    assert_every_declared_output_exists(root)

    layout = Layout(root)
    card = json.loads((layout.export_dir / "model_card.json").read_text())
    report = json.loads(layout.evaluate_metrics.read_text())["variants"]
    assert card["selection"]["rule"].startswith("export.select: the candidate")
    model = load_model(layout.export_dir, load_serve_config(overrides=["serve.warmup_rounds=0"]))
    scores = model.score(model.adapter.collate([model.adapter.warm_input(3)]))
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    assert any(name.endswith(card["variant"]) for name in report)
