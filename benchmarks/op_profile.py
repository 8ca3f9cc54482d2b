"""Where an INT8 graph's time goes: per-operator shares from ONNX Runtime's profiler and OpenVINO's perf counters.

For every operator kind: milliseconds per call of the whole graph, its share, and for the matrix
multiplies the multiply-accumulates they did (from the shapes the profiler records), so the int8 GEMMs'
achieved ops/s can be set against the CPU's int8 peak (benchmarks/int8_peak.py).
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

# ORT operators that multiply int8 matrices: their time is int8 GEMM time (with the activation quantisation
# DynamicQuantizeMatMul does inside, part of what an int8 GEMM costs here). MatMulNBits (8-bit weights) is one
# at accuracy level 4, the level the runtime sets: it quantises activations per block of 32 and multiplies int8.
# QAttention is reported on its own row: its time also holds the float attention (Q·K, softmax, P·V).
ORT_INT8_GEMMS = ("MatMulInteger", "DynamicQuantizeMatMul", "MatMulIntegerToFloat", "QGemm", "QLinearMatMul", "MatMulNBits")
ORT_FLOAT_GEMMS = ("MatMul", "FusedMatMul", "Gemm")
OPENVINO_INT8_GEMM = "FullyConnected int8"  # OpenVINO's FullyConnected layers on an int8 kernel


def synthetic_batch(batch: int, tokens: int, vocab: int = 1000) -> dict[str, np.ndarray]:
    """batch × tokens ids, no padding: the GEMM shapes of a full batch (values do not change int8 speed)."""
    rng = np.random.default_rng(0)
    ids = rng.integers(5, vocab, size=(batch, tokens), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 0, 2
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def _shapes(event: dict, key: str) -> list[list[int]]:
    return [next(iter(s.values())) for s in event.get("args", {}).get(key, [])]


def _matmul_macs(op: str, inputs: list[list[int]], outputs: list[list[int]]) -> int:
    """Multiply-accumulates of one matrix-multiply node from the shapes ORT records (it leaves out constant
    weights): rows(A) × K × N, N read from the output."""
    if not inputs or not outputs or not inputs[0] or not outputs[0]:
        return 0
    a, out = inputs[0], outputs[0]
    if op == "QAttention":  # its int8 part: input [B, S, H] × the packed QKV weight [H, 3H]
        return math.prod(a) * 3 * a[-1]
    return math.prod(a) * out[-1]


def ort_profile(graph: Path, feeds: dict[str, np.ndarray], session_options, runs: int = 5, warmup: int = 2) -> dict:
    """{op_type: {ms, share, calls, macs}} per graph run, measured over `runs` runs after `warmup`."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        session_options.enable_profiling = True
        session_options.profile_file_prefix = str(Path(tmp) / "ort")
        session = ort.InferenceSession(str(graph), session_options, providers=["CPUExecutionProvider"])
        for _ in range(warmup + runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    run_windows = sorted((e["ts"], e["ts"] + e["dur"]) for e in events if e.get("cat") == "Session" and e["name"] == "model_run")[warmup:]
    start = run_windows[0][0]
    per_op: dict[str, dict] = defaultdict(lambda: {"us": 0.0, "calls": 0, "macs": 0})
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < start:
            continue
        op = e["args"]["op_name"]
        row = per_op[op]
        row["us"] += e["dur"]
        row["calls"] += 1
        if op in ORT_INT8_GEMMS + ORT_FLOAT_GEMMS + ("QAttention", "Attention"):
            row["macs"] += _matmul_macs(op, _shapes(e, "input_type_shape"), _shapes(e, "output_type_shape"))
    wall_us = sum(end - begin for begin, end in run_windows)
    return _table({op: dict(r, us=r["us"] / runs, calls=r["calls"] // runs, macs=r["macs"] // runs) for op, r in per_op.items()}, wall_us / runs)


def openvino_profile(compiled, feeds: dict[str, np.ndarray], runs: int = 5, warmup: int = 2) -> dict:
    """The same table from OpenVINO's perf counters (compiled with PERF_COUNT on); keyed by layer type, with
    FullyConnected layers whose kernel is an int8 one (exec type `*_I8`/`*_u8`) on a row of their own,
    `FullyConnected int8`, their multiply-accumulates read from the runtime graph's shapes at these feeds."""
    import time

    request = compiled.create_infer_request()
    for _ in range(warmup):
        request.infer(feeds)
    macs = _fully_connected_macs(compiled)
    per_op: dict[str, dict] = defaultdict(lambda: {"us": 0.0, "calls": 0, "macs": 0, "kernels": set()})
    wall = 0.0
    for _ in range(runs):
        started = time.perf_counter()
        request.infer(feeds)
        wall += time.perf_counter() - started
        for info in request.profiling_info:
            if info.status.name != "EXECUTED":
                continue
            op = info.node_type
            if op.startswith("FullyConnected") and any(t in info.exec_type.lower() for t in ("i8", "u8")):
                op = OPENVINO_INT8_GEMM
            row = per_op[op]
            row["us"] += info.real_time.total_seconds() * 1e6
            row["calls"] += 1
            row["macs"] += macs.get(info.node_name, 0)
            row["kernels"].add(info.exec_type)
    table = {op: {"us": r["us"] / runs, "calls": r["calls"] // runs, "macs": r["macs"] // runs, "kernels": sorted(r["kernels"])} for op, r in per_op.items()}
    return _table(table, wall * 1e6 / runs)


def _fully_connected_macs(compiled) -> dict[str, int]:
    """rows(A) × K × N per FullyConnected layer of the compiled graph, by layer name."""
    out = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        if not str(op.get_rt_info()["layerType"].astype(str)).startswith("FullyConnected"):
            continue
        a, y = op.input(0).get_partial_shape(), op.get_output_partial_shape(0)
        if a.is_static and y.is_static:
            out[op.get_friendly_name()] = math.prod(d.get_length() for d in a) * y[len(y) - 1].get_length()
    return out


def _table(per_op: dict[str, dict], wall_us: float) -> dict:
    total = sum(r["us"] for r in per_op.values()) or 1.0
    ops = {op: dict(r, ms=r["us"] / 1000, share=r["us"] / total) for op, r in sorted(per_op.items(), key=lambda kv: -kv[1]["us"])}
    for r in ops.values():
        r.pop("us")
    return {"wall_ms": wall_us / 1000, "op_ms": total / 1000, "ops": ops}


def int8_gemm_rate(profile: dict) -> dict:
    """Achieved int8 ops/s of the integer GEMM operators (2 ops per multiply-accumulate)."""
    rows = [r for op, r in profile["ops"].items() if op in (*ORT_INT8_GEMMS, OPENVINO_INT8_GEMM)]
    ms, macs = sum(r["ms"] for r in rows), sum(r["macs"] for r in rows)
    return {"ms": ms, "macs": macs, "ops_per_s": 2 * macs / (ms / 1000) if ms else None}


def markdown(title: str, profile: dict, peak: dict | None = None, top: int = 12) -> list[str]:
    lines = [f"### {title}", "", f"graph run {profile['wall_ms']:.1f} ms, operators {profile['op_ms']:.1f} ms", "", "| operator | ms/run | share | calls | int8/float GOPS |", "|---|---:|---:|---:|---:|"]
    for op, r in list(profile["ops"].items())[:top]:
        rate = f"{2 * r['macs'] / (r['ms'] / 1000) / 1e9:.0f}" if r.get("macs") and r["ms"] else ""
        lines.append(f"| {op} | {r['ms']:.2f} | {100 * r['share']:.1f} % | {r['calls']} | {rate} |")
    rate = int8_gemm_rate(profile)
    if rate["ops_per_s"] and peak and peak.get("peak_ops_per_s"):
        lines += ["", f"int8 GEMM operators: {rate['ops_per_s'] / 1e9:.0f} GOPS = **{100 * rate['ops_per_s'] / peak['peak_ops_per_s']:.0f} % of the int8 peak** ({peak['peak_ops_per_s'] / 1e9:.0f} GOPS)"]
    return lines + [""]
