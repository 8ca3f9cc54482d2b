"""Dynamic batching across concurrent requests.

Requests queue their tokenized inputs as one job each; a single worker takes a window of
waiting inputs in arrival order (after at most max_wait for company when the engine is idle),
groups them by length into engine calls within the batch size and token budget, runs them
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

# The batcher takes this many batches' worth of waiting inputs at once and regroups them by length:
# more candidates give fuller, less padded engine calls. Simulated on bench_server.py's workload
# (8-input requests, 17-58 tokens): one batch at a time 11 % padding and 2.7 engine calls per 16
# inputs; a window of 4 batches 9 % and 1.2 calls; FIFO without regrouping 29 % and 1 call.
WINDOW_BATCHES = 4


class QueueFull(RuntimeError):
    """More inputs are waiting than the server accepts; the client should retry later (429)."""


@dataclass
class _Job:
    sequences: list[list[int]]
    normalize: bool | None
    future: asyncio.Future
    out: np.ndarray | None = None  # [inputs, dim] float32, allocated when the first vectors arrive
    taken: int = 0  # inputs handed to the engine so far
    remaining: int = 0  # inputs whose vectors have not arrived yet


# engine(sequences, normalize) → float32 [len(sequences), dim]; one call per length group
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
            return np.empty((0, 0), dtype=np.float32)
        if self._queued + len(sequences) > self.max_queue_inputs:
            raise QueueFull(f"{self._queued} inputs are already waiting and the queue holds at most {self.max_queue_inputs}; retry later")
        future = asyncio.get_running_loop().create_future()
        self._jobs.append(_Job(sequences, normalize, future, None, 0, len(sequences)))
        self._queued += len(sequences)
        self._wakeup.set()
        return await future

    def _budget_filled(self) -> bool:
        if self._queued >= self.max_batch_size:
            return True
        longest = max((len(s) for job in self._jobs for s in job.sequences[job.taken :]), default=0)
        return longest * self._queued >= self.max_batch_tokens

    def _take_window(self) -> tuple[list[tuple[_Job, int]], list[list[int]], bool | None]:
        """Up to WINDOW_BATCHES × max_batch_size inputs in arrival order (no request starves), of one
        `normalize` kind; (owner job and position of each input, sequences, normalize)."""
        owners: list[tuple[_Job, int]] = []
        sequences: list[list[int]] = []
        limit = self.max_batch_size * WINDOW_BATCHES
        normalize = self._jobs[0].normalize
        while self._jobs and len(sequences) < limit:
            job = self._jobs[0]
            if job.future.done():  # failed earlier (engine error): its other inputs need no engine time
                self._queued -= len(job.sequences) - job.taken
                self._jobs.popleft()
                continue
            if job.normalize != normalize or (not self.batching and owners):
                break
            while job.taken < len(job.sequences) and (len(sequences) < limit or not self.batching):
                owners.append((job, job.taken))
                sequences.append(job.sequences[job.taken])
                job.taken += 1
            if job.taken < len(job.sequences):
                break
            self._jobs.popleft()
        self._queued -= len(sequences)
        return owners, sequences, normalize

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
            owners, sequences, normalize = self._take_window()
            self.metrics.set("seaembed_queue_inputs", self._queued)
            if not sequences:
                continue
            try:
                await loop.run_in_executor(self._executor, self._run_engine, loop, owners, sequences, normalize)
            except Exception as err:  # a bug outside the engine call: fail this window, keep serving
                self._fail([job for job, _pos in owners], err)

    def _run_engine(self, loop, owners: list[tuple[_Job, int]], sequences: list[list[int]], normalize: bool | None) -> None:
        """Engine thread: length groups (plan_batches: no input shorter than MIN_FILL of its group's
        longest), one engine call each; vectors go straight into their requests' arrays and each
        group's requests hear about it as soon as it is done."""
        lengths = [len(s) for s in sequences]
        for planned in plan_batches(lengths, self.max_batch_size, self.max_batch_tokens, MIN_FILL):
            # A request whose client left (its future cancelled on the loop) since the window was taken costs
            # no engine time: its inputs leave the group. Reading done() from this thread is a read of one
            # state field; at worst a just-cancelled input is computed and discarded, as before.
            group = [i for i in planned if not owners[i][0].future.done()]
            if not group:
                continue
            jobs = [owners[i][0] for i in group]
            started = time.perf_counter()
            try:
                vectors = self._embed([sequences[i] for i in group], normalize)
            except Exception as err:  # the engine failed: fail these requests, keep serving
                loop.call_soon_threadsafe(self._fail, jobs, err)
                continue
            for k, i in enumerate(group):
                job, position = owners[i]
                if job.out is None:
                    job.out = np.empty((len(job.sequences), vectors.shape[1]), dtype=np.float32)
                job.out[position] = vectors[k]
            loop.call_soon_threadsafe(self._arrived, jobs)
            width = max(lengths[i] for i in group)
            self.metrics.observe("seaembed_inference_duration_seconds", time.perf_counter() - started)
            self.metrics.observe("seaembed_batch_size", len(group))
            self.metrics.observe("seaembed_batch_tokens", len(group) * width)
            self.metrics.inc("seaembed_batch_padding_tokens_total", sum(width - lengths[i] for i in group))

    @staticmethod
    def _arrived(jobs: list[_Job]) -> None:
        for job in jobs:  # one entry per input
            if job.future.done():  # the client went away, or another group of this job failed
                continue
            job.remaining -= 1
            if job.remaining == 0:
                job.future.set_result(job.out)

    @staticmethod
    def _fail(jobs: list[_Job], err: Exception) -> None:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(err)
