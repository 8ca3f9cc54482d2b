"""Faults under load: 200 stalled connections and 500 mid-request disconnects beside 32 normal clients.

Two runs of the same normal workload (32 keep-alive clients × --requests requests of 1-`--inputs` inputs,
each response checked against Embedder.encode), each against a fresh server:
  - reference: the normal clients alone;
  - faults: the same, plus 200 connections that send half a request head and then nothing, and
    500 clients spread over the run that send a request (250 whole, 250 with half the body) and
    disconnect before the answer.
Reported: the normal clients' p50/p95/p99 and errors in both runs and the p99 ratio (target ≤ 1.5),
how long the server took to close each stalled connection (target: within --header-timeout-s plus
a second), and what the abandoned requests cost the engine (inputs computed beyond the normal
clients' own; target 0 for those dropped before batching) from /metrics.
Writes benchmarks/results/fault_load_test.{json,md}.

Usage: python benchmarks/fault_load_test.py BUNDLE [--requests 20] [--inputs 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import environment, write_results  # noqa: E402
from load_test import text_pool  # noqa: E402
from server_process import ServerProcess  # noqa: E402

from seaembed.runtime import Embedder  # noqa: E402
from seaembed.runtime.bench import percentiles  # noqa: E402

HEADER_TIMEOUT_S = 5.0


def _metric(text: str, pattern: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{pattern} (\S+)$", text, re.M))


async def normal_clients(url: str, plan, pool, expected) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    mismatches = 0

    async def client(requests):
        nonlocal mismatches
        async with httpx.AsyncClient(timeout=300) as http:
            for indices in requests:
                started = time.perf_counter()
                try:
                    response = await http.post(url + "/embed", json={"inputs": [pool[i] for i in indices], "truncate": True})
                except httpx.HTTPError as err:
                    errors.append(f"{type(err).__name__}: {err}")
                    continue
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
        "mismatches": mismatches,
        "wall_seconds": wall,
        "inputs_per_s": n_inputs / wall,
        "latency_ms": {int(k[1:]): v * 1000 for k, v in percentiles(latencies).items() if k != "mean"},
    }


async def stalled_connection(port: int, closed_after: list[float]) -> None:
    """Half a request head, then silence; records how long until the server closes the connection."""
    opened = time.perf_counter()  # before connecting: the server's deadline starts when it accepts
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /embed HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n")
    await writer.drain()
    try:
        await asyncio.wait_for(reader.read(), HEADER_TIMEOUT_S * 6)
        closed_after.append(time.perf_counter() - opened)
    except (asyncio.TimeoutError, ConnectionError):
        closed_after.append(float("inf"))
    writer.close()


async def disconnecting_client(port: int, body: bytes, whole: bool, delay_s: float, leave_after_s: float) -> None:
    await asyncio.sleep(delay_s)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"POST /embed HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
        writer.write(head + (body if whole else body[: len(body) // 2]))
        await writer.drain()
        await asyncio.sleep(leave_after_s)
        writer.transport.abort()  # RST, as a client that crashed or timed out
    except ConnectionError:
        pass


async def run(url: str, port: int, plan, pool, expected, faults: bool, spread_s: float, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    stalled_closed: list[float] = []
    tasks = []
    if faults:
        tasks += [asyncio.create_task(stalled_connection(port, stalled_closed)) for _ in range(200)]
        for k in range(500):
            indices = rng.integers(0, len(pool), int(rng.integers(1, 9)))
            body = json.dumps({"inputs": [pool[int(i)] + f" (abandoned {k})" for i in indices], "truncate": True}).encode()
            tasks.append(asyncio.create_task(disconnecting_client(port, body, k % 2 == 0, float(rng.uniform(0, spread_s)), float(rng.uniform(0.0, 0.2)))))
    result = await normal_clients(url, plan, pool, expected)
    await asyncio.gather(*tasks)
    if faults:
        closed = np.array(stalled_closed)
        result["stalled"] = {
            "connections": len(closed),
            "closed_within_timeout_plus_1s": int(np.sum(closed <= HEADER_TIMEOUT_S + 1)),
            "max_close_s": float(np.max(closed)),
            "median_close_s": float(np.median(closed)),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=20, help="requests per normal client")
    parser.add_argument("--inputs", type=int, default=1, help="most inputs per normal request (1: the interactive load of issue 23; the abandoned ones carry 1-8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="inference threads of the server")
    parser.add_argument("--rounds", type=int, default=3, help="reference/faults pairs, alternating")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    pool = text_pool(256, args.seed)
    embedder = Embedder.load(args.bundle, threads=args.threads)
    expected = embedder.encode(pool, batch_size=32)
    plan = [[[int(i) for i in rng.integers(0, len(pool), int(rng.integers(1, args.inputs + 1)))] for _ in range(args.requests)] for _ in range(args.clients)]
    flags = ["--threads", str(args.threads), "--header-timeout-s", str(HEADER_TIMEOUT_S), "--body-timeout-s", "10"]

    rounds: list[dict] = []
    spread_s = 10.0
    for round_index in range(args.rounds):  # reference and faults alternate: a busy spell hits both kinds
        results: dict = {}
        for mode in ("reference", "faults"):
            server = ServerProcess(args.bundle, *flags)
            try:
                before = httpx.get(server.url + "/metrics").text
                results[mode] = asyncio.run(run(server.url, server.port, plan, pool, expected, mode == "faults", spread_s, args.seed + 1 + round_index))
                after = httpx.get(server.url + "/metrics").text
            finally:
                server.stop()
            computed = _metric(after, "seaembed_batch_size_sum") - _metric(before, "seaembed_batch_size_sum")
            results[mode]["engine_inputs"] = computed
            results[mode]["engine_inputs_beyond_normal"] = computed - results[mode]["inputs"]
            results[mode]["status_499"] = _metric(after, r'seaembed_requests_total\{endpoint="/embed",status="499"\}')
            ok = _metric(after, r'seaembed_requests_total\{endpoint="/embed",status="200"\}') - _metric(before, r'seaembed_requests_total\{endpoint="/embed",status="200"\}')
            results[mode]["leavers_answered_first"] = ok - results[mode]["requests"]  # a leaver's request finished before it reset
            results[mode]["server_log_tracebacks"] = server.logs().count("Traceback")
            if mode == "reference" and round_index == 0:
                spread_s = max(2.0, results[mode]["wall_seconds"] * 0.8)  # the disconnects arrive while the normal load runs
            print(f"round {round_index + 1} {mode}", json.dumps(results[mode], indent=1))
        results["p99_ratio"] = results["faults"]["latency_ms"][99] / results["reference"]["latency_ms"][99]
        rounds.append(results)

    ratios = [r["p99_ratio"] for r in rounds]
    ratio = float(np.median(ratios))
    payload = {
        "benchmark": "fault_load_test",
        "environment": environment(),
        "bundle": Path(args.bundle).name,
        "clients": args.clients,
        "requests_per_client": args.requests,
        "inputs_per_request": f"1-{args.inputs}",
        "header_timeout_s": HEADER_TIMEOUT_S,
        "rounds": rounds,
        "p99_ratio_faults_vs_reference": {"per_round": ratios, "median": ratio},
    }
    env = payload["environment"]
    lines = [
        f"# Faults under load ({Path(args.bundle).name}, CPU, {args.threads} inference threads)",
        "",
        f"Machine: {env['cpu']} ({env['cores']} cores), server and clients on one machine over loopback; "
        "the machine was shared with other agents' jobs (tests, builds) while this ran, so absolute latencies carry their load.",
        f"Normal load: {args.clients} keep-alive clients × {args.requests} requests of 1-{args.inputs} inputs, every answer checked against `Embedder.encode`. "
        f"Faults: 200 connections sending half a request head then nothing (`--header-timeout-s {HEADER_TIMEOUT_S:g}`), and 500 clients over "
        f"{spread_s:.0f} s sending a request of 1-8 inputs (250 whole, 250 half the body) and resetting the connection within 0.2 s. "
        f"{len(rounds)} rounds, reference and faults alternating, each run on a fresh server.",
        "",
        "| round | run | requests | errors | mismatches | inputs/s | p50 ms | p95 ms | p99 ms | engine inputs beyond the normal clients' | leavers answered before leaving | 499s | stalled closed ≤ timeout + 1 s | tracebacks |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k, results in enumerate(rounds, 1):
        for mode in ("reference", "faults"):
            r = results[mode]
            lat = r["latency_ms"]
            stalled = r.get("stalled")
            closed = f"{stalled['closed_within_timeout_plus_1s']} / {stalled['connections']} (max {stalled['max_close_s']:.2f} s)" if stalled else "—"
            lines.append(
                f"| {k} | {mode} | {r['requests']} | {r['errors']} | {r['mismatches']} | {r['inputs_per_s']:.1f} | {lat[50]:.0f} | {lat[95]:.0f} | {lat[99]:.0f} "
                f"| {r['engine_inputs_beyond_normal']:.0f} | {r['leavers_answered_first']:.0f} | {r['status_499']:.0f} | {closed} | {r['server_log_tracebacks']} |"
            )
    lines += [
        "",
        f"p99 with faults / without, per round: {', '.join(f'{x:.2f}×' for x in ratios)}; median **{ratio:.2f}×** (target ≤ 1.5).",
        "Engine inputs beyond the normal clients' = the leavers' requests that were answered before their client reset, plus those "
        "whose inputs were already in an engine call when the client left (finished, vectors discarded); every other leaver's "
        "inputs were dropped before batching (the 499s).",
    ]
    write_results("fault_load_test", payload, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
