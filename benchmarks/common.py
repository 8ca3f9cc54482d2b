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
    import importlib.metadata as md

    versions = {}
    for package in ("seaembed", "numpy", "onnxruntime", "torch", "transformers", "sentence-transformers", "tokenizers"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "versions": versions}


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
