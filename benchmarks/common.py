"""Shared benchmark plumbing: timing, environment capture, JSON + Markdown output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def environment() -> dict:
    """Software versions, the CPU model and its int8/bf16 ISA features (printed in every result)."""
    import importlib.metadata as md

    from seaembed.runtime.cpus import cpu_isa, cpu_model

    versions = {}
    for package in ("seaembed", "numpy", "onnxruntime", "openvino", "nncf", "torch", "transformers", "sentence-transformers", "tokenizers"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    isa = cpu_isa()
    return {"cpu": cpu_model(), "isa": [f for f, on in isa.items() if on], "isa_flags": isa, "cores": os.cpu_count(), "python": platform.python_version(), "versions": versions}


def cpu_line(env: dict) -> str:
    """The CPU and the ISA features that decide int8/bf16 speed (x86 or Arm), for every result's header."""
    from seaembed.runtime.cpus import isa_line

    return f"{env['cpu']} ({isa_line(env.get('isa_flags', {}))})"


def time_runs(fn, repeat: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def summary(values: list[float]) -> dict:
    from seaembed.runtime.bench import percentiles

    return {"median": statistics.median(values), **percentiles(values), "n": len(values)}


def write_results(name: str, payload: dict, markdown: str) -> tuple[Path, Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    json_path = RESULTS / f"{name}.json"
    md_path = RESULTS / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown.rstrip() + "\n")
    return json_path, md_path
