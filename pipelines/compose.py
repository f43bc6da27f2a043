"""Write params.yaml exactly as DVC's Hydra integration does on `dvc exp run`:
`python -m pipelines.compose [overrides ...]`."""

from __future__ import annotations

import sys
from pathlib import Path

CONF = Path(__file__).resolve().parent.parent / "conf"


def compose_params(output: Path, overrides: list[str]) -> None:
    from dvc.utils.hydra import compose_and_dump

    compose_and_dump(
        output, str(CONF), None, "config", str(CONF.parent / "hydra_plugins"), overrides
    )


if __name__ == "__main__":
    compose_params(Path("params.yaml"), sys.argv[1:])
