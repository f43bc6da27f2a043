"""Dynamic batching: /predict requests wait in one queue and are scored together, up to
`max_batch` rows or until the oldest has waited `max_wait_ms`, whichever comes first.

One worker task forms batches on the event loop and runs each inference on a dedicated
thread, so the loop keeps accepting requests while a batch is scored; whatever arrives during
an inference forms the next batch. Under load batches therefore fill by themselves, and when
idle a lone request waits at most `max_wait_ms`."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.serve.metrics import ServeMetrics
from pipelines.serve.model import LoadedModel


class QueueFull(Exception):
    """Back-pressure: more rows waiting than `serve.max_queue_rows`."""


class ScoringError(Exception):
    """The model failed on a batch; every request in it gets a 5xx with this message."""


@dataclass
class Scored:
    scores: np.ndarray
    model: LoadedModel
    batch_id: int
    batch_rows: int
    batch_requests: int


@dataclass
class _Pending:
    data: Any  # the request's input as its model's adapter parsed it
    rows: int
    model: LoadedModel  # the model the rows were validated against: a reload cannot change it
    future: asyncio.Future[Scored]
    enqueued: float = field(default_factory=time.monotonic)


# called on the scoring thread after each successful batch with its feeds, its scores and
# each request's row count, in order: metrics, drift window, the shadow's copy
BatchHook = Callable[[LoadedModel, dict[str, np.ndarray], np.ndarray, list[int]], None]


class Batcher:
    def __init__(
        self,
        max_batch: int,
        max_wait_ms: float,
        max_queue_rows: int,
        metrics: ServeMetrics,
        batching: bool = True,
        on_batch: BatchHook | None = None,
        inference_thread: bool = True,
    ) -> None:
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.max_queue_rows = max_queue_rows
        self.batching = batching
        self.metrics = metrics
        self.on_batch = on_batch
        self.inference_thread = inference_thread
        self._queue: deque[_Pending] = deque()
        self._rows = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self._ids = itertools.count(1)
        # one thread: ORT already uses `serve.threads` cores per run, and two concurrent runs
        # on 2 cores only contend
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="score")
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    async def stop(self) -> None:
        """Score everything already queued, then stop (no request is dropped on shutdown)."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    @property
    def executor(self) -> Executor:
        """The scoring thread: other work that should follow a batch (a shadow's copy of it)
        can queue behind it here."""
        return self._executor

    @property
    def queued_rows(self) -> int:
        return self._rows

    async def submit(self, data: Any, rows: int, model: LoadedModel) -> Scored:
        """Queue one request's `rows` (its adapter's parsed `data`) and wait for its scores."""
        if self._closing:
            raise QueueFull("server is shutting down")
        if self._rows + rows > self.max_queue_rows:
            raise QueueFull(
                f"{self._rows} rows already queued; serve.max_queue_rows = {self.max_queue_rows}"
            )
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(data, rows, model, future))
        self._rows += rows
        self._gauges()
        self._wakeup.set()
        return await future

    def _gauges(self) -> None:
        self.metrics.queue_rows.set(self._rows)
        self.metrics.queue_requests.set(len(self._queue))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
            if self.batching:
                await self._fill(loop, self._queue[0].enqueued + self.max_wait)
            batch = self._take()
            await self._score(loop, batch)

    async def _fill(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        """Wait until `max_batch` rows are queued or the oldest request's wait is over."""
        while self._rows < self.max_batch and not self._closing:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining)
            except asyncio.TimeoutError:  # the builtin only from Python 3.11
                return

    def _take(self) -> list[_Pending]:
        first = self._queue.popleft()
        batch, rows = [first], first.rows
        if self.batching:
            # requests validated against another model (a reload happened) wait for their own
            # batch; a request larger than max_batch is scored alone rather than split
            while (
                self._queue
                and self._queue[0].model is first.model
                and rows + self._queue[0].rows <= self.max_batch
            ):
                item = self._queue.popleft()
                batch.append(item)
                rows += item.rows
        self._rows -= rows
        self._gauges()
        return batch

    async def _score(self, loop: asyncio.AbstractEventLoop, batch: list[_Pending]) -> None:
        model = batch[0].model
        batch_id = next(self._ids)
        counts = [p.rows for p in batch]
        rows = sum(counts)
        try:
            # the adapter pads or stacks the requests' inputs into the graph's feeds
            feeds = model.adapter.collate([p.data for p in batch])
            if self.inference_thread:
                scores = await loop.run_in_executor(
                    self._executor, self._infer, model, feeds, counts
                )
            else:  # blocks the loop for one inference, saving two thread hand-offs per batch
                scores = self._infer(model, feeds, counts)
        except Exception as err:  # the model's failure is the batch's answer, not the server's
            reason = " ".join(str(err).split())[:300] or type(err).__name__
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(ScoringError(f"scoring failed: {reason}"))
            return
        start = 0
        for p in batch:
            end = start + p.rows
            if not p.future.done():  # a client that hung up has a cancelled future
                p.future.set_result(Scored(scores[start:end], model, batch_id, rows, len(batch)))
            start = end
        self.metrics.batch_requests.observe(len(batch))

    def _infer(
        self, model: LoadedModel, feeds: dict[str, np.ndarray], counts: list[int]
    ) -> np.ndarray:
        started = time.perf_counter()
        scores = model.score(feeds)
        if not np.all(np.isfinite(scores)):
            raise ScoringError("model returned a non-finite score")
        self.metrics.batch_latency.observe(time.perf_counter() - started)
        self.metrics.batch_rows.observe(len(scores))
        if self.on_batch is not None:
            self.on_batch(model, feeds, scores, counts)
        return scores
