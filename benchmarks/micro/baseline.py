"""Reading pytest-benchmark runs and the per-CPU-kind baselines that check.py compares them with."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
BASELINES = HERE / "baselines"
# pytest-benchmark's own storage folder (git-ignored): runs are inputs to a gate, not published results
RUNS = REPO / ".benchmarks" / "micro"
# A benchmark may be this much slower than its baseline however steady the recording runs were.
DEFAULT_FLOOR = 0.10
# The band is this many times the relative spread (max − min) / median of the recording runs' medians.
DEFAULT_K = 2.0
DEFAULT_RUNS = 5


@dataclass(frozen=True)
class Measured:
    name: str
    group: str
    role: str  # "guarded": held to its baseline; "reference": `tokenizers`, for ratios and the machine's speed
    median_s: float
    extra: dict


@dataclass(frozen=True)
class Run:
    cpu_kind: str
    tokenizer_env: str
    load_average: list[float]
    benchmarks: dict[str, Measured]


def read_run(path: Path) -> Run:
    """A --benchmark-json file written by `pytest benchmarks/micro`."""
    data = json.loads(Path(path).read_text())
    info = data["machine_info"]
    benchmarks = {}
    for bench in data["benchmarks"]:
        extra = dict(bench.get("extra_info") or {})
        benchmarks[bench["name"]] = Measured(bench["name"], bench["group"] or "", extra.pop("role", "guarded"), bench["stats"]["median"], extra)
    return Run(info["seaembed_cpu_kind"], info.get("seaembed_tokenizer_env", ""), info.get("load_average", []), benchmarks)


def baseline_path(cpu_kind: str) -> Path:
    return BASELINES / f"{cpu_kind}.json"


def band(run_medians: list[float], k: float, floor: float) -> tuple[float, float, float]:
    """(baseline median, relative spread, band) of one benchmark's medians over the recording runs."""
    center = statistics.median(run_medians)
    spread = (max(run_medians) - min(run_medians)) / center
    return center, spread, max(floor, k * spread)


def ratios(benchmarks: dict[str, Measured]) -> dict[str, dict[str, float]]:
    """Per group with a reference: how many times faster each guarded benchmark is than the reference."""
    out: dict[str, dict[str, float]] = {}
    for ref in benchmarks.values():
        if ref.role != "reference":
            continue
        for other in benchmarks.values():
            if other.group == ref.group and other.role != "reference":
                out.setdefault(ref.group, {})[other.name] = ref.median_s / other.median_s
    return out
