"""Dynamic batching across concurrent requests.

Requests queue their tokenized inputs as one job each; a single worker takes inputs in
arrival order (up to the batch size and token budget, after at most max_wait for company
when the engine is idle), groups them by length so padding stays small, runs the engine
off the event loop, and writes every vector into its own request's output array.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..batching import MIN_FILL, plan_batches
from .metrics import Metrics


class QueueFull(RuntimeError):
    """More inputs are waiting than the server accepts; the client should retry later (429)."""


@dataclass
class _Job:
    sequences: list[list[int]]
    normalize: bool | None
    future: asyncio.Future
    out: np.ndarray
    taken: int = 0  # inputs handed to the engine so far
    remaining: int = 0  # inputs whose vectors have not arrived yet


# engine(sequences, normalize) → float32 [len(sequences), dim]; one call per length group
EmbedFn = Callable[[Sequence[Sequence[int]], bool | None], np.ndarray]


class DynamicBatcher:
    def __init__(
        self,
        embed: EmbedFn,
        dim: int,
        max_batch_tokens: int,
        max_batch_size: int,
        max_wait_s: float,
        max_queue_inputs: int,
        metrics: Metrics,
        batching: bool = True,
    ):
        self._embed = embed
        self.dim = dim
        self.max_batch_tokens = max_batch_tokens
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_queue_inputs = max_queue_inputs
        self.batching = batching
        self.metrics = metrics
        self._jobs: deque[_Job] = deque()
        self._queued = 0  # inputs not yet handed to the engine
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seaembed-engine")
        self._worker: asyncio.Task | None = None
        self._closing = False

    @property
    def queued_inputs(self) -> int:
        return self._queued

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
        if not sequences:
            return np.empty((0, self.dim), dtype=np.float32)
        if self._queued + len(sequences) > self.max_queue_inputs:
            raise QueueFull(f"{self._queued} inputs are already waiting and the queue holds at most {self.max_queue_inputs}; retry later")
        future = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(sequences, normalize, future, np.empty((len(sequences), self.dim), np.float32), 0, len(sequences)))
        self._queued += len(sequences)
        self._wakeup.set()
        return await future

    def _budget_filled(self) -> bool:
        if self._queued >= self.max_batch_size:
            return True
        longest = max((len(s) for job in self._jobs for s in job.sequences[job.taken :]), default=0)
        return longest * self._queued >= self.max_batch_tokens

    def _take_batch(self) -> tuple[list[tuple[_Job, int, int]], list[list[int]], bool | None]:
        """Inputs in arrival order (no request starves) of one `normalize` kind, up to
        max_batch_size inputs and max_batch_tokens padded tokens; (job slices, sequences, normalize)."""
        slices: list[tuple[_Job, int, int]] = []
        sequences: list[list[int]] = []
        normalize = self._jobs[0].normalize
        longest = 0
        while self._jobs and len(sequences) < self.max_batch_size:
            job = self._jobs[0]
            if job.future.done():  # failed earlier (engine error): its other inputs need no engine time
                self._queued -= len(job.sequences) - job.taken
                self._jobs.popleft()
                continue
            if job.normalize != normalize or (not self.batching and slices):
                break
            start = job.taken
            while job.taken < len(job.sequences) and (len(sequences) < self.max_batch_size or not self.batching):
                seq = job.sequences[job.taken]
                wider = max(longest, len(seq))
                if sequences and self.batching and wider * (len(sequences) + 1) > self.max_batch_tokens:
                    break
                sequences.append(seq)
                longest = wider
                job.taken += 1
            if job.taken > start:
                slices.append((job, start, job.taken))
            if job.taken < len(job.sequences):
                break
            self._jobs.popleft()
        self._queued -= len(sequences)
        return slices, sequences, normalize

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._jobs:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if self.batching and self.max_wait_s > 0 and not self._closing and not self._budget_filled():
                deadline = time.perf_counter() + self.max_wait_s
                while not self._budget_filled() and (remaining := deadline - time.perf_counter()) > 0:
                    self._wakeup.clear()
                    try:
                        await asyncio.wait_for(self._wakeup.wait(), remaining)
                    except asyncio.TimeoutError:
                        break
            slices, sequences, normalize = self._take_batch()
            self.metrics.set("seaembed_queue_inputs", self._queued)
            if sequences:
                await self._execute(loop, slices, sequences, normalize)

    def _run_engine(self, sequences: list[list[int]], normalize: bool | None) -> np.ndarray:
        """Length groups (plan_batches: no input shorter than MIN_FILL of its group's longest) → one engine call each."""
        lengths = [len(s) for s in sequences]
        out = np.empty((len(sequences), self.dim), dtype=np.float32)
        for group in plan_batches(lengths, self.max_batch_size, self.max_batch_tokens, MIN_FILL):
            started = time.perf_counter()
            out[group] = self._embed([sequences[i] for i in group], normalize)
            width = max(lengths[i] for i in group)
            self.metrics.observe("seaembed_inference_duration_seconds", time.perf_counter() - started)
            self.metrics.observe("seaembed_batch_size", len(group))
            self.metrics.observe("seaembed_batch_tokens", len(group) * width)
            self.metrics.inc("seaembed_batch_padding_tokens_total", sum(width - lengths[i] for i in group))
        return out

    async def _execute(self, loop, slices: list[tuple[_Job, int, int]], sequences: list[list[int]], normalize: bool | None) -> None:
        try:
            vectors = await loop.run_in_executor(self._executor, self._run_engine, sequences, normalize)
        except Exception as err:  # the engine failed: fail these requests, keep serving
            for job, _start, _stop in slices:
                if not job.future.done():
                    job.future.set_exception(err)
            return
        offset = 0
        for job, start, stop in slices:
            n = stop - start
            if not job.future.done():  # the client went away, or an earlier batch of this job failed
                job.out[start:stop] = vectors[offset : offset + n]
                job.remaining -= n
                if job.remaining == 0:
                    job.future.set_result(job.out)
            offset += n
