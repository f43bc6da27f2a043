"""What a finished sweep leaves in `hydra.sweep.dir`:

- optimization_results.yaml  the released plugin's file (name, best_params, best_value; or the
                             Pareto `solutions`), plus trial counts by state
- best_params.yaml           the best trial's params as a `# @package _global_` override file:
                             `python train.py --config-dir <parent> <base overrides>
                             +<sweep dir name>=best_params` (the command is printed and saved)
- trials.csv                 Optuna's trials dataframe (params, values, states, durations)
- plots/*.png                Optuna's matplotlib plots: optimisation history, parameter
                             importances, parallel coordinates, intermediate values (pruning)
- plots/*.html               the same as interactive plotly figures when plotly is installed,
                             else plots/index.html with the PNGs and the trials table
"""

from __future__ import annotations

import base64
import logging
import shlex
import sys
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import yaml
from omegaconf import DictConfig
from optuna.trial import TrialState

log = logging.getLogger(__name__)


def nested(params: dict[str, Any]) -> dict[str, Any]:
    """{"train.lr": 1e-3} -> {"train": {"lr": 1e-3}} (override prefixes + / ++ dropped)."""
    tree: dict[str, Any] = {}
    for key, value in params.items():
        node = tree
        *parents, leaf = key.lstrip("+").split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def base_overrides(config: DictConfig | None) -> list[str]:
    """The sweep's own command-line overrides, minus the sweep config itself: what a single
    run needs in front of the best params."""
    if config is None:
        return []
    task = list(config.hydra.overrides.task)
    # the sweep config and the trial-only `pipeline` node it brings (train.py) stay behind
    return [o for o in task if not o.lstrip("+~").startswith(("hparams_search", "pipeline."))]


def write_results(
    study: optuna.Study, sweep_dir: Path, config: DictConfig | None, plots: bool = True
) -> dict[str, Any]:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    states = Counter(t.state.name for t in trials)
    results: dict[str, Any] = {
        "name": "optuna",
        "study_name": study.study_name,
        "directions": [d.name.lower() for d in study.directions],
        "trials": dict(sorted(states.items())),
    }
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        log.warning(f"Study {study.study_name!r}: no trial completed; nothing is best")
    elif len(study.directions) == 1:
        best = study.best_trial
        results |= {"best_params": best.params, "best_value": best.value, "best_trial": best.number}
        _write_best_params(best.params, sweep_dir, config, best.value, best.number)
        log.info(f"Best trial {best.number}: value {best.value:.6g}, params {best.params}")
    else:
        results["solutions"] = [
            {"trial": t.number, "params": t.params, "values": t.values} for t in study.best_trials
        ]
        log.info(f"{len(study.best_trials)} Pareto-optimal trials")
    with (sweep_dir / "optimization_results.yaml").open("w") as handle:
        yaml.safe_dump(results, handle, sort_keys=False)
    study.trials_dataframe().to_csv(sweep_dir / "trials.csv", index=False)
    if plots and complete:
        write_plots(study, sweep_dir / "plots")
    return results


def _write_best_params(
    params: dict[str, Any], sweep_dir: Path, config: DictConfig | None, value: float, number: int
) -> None:
    path = sweep_dir / "best_params.yaml"
    base = base_overrides(config)
    command = shlex.join(
        ["python", _program(), "--config-dir", str(sweep_dir.parent), *base]
        + [f"+{sweep_dir.name}=best_params"]
    )
    header = (
        "# @package _global_\n"
        f"# best trial {number} of study, objective {value:.6g}; run it again with:\n"
        f"#   {command}\n"
    )
    path.write_text(header + yaml.safe_dump(nested(params), sort_keys=True))
    inline = shlex.join(["python", _program(), *base, *(f"{k}={v}" for k, v in params.items())])
    (sweep_dir / "best_command.txt").write_text(f"{command}\n# or, inline:\n{inline}\n")
    print(f"Best value {value:.6g} (trial {number}); params saved to {path}\n  {command}")


def _program() -> str:
    """The script the sweep ran (train.py), as the user typed it."""
    return sys.argv[0] if sys.argv and sys.argv[0] else "train.py"


def write_plots(study: optuna.Study, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as opt_mpl

    out.mkdir(parents=True, exist_ok=True)
    single = len(study.directions) == 1
    figures: dict[str, Callable[[optuna.Study], Any]] = (
        {
            "optimization_history": opt_mpl.plot_optimization_history,
            "param_importances": opt_mpl.plot_param_importances,
            "parallel_coordinate": opt_mpl.plot_parallel_coordinate,
            "intermediate_values": opt_mpl.plot_intermediate_values,
        }
        if single
        else {"pareto_front": opt_mpl.plot_pareto_front}
    )
    written: list[Path] = []
    for name, plot in figures.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                axes = plot(study)
            figure = getattr(axes, "figure", None) or axes.flat[0].figure
            figure.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
            plt.close(figure)
            written.append(out / f"{name}.png")
        except (ValueError, RuntimeError, ZeroDivisionError) as err:
            # e.g. importances need two completed trials whose params differ
            log.info(f"plot {name} skipped: {err}")
    if not _plotly_html(study, out, list(figures)):
        _index_html(study, out, written)
    return written


def _plotly_html(study: optuna.Study, out: Path, names: list[str]) -> bool:
    try:
        import plotly  # noqa: F401
    except ImportError:
        return False
    from optuna import visualization as vis

    for name in names:
        try:
            getattr(vis, f"plot_{name}")(study).write_html(out / f"{name}.html")
        except (ValueError, RuntimeError, ZeroDivisionError) as err:
            log.info(f"plot {name}.html skipped: {err}")
    return True


def _index_html(study: optuna.Study, out: Path, images: list[Path]) -> None:
    """Without plotly: one self-contained page with the PNGs and the trials table."""
    frame = study.trials_dataframe()
    parts = [f"<h1>Optuna study {study.study_name}</h1>"]
    for image in images:
        data = base64.b64encode(image.read_bytes()).decode()
        parts.append(f'<h2>{image.stem}</h2><img src="data:image/png;base64,{data}">')
    parts.append("<h2>trials</h2>" + frame.to_html(index=False, na_rep=""))
    style = "body{font-family:sans-serif;margin:2em}img{max-width:900px}td,th{padding:2px 6px}"
    (out / "index.html").write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><style>{style}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )
