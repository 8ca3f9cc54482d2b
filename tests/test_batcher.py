"""The dynamic batcher: order, isolation of a failing batch, budgets."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from seaembed.runtime.server.batcher import DynamicBatcher, QueueFull
from seaembed.runtime.server.metrics import server_metrics


def _engine(calls):
    """A stand-in engine (the batcher is under test, not the model): vector = [len, first id]; id 666 fails."""

    def embed(sequences, normalize):
        calls.append([list(s) for s in sequences])
        if any(666 in s for s in sequences):
            raise RuntimeError("engine failure")
        return np.array([[len(s), s[0]] for s in sequences], dtype=np.float32)

    return embed


def test_results_return_to_their_requests_in_order():
    calls = []

    async def run():
        batcher = DynamicBatcher(_engine(calls), 10_000, 64, 0.02, 1000, server_metrics())
        batcher.start()
        jobs = [[[i, 1] * (k + 1) for k in range(i % 4 + 1)] for i in range(20)]
        results = await asyncio.gather(*(batcher.embed(j, None) for j in jobs))
        await batcher.stop()
        return jobs, results

    jobs, results = asyncio.run(run())
    for job, result in zip(jobs, results, strict=True):
        assert result.tolist() == [[len(s), s[0]] for s in job]
    assert len(calls) < 20  # requests were batched together


def test_a_failing_batch_fails_only_its_requests():
    calls = []

    async def run():
        batcher = DynamicBatcher(_engine(calls), 10_000, 1, 0.0, 1000, server_metrics())
        batcher.start()
        outcomes = await asyncio.gather(batcher.embed([[1, 2]], None), batcher.embed([[666]], None), batcher.embed([[3]], None), return_exceptions=True)
        alive = batcher.alive
        await batcher.stop()
        return outcomes, alive

    outcomes, alive = asyncio.run(run())
    assert outcomes[0].tolist() == [[2, 1]] and outcomes[2].tolist() == [[1, 3]]
    assert isinstance(outcomes[1], RuntimeError) and alive


def test_token_budget_limits_each_engine_call():
    calls = []

    async def run():
        batcher = DynamicBatcher(_engine(calls), 40, 64, 0.05, 1000, server_metrics())
        batcher.start()
        await asyncio.gather(*(batcher.embed([[7] * 10], None) for _ in range(12)))
        await batcher.stop()

    asyncio.run(run())
    assert all(len(c) * max(len(s) for s in c) <= 40 for c in calls)


def test_queue_limit_raises_queue_full():
    async def run():
        batcher = DynamicBatcher(_engine([]), 10_000, 64, 0.5, 3, server_metrics())
        batcher.start()
        first = asyncio.create_task(batcher.embed([[1], [2]], None))
        await asyncio.sleep(0)
        with pytest.raises(QueueFull, match="holds at most 3"):
            await batcher.embed([[3], [4]], None)
        await first
        await batcher.stop()

    asyncio.run(run())


def test_waiting_inputs_are_regrouped_by_length():
    """Short and long requests arriving interleaved end up in engine calls of similar lengths,
    and every request still gets its own vectors in its own order."""
    calls = []

    async def run():
        batcher = DynamicBatcher(_engine(calls), 10_000, 4, 0.05, 1000, server_metrics())
        batcher.start()
        jobs = [[[i] * (3 if i % 2 else 30), [i] * (4 if i % 2 else 31)] for i in range(1, 9)]
        results = await asyncio.gather(*(batcher.embed(j, None) for j in jobs))
        await batcher.stop()
        return jobs, results

    jobs, results = asyncio.run(run())
    for job, result in zip(jobs, results, strict=True):
        assert result.tolist() == [[len(s), s[0]] for s in job]
    widths = [max(len(s) for s in c) for c in calls]
    assert all(len(s) >= 0.75 * w for c, w in zip(calls, widths, strict=True) for s in c)  # no 3-token input padded to 30
    assert len(calls) == 4 and all(len(c) == 4 for c in calls)  # 16 inputs in full batches of 4
