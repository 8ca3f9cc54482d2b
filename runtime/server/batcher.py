"""Dynamic batching across concurrent requests.

Requests put their tokenized inputs in one queue; a single worker takes what is waiting
(up to the token budget, after at most max_wait for company), runs the engine off the
event loop, and hands every input's vector back to its own request, in order.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .metrics import Metrics


class QueueFull(RuntimeError):
    """More inputs are waiting than the server accepts; the client should retry later (429)."""


@dataclass
class _Job:
    sequences: list[list[int]]
    normalize: bool | None
    future: asyncio.Future
    vectors: list = field(default_factory=list)
    remaining: int = 0


@dataclass
class _Item:
    job: _Job
    position: int
    sequence: list[int]


EmbedFn = Callable[[Sequence[Sequence[int]], bool | None], np.ndarray]


class DynamicBatcher:
    def __init__(
        self,
        embed: EmbedFn,
        max_batch_tokens: int,
        max_batch_size: int,
        max_wait_s: float,
        max_queue_inputs: int,
        metrics: Metrics,
        batching: bool = True,
    ):
        self._embed = embed
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue_inputs = max_queue_inputs
        self.batching = batching
        self.metrics = metrics
        self._queue: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seaembed-engine")
        self._worker: asyncio.Task | None = None
        self._closing = False

    @property
    def queued_inputs(self) -> int:
        return len(self._queue)

    @property
    def alive(self) -> bool:
        return self._worker is not None and not self._worker.done()

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._run(), name="seaembed-batcher")

    async def stop(self) -> None:
        """Finish everything already queued, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._worker is not None:
            await self._worker
        self._executor.shutdown(wait=True)

    async def embed(self, sequences: list[list[int]], normalize: bool | None) -> np.ndarray:
        if self._closing:
            raise QueueFull("the server is shutting down")
        if len(self._queue) + len(sequences) > self.max_queue_inputs:
            raise QueueFull(
                f"{len(self._queue)} inputs are already waiting and the queue holds at most {self.max_queue_inputs}; retry later"
            )
        job = _Job(sequences, normalize, asyncio.get_running_loop().create_future(), [None] * len(sequences), len(sequences))
        if not sequences:
            return np.empty((0, 0), dtype=np.float32)
        self._queue.extend(_Item(job, i, seq) for i, seq in enumerate(sequences))
        self.metrics.set("seaembed_queue_inputs", len(self._queue))
        self._wakeup.set()
        return await job.future

    def _take_batch(self) -> list[_Item]:
        """FIFO (no request starves), up to max_batch_size inputs and max_batch_tokens padded tokens."""
        if not self.batching:
            first = self._queue[0].job
            batch = []
            while self._queue and self._queue[0].job is first:
                batch.append(self._queue.popleft())
            return batch
        batch: list[_Item] = []
        longest = 0
        while self._queue and len(batch) < self.max_batch_size:
            candidate = self._queue[0]
            new_longest = max(longest, len(candidate.sequence))
            if batch and new_longest * (len(batch) + 1) > self.max_batch_tokens:
                break
            batch.append(self._queue.popleft())
            longest = new_longest
        return batch

    def _budget_filled(self) -> bool:
        if len(self._queue) >= self.max_batch_size:
            return True
        longest = max((len(i.sequence) for i in self._queue), default=0)
        return longest * len(self._queue) >= self.max_batch_tokens

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self.batching and self.max_wait_s > 0 and not self._budget_filled() and not self._closing:
                deadline = time.perf_counter() + self.max_wait_s
                while not self._budget_filled() and (remaining := deadline - time.perf_counter()) > 0:
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    except asyncio.TimeoutError:
                        break
            batch = self._take_batch()
            self.metrics.set("seaembed_queue_inputs", len(self._queue))
            await self._execute(loop, batch)

    async def _execute(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        groups: dict[bool | None, list[_Item]] = {}
        for item in batch:
            groups.setdefault(item.job.normalize, []).append(item)
        for normalize, items in groups.items():
            sequences = [i.sequence for i in items]
            started = time.perf_counter()
            try:
                vectors = await loop.run_in_executor(self._executor, self._embed, sequences, normalize)
            except Exception as err:  # the engine failed: fail these requests, keep serving
                for item in items:
                    if not item.job.future.done():
                        item.job.future.set_exception(err)
                continue
            self.metrics.observe("seaembed_inference_duration_seconds", time.perf_counter() - started)
            self.metrics.observe("seaembed_batch_size", len(items))
            self.metrics.observe("seaembed_batch_tokens", len(items) * max(len(s) for s in sequences))
            for item, vector in zip(items, vectors, strict=True):
                job = item.job
                if job.future.done():  # client went away or an earlier group failed
                    continue
                job.vectors[item.position] = vector
                job.remaining -= 1
                if job.remaining == 0:
                    job.future.set_result(np.stack(job.vectors))
