"""How a stage shows it is alive: a Rich progress bar over its named steps (the data stages'
long steps are shown the same way training is), and one line per epoch of a fit (training
off a terminal, and every compression fine-tune of the quantize stage)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


class Steps:
    def __init__(self, progress: Progress, task: int) -> None:
        self._progress, self._task = progress, task

    def __call__(self, description: str) -> None:
        self._progress.update(self._task, advance=1, description=description)


@contextmanager
def stage_steps(stage: str, total: int) -> Iterator[Steps]:
    with Progress(
        TextColumn(f"[bold]{stage}[/bold]"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} {task.description}"),
        TimeElapsedColumn(),
    ) as progress:
        task = progress.add_task("starting", total=total)
        yield Steps(progress, task)


def epoch_line(
    epoch: int,
    metrics: Mapping[str, float],
    *,
    label: str = "",
    epochs: int | None = None,
    seconds: float | None = None,
) -> str:
    """`[label: ]epoch 2[/5]: train_loss_epoch 0.4123, val_auprc 0.8012[ (3.1 s)]`, the line
    training prints per epoch and each fine-tune prints with its label."""
    counted = f"epoch {epoch}" + (f"/{epochs}" if epochs is not None else "")
    shown = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items())
    took = f" ({seconds:.1f} s)" if seconds is not None else ""
    return f"{label + ': ' if label else ''}{counted}: {shown}{took}"
