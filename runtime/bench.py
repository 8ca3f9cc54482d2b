"""`seaembed bench`: latency and throughput of a bundle's graphs on fixed-seed workloads.

Workloads (texts built from multilingual words to exact token lengths, fixed seed):
one short query (p50/p99 latency), a mixed-length corpus (8-256 tokens), 512-token passages.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from importlib import resources

WORDS_SOURCE = "data/bench_words.txt"


def _words() -> list[str]:
    text = resources.files("seaembed.runtime").joinpath(WORDS_SOURCE).read_text(encoding="utf-8")
    return text.split()


def text_of_length(tokenizer, n_tokens: int, rng: random.Random, words: list[str]) -> str:
    """A text whose token count (special tokens included) is n_tokens, or as close as words allow."""
    parts: list[str] = []
    while True:
        parts.append(rng.choice(words))
        count = len(tokenizer.encode(" ".join(parts), truncate=True))
        if count >= n_tokens or count >= tokenizer.max_tokens:
            return " ".join(parts)


def workloads(tokenizer, seed: int = 0, corpus_size: int = 256, passages: int = 32, long_mixed: int = 0) -> dict[str, list[str]]:
    """long_mixed > 0 adds "mixed_512": that many texts of 8-512 tokens (drawn after the others, which stay as they were)."""
    rng = random.Random(seed)
    words = _words()
    corpora = {
        "short_query": [text_of_length(tokenizer, 12, rng, words)],
        "mixed_corpus": [text_of_length(tokenizer, rng.randint(8, 256), rng, words) for _ in range(corpus_size)],
        "passages_512": [text_of_length(tokenizer, 512, rng, words) for _ in range(passages)],
    }
    if long_mixed:
        corpora["mixed_512"] = [text_of_length(tokenizer, rng.randint(8, 512), rng, words) for _ in range(long_mixed)]
    return corpora


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]

    return {"p50": pick(50), "p95": pick(95), "p99": pick(99), "mean": statistics.fmean(ordered)}


def measure(encode: Callable[[list[str]], object], texts: dict[str, list[str]], n_tokens: dict[str, int], latency_runs: int = 50, repeat: int = 2) -> dict:
    """encode(list of texts) → anything; returns latency (short query) and throughput (every other corpus in texts)."""
    result: dict = {}
    query = texts["short_query"]
    for _ in range(3):
        encode(query)
    latencies = []
    for _ in range(latency_runs):
        started = time.perf_counter()
        encode(query)
        latencies.append((time.perf_counter() - started) * 1000)
    result["short_query_ms"] = percentiles(latencies)
    for name in (n for n in texts if n != "short_query"):
        encode(texts[name][:4])
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            encode(texts[name])
            best = min(best, time.perf_counter() - started)
        result[name] = {"seconds": best, "texts_per_s": len(texts[name]) / best, "tokens_per_s": n_tokens[name] / best}
    return result


GRID_BATCHES = (1, 8, 64, 256)
GRID_LENGTHS = (16, 128, 512)


def timed_calls(fn: Callable[[], object], min_calls: int = 5, min_seconds: float = 1.0, max_calls: int = 200) -> list[float]:
    """Seconds per call after 3 warm-ups, at least min_calls and min_seconds of calls."""
    for _ in range(3):
        fn()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < min_calls or (time.perf_counter() - started < min_seconds and len(times) < max_calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return times


def grid_inputs(batch: int, seq: int, vocab_size: int, seed: int = 0):
    """Token ids of exactly seq tokens (<s> … </s>), all attended."""
    import numpy as np

    rng = np.random.default_rng(seed)
    ids = rng.integers(5, min(vocab_size, 250000), (batch, seq)).astype(np.int64)
    ids[:, 0], ids[:, -1] = 0, 2
    return ids, np.ones_like(ids)


def grid_cell(embed: Callable, batch: int, seq: int, vocab_size: int) -> dict:
    """tokens/s and per-call p50/p99 of embed(ids, mask) at one batch × length."""
    ids, mask = grid_inputs(batch, seq, vocab_size)
    times = timed_calls(lambda: embed(ids, mask))
    stats = percentiles([t * 1000 for t in times])
    return {"p50_ms": stats["p50"], "p99_ms": stats["p99"], "tokens_per_s": batch * seq / (stats["p50"] / 1000)}
