"""Write params.yaml exactly as DVC's Hydra integration does on `dvc exp run`:
`python -m pipelines.compose [overrides ...]`."""

from __future__ import annotations

import sys
from pathlib import Path

CONF = Path(__file__).resolve().parent.parent / "conf"


def compose_params(output: Path, overrides: list[str]) -> None:
    try:
        from dvc.utils.hydra import compose_and_dump
    except ImportError:
        # a training node (a GPU box, a cluster job) need not carry DVC's dependency tree
        _compose_like_dvc(output, overrides)
        return
    compose_and_dump(
        output, str(CONF), None, "config", str(CONF.parent / "hydra_plugins"), overrides
    )


def _compose_like_dvc(output: Path, overrides: list[str]) -> None:
    """What dvc.utils.hydra.compose_and_dump does for a YAML file (dvc 3.x); a test compares
    the two outputs."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(CONF), version_base=None):
        cfg = compose(config_name="config", overrides=overrides)
    OmegaConf.resolve(cfg)
    Path(output).write_text(OmegaConf.to_yaml(cfg), encoding="utf-8")


if __name__ == "__main__":
    compose_params(Path("params.yaml"), sys.argv[1:])
