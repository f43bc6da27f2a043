"""A Rich progress bar over a stage's named steps (the data stages' long steps are shown the
same way training is)."""

from __future__ import annotations

from collections.abc import Iterator
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
