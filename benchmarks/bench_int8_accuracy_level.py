"""Which ONNX Runtime accuracy level the dynamic INT8 graph's 8-bit MatMulNBits should run at.

The compact export stores the float FFN down projections of `onnx-int8-dynamic` as int8 behind
DequantizeLinear; ONNX Runtime fuses each pair into MatMulNBits and computes it at the session's
`session.qdq_matmulnbits_accuracy_level` (default 4: activations quantised to int8 per block; 1:
FP32). This times one 16 × 128-token batch through the graph before the compact pass (float FFN down
weights) and after it at levels 4, 2 and 1, in one process, rounds interleaved, and reports the
cosine of each against "before".

Needs the bundles `benchmarks/bench_edge.py --model xlmr-large` builds (or pass --before/--after):
    flock /tmp/seaembed-cpu.lock .venv/bin/python benchmarks/bench_int8_accuracy_level.py
Writes benchmarks/results/int8_accuracy_level.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_line, environment, write_results  # noqa: E402

CACHE = Path.home() / ".cache" / "seaembed" / "bench"
GRAPH = "model.int8.dynamic.onnx"


def session(path: Path, threads: int, level: int | None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.log_severity_level = 3
    if level is not None:
        options.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", str(level))
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", type=Path, default=CACHE / "edge-xlmr-large-before")
    parser.add_argument("--after", type=Path, default=CACHE / "edge-xlmr-large-after")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    from seaembed.runtime.cpus import available_cpus

    threads = min(args.threads, available_cpus())
    rng = np.random.default_rng(0)
    input_ids = rng.integers(5, 250_000, size=(16, 128)).astype(np.int64)
    input_ids[:, 0], input_ids[:, -1] = 0, 2
    feed = {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}
    configs = {
        "before (float FFN down, FP32 GEMM)": (args.before / GRAPH, None),
        "after, level 4 (ORT default)": (args.after / GRAPH, 4),
        "after, level 2": (args.after / GRAPH, 2),
        "after, level 1 (FP32 compute)": (args.after / GRAPH, 1),
    }
    sessions = {name: session(path, threads, level) for name, (path, level) in configs.items()}
    vectors = {name: s.run(["sentence_embedding"], feed)[0] for name, s in sessions.items()}  # also the warm-up
    seconds: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(args.rounds):
        for name, s in sessions.items():
            start = time.perf_counter()
            s.run(["sentence_embedding"], feed)
            seconds[name].append(time.perf_counter() - start)

    env = environment()
    reference = next(iter(sessions))
    rows = []
    for name in sessions:
        median = float(np.median(seconds[name]))
        rows.append({
            "config": name,
            "median_s": median,
            "runs_s": seconds[name],
            "x_before": float(np.median(seconds[reference])) / median,
            "min_cos_vs_before": float(np.min(np.sum(vectors[name] * vectors[reference], axis=1))),
        })
    lines = [
        "# Dynamic INT8: MatMulNBits accuracy level (XLM-R-large shape, random weights)",
        "",
        f"CPU: {cpu_line(env)}; {threads} threads; onnxruntime {env['versions'].get('onnxruntime')}.",
        f"One 16 × 128-token batch, median of {args.rounds} rounds, configurations interleaved in one process.",
        "",
        "| graph / accuracy level | median s | speed × before | min cos vs before |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r['config']} | {r['median_s']:.3f} | {r['x_before']:.2f} | {r['min_cos_vs_before']:.5f} |" for r in rows]
    json_path, md_path = write_results("int8_accuracy_level", {"environment": env, "threads": threads, "rows": rows}, "\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
