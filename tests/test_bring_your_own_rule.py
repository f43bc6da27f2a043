"""A user's own cleaning rule, written in a folder outside the package, named by `_target_` in
data.clean.rules, runs in the clean stage and quarantines under its own name."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

from pipelines.io import read_split
from pipelines.layout import SPLITS, Layout
from tests.small import REPO, env, small_params, stage_command

RULE_MODULE = '''
import pandas as pd


class DropSmallAmounts:
    """Transactions under `below` are card tests, not purchases."""

    def __init__(self, column: str, below: float) -> None:
        self.column, self.below = column, below

    def __call__(self, frame: pd.DataFrame):
        return (frame[self.column] < self.below).to_numpy()
'''
BELOW = 5.0


def _stage(name: str, params: Path, root: Path, user_code: Path, *overrides: str):
    environment = {**env(), "PYTHONPATH": os.pathsep.join([str(user_code), str(REPO)])}
    return subprocess.run(
        stage_command(name, params, root, *overrides),
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_own_cleaning_rule_quarantines_its_rows_under_its_name(tmp_path: Path) -> None:
    user_code = tmp_path / "user_code"
    user_code.mkdir()
    (user_code / "my_rules.py").write_text(RULE_MODULE)
    params = small_params(tmp_path / "params.yaml")
    cfg = OmegaConf.load(params)
    cfg.data.clean.rules = [
        {
            "_target_": "my_rules.DropSmallAmounts",
            "name": "card_test",
            "column": "tx_amount",
            "below": BELOW,
        }
    ]
    params.write_text(OmegaConf.to_yaml(cfg))
    root = tmp_path / "run"
    for stage in ("ingest", "clean"):
        done = _stage(stage, params, root, user_code)
        assert done.returncode == 0, done.stderr
    layout = Layout(root)

    quarantine = pd.read_parquet(layout.quarantine)
    metrics = json.loads(layout.clean_metrics.read_text())
    for split in SPLITS:
        ingested = read_split(layout.split(layout.ingested, split)).to_pandas()
        removed = quarantine[quarantine["_split"] == split]
        # the built-in row rules run first; a row they removed is not the user rule's
        earlier = removed[~removed["_rule"].isin(["card_test", "duplicate"])]
        small = ingested[ingested["tx_amount"] < BELOW]
        expected = set(small["transaction_id"]) - set(earlier["transaction_id"])
        mine = removed[removed["_rule"] == "card_test"]
        assert len(mine) > 0
        assert set(mine["transaction_id"]) == expected
        assert (mine["tx_amount"] < BELOW).all()
        assert metrics["removed_by_rule"][split]["card_test"] == len(mine)
        assert metrics["rows_out"][split] == len(ingested) - len(removed)
    assert metrics["quarantined"] == len(quarantine)

    # a wrong path is one line naming the key, before any row is read
    wrong = "data.clean.rules=[{_target_: no_such.Rule, name: card_test}]"
    done = _stage("clean", params, root, user_code, wrong)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: clean: data.clean.rules[0]._target_ = 'no_such.Rule': module no_such not found "
        "(is its folder on PYTHONPATH?)"
    ]
