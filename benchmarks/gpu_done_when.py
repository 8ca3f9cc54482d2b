"""Issue 22's "Done when" for the default CUDA FP16 path, checked on bench_gpu.py reports of one GPU run.

- "seaembed default" ≥ 1.1× PyTorch FP16 SDPA at every grid shape, ≥ 4× at batch ≤ 8 × ≤ 128 tokens;
- ≥ 1.5× PyTorch on the mixed 8–512-token corpus;
- FP16 parity: min cosine ≥ 0.9999 vs sentence-transformers FP32 on the GPU, finite, in every report
  given (the trained e5-small and the XLM-R-large shape); finite vectors at every grid shape.

python benchmarks/gpu_done_when.py OUT/gpu_defaults_xlmr-large.json OUT/gpu_defaults_e5-small.json [--md OUT/verdict.md]
Exit status 0 when every check passes, 1 otherwise (a missing measurement is a failure).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT = "seaembed default"
REFERENCE = "pytorch_fp16_sdpa"
EVERY_SHAPE = 1.1
SMALL_SHAPE = 4.0  # batch ≤ SMALL_BATCH × ≤ SMALL_TOKENS: the CUDA-graph buckets
SMALL_BATCH, SMALL_TOKENS = 8, 128
MIXED = 1.5
MIN_COSINE = 0.9999


def checks(report: dict, label: str = DEFAULT) -> list[dict]:
    """Every Done-when check one bench_gpu.py report allows: {check, value, needed, passed}."""
    name = report.get("tag") or report.get("gpu", "report")
    out: list[dict] = []

    def add(check: str, value, needed: str, passed: bool) -> None:
        out.append({"check": f"{name}: {check}", "value": value, "needed": needed, "passed": bool(passed)})

    for row in report.get("grid", []):
        shape, cell = f"{row['batch']} × {row['seq']}", row.get(label, {})
        ratio = cell.get("ratio")
        floor = SMALL_SHAPE if row["batch"] <= SMALL_BATCH and row["seq"] <= SMALL_TOKENS else EVERY_SHAPE
        add(f"{shape} × PyTorch", ratio if ratio is not None else cell.get("error", "not measured"), f"≥ {floor}", ratio is not None and ratio >= floor)
        add(f"{shape} finite", cell.get("finite", "not measured"), "True", cell.get("finite") is True)
    if "grid" in report:
        mixed = report.get("mixed", {}).get(label, {})
        ratio = mixed.get("ratio")
        add("mixed corpus × PyTorch", ratio if ratio is not None else mixed.get("error", "not measured"), f"≥ {MIXED}", ratio is not None and ratio >= MIXED)
    parity = {k: v for k, v in report.get("steps", {}).items() if k.startswith("parity_") and k.endswith(f" {label}") and isinstance(v, dict)}
    if not parity:
        add("parity", report.get("steps", {}).get("parity_error", "not measured")[-300:], f"min cosine ≥ {MIN_COSINE}", False)
    for key, stats in parity.items():
        add(f"{key.split(' ')[0]} min cosine", stats["min_cosine"], f"≥ {MIN_COSINE}", stats["min_cosine"] >= MIN_COSINE)
        add(f"{key.split(' ')[0]} finite", stats["finite"], "True", stats["finite"] is True)
    return out


def markdown(results: list[dict]) -> str:
    failed = sum(not r["passed"] for r in results)
    lines = [
        f"# Issue 22 Done-when, default CUDA FP16 path: {'PASS' if not failed else f'FAIL ({failed} of {len(results)} checks)'}",
        "",
        "| check | measured | needed | |",
        "|---|---:|---:|---|",
    ]
    for r in results:
        value = f"{r['value']:.4f}" if isinstance(r["value"], float) else str(r["value"])
        lines.append(f"| {r['check']} | {value} | {r['needed']} | {'pass' if r['passed'] else '**FAIL**'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("reports", nargs="+", help="bench_gpu.py JSON reports of the same run")
    parser.add_argument("--md", help="also write the verdict here")
    args = parser.parse_args(argv)
    results = []
    for path in args.reports:
        try:
            report = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:  # the run died before writing it: nothing it should have measured passed
            results.append({"check": f"{Path(path).stem}: report", "value": f"unreadable ({type(err).__name__})", "needed": "a bench_gpu.py report", "passed": False})
            continue
        report.setdefault("tag", Path(path).stem)
        results += checks(report)
    text = markdown(results)
    print(text)
    if args.md:
        Path(args.md).write_text(text)
    return 0 if results and all(r["passed"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
