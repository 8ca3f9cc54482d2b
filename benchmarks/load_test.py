"""Bounded HTTP load test: dynamic batching vs one request per engine call, same bundle, same run.

32 concurrent clients × 100 requests of 1-8 mixed-length inputs against a server on
loopback. Every response is checked against Embedder.encode for its own inputs (no
cross-talk). Writes benchmarks/results/load_test.{json,md,png}.

Usage: python benchmarks/load_test.py BUNDLE [--clients 32] [--requests 100]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import RESULTS, environment, write_results  # noqa: E402
from conftest import read_corpus  # noqa: E402
from server_process import ServerProcess  # noqa: E402

from seaembed.runtime import Embedder  # noqa: E402
from seaembed.runtime.bench import percentiles  # noqa: E402


def text_pool(size: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    corpus = [t for t in read_corpus() if t.strip()]
    pool = []
    for i in range(size):
        parts = rng.integers(1, 6)
        pool.append(" ".join(corpus[int(j)] for j in rng.integers(0, len(corpus), parts)) + f" #{i}")
    return pool


async def drive(url: str, plan: list[list[list[int]]], pool: list[str], expected: np.ndarray) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    mismatches = 0

    async def client(requests: list[list[int]]):
        nonlocal mismatches
        async with httpx.AsyncClient(timeout=120) as http:
            for indices in requests:
                started = time.perf_counter()
                response = await http.post(url + "/embed", json={"inputs": [pool[i] for i in indices], "truncate": True})
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                got = np.asarray(response.json(), dtype=np.float32)
                if got.shape != (len(indices), expected.shape[1]) or np.max(np.abs(got - expected[indices])) > 1e-4:
                    mismatches += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(r) for r in plan))
    wall = time.perf_counter() - started
    n_inputs = sum(len(r) for c in plan for r in c)
    return {
        "requests": len(latencies),
        "inputs": n_inputs,
        "errors": len(errors),
        "error_examples": errors[:3],
        "cross_talk_mismatches": mismatches,
        "wall_seconds": wall,
        "requests_per_s": len(latencies) / wall,
        "inputs_per_s": n_inputs / wall,
        "latency_ms": {int(k[1:]): v * 1000 for k, v in percentiles(latencies).items() if k != "mean"},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("bundle")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="inference threads of the server")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    pool = text_pool(256, args.seed)
    embedder = Embedder.load(args.bundle)
    expected = embedder.encode(pool, batch_size=32)
    plan = [[list(rng.integers(0, len(pool), int(rng.integers(1, 9)))) for _ in range(args.requests)] for _ in range(args.clients)]
    plan = [[[int(i) for i in r] for r in c] for c in plan]

    results = {}
    for mode, flags in (("dynamic batching", ["--batching", "true"]), ("one request per engine call", ["--batching", "false"])):
        server = ServerProcess(args.bundle, *flags, "--max-client-batch-size", "64", "--threads", str(args.threads))
        try:
            results[mode] = asyncio.run(drive(server.url, plan, pool, expected))
        finally:
            server.stop()
        print(mode, results[mode])

    base = results["one request per engine call"]
    ours = results["dynamic batching"]
    payload = {
        "benchmark": "load_test",
        "environment": environment(),
        "bundle": embedder.manifest.model_name,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "inputs_per_request": "1-8, texts of 1-5 corpus lines",
        "results": results,
        "throughput_ratio": ours["inputs_per_s"] / base["inputs_per_s"],
    }
    lines = [
        f"# Load test: {args.clients} clients × {args.requests} requests ({embedder.manifest.model_name}, CPU)",
        "",
        f"Machine: {payload['environment']['cpu']} ({payload['environment']['cores']} cores); server and clients on one machine, loopback.",
        "",
        "| server | requests | errors | cross-talk | inputs/s | p50 ms | p95 ms | p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode, r in results.items():
        lat = r["latency_ms"]
        lines.append(f"| {mode} | {r['requests']} | {r['errors']} | {r['cross_talk_mismatches']} | {r['inputs_per_s']:.1f} | {lat[50]:.0f} | {lat[95]:.0f} | {lat[99]:.0f} |")
    lines += ["", f"Dynamic batching: **{payload['throughput_ratio']:.2f}×** the throughput of one request per engine call."]
    write_results("load_test", payload, "\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
        modes = list(results)
        axes[0].bar(modes, [results[m]["inputs_per_s"] for m in modes], color=["tab:green", "tab:gray"])
        axes[0].set_ylabel("inputs / s")
        for q, offset in ((50, -0.2), (99, 0.2)):
            axes[1].bar([i + offset for i in range(len(modes))], [results[m]["latency_ms"][q] for m in modes], width=0.4, label=f"p{q}")
        axes[1].set_xticks(range(len(modes)), modes)
        axes[1].set_ylabel("latency (ms)")
        axes[1].legend()
        for ax in axes:
            ax.tick_params(axis="x", labelsize=8)
        fig.suptitle(f"{args.clients} concurrent clients, {embedder.manifest.model_name}")
        fig.tight_layout()
        fig.savefig(RESULTS / "load_test.png", dpi=110)
    except ModuleNotFoundError:
        pass
    print("\n".join(lines))


if __name__ == "__main__":
    main()
