"""Compare one run of the micro benchmarks with this CPU kind's baseline; exit 1 on a regression.

A guarded benchmark regresses when its median is above baseline × (1 + band), the band being the
one measured when the baseline was recorded (record.py). `tokenizers` rows are the reference: not
gated, they give the same-run ratios and show how fast the machine itself is now versus then.
Without a baseline for this CPU kind it says how to record one and exits 0: recording is a
deliberate act on a quiet machine, never a side effect of a check (which might record a slow tree).
Usage: python benchmarks/micro/check.py RUN.json   (written by pytest --benchmark-json)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from baseline import BASELINES, REPO, RUNS, Measured, ratios, read_run


def duration(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} µs"


def implementation_note(then: dict, now: dict) -> str:
    """Names the tokenizer implementation when it is not the one the baseline ran (SEAEMBED_TOKENIZER=python)."""
    if then.get("implementation") == now.get("implementation"):
        return ""
    return f" (tokenizer implementation {now.get('implementation')}; baseline {then.get('implementation')})"


def ratio_lines(now: dict[str, Measured], base: dict[str, Measured]) -> list[str]:
    then = ratios(base)
    lines = []
    for group, by_name in ratios(now).items():
        for name, ratio in by_name.items():
            before = then.get(group, {}).get(name)
            was = f" (baseline {before:.1f}×)" if before else ""
            lines.append(f"- {group}: {name} is {ratio:.1f}× as fast as `tokenizers`{was}")
    return lines


def compare(run_path: str, baselines: Path = BASELINES, report_dir: Path = RUNS) -> int:
    run = read_run(run_path)
    path = Path(baselines) / f"{run.cpu_kind}.json"
    env = f"SEAEMBED_TOKENIZER={run.tokenizer_env}" if run.tokenizer_env else "SEAEMBED_TOKENIZER unset"
    load = f"load average {run.load_average[0]:.1f}" if run.load_average else "load average unknown"
    if not path.exists():
        print(f"bench-check: no baseline for this CPU kind ({run.cpu_kind}): nothing to compare with, so nothing fails.")
        print(f"  Record one on a quiet machine with `make bench-baseline` (5 runs of the suite, ~3 minutes on 2 cores); it writes {path.relative_to(REPO) if path.is_relative_to(REPO) else path}.")
        return 0
    baseline = json.loads(path.read_text())
    base = {
        name: Measured(name, entry["group"], entry["role"], entry["median_s"], entry.get("extra", {}))
        for name, entry in baseline["benchmarks"].items()
    }
    lines = [
        f"# Micro benchmarks vs the {run.cpu_kind} baseline",
        "",
        f"Baseline: {baseline['recorded']} at {baseline.get('commit')}, {baseline['runs']} runs, band = max({baseline['floor']:.0%}, "
        f"{baseline['k']} × spread of the run medians); recorded under load averages {baseline.get('load_average_1min_per_run')}. "
        f"{baseline.get('note', '')}".rstrip(),
        f"This run: {load}; {env}.",
        "",
        "| benchmark | baseline | now | change | band | verdict |",
        "|---|---:|---:|---:|---:|---|",
    ]
    regressions = []
    for name, entry in baseline["benchmarks"].items():
        measured = run.benchmarks.get(name)
        if measured is None:
            regressions.append(f"MISSING {name}: in the baseline, not in this run (skipped or renamed; re-record if renamed)")
            continue
        change = measured.median_s / entry["median_s"] - 1
        if entry["role"] == "reference":
            verdict = "reference (not gated)"
        elif change > entry["band"]:
            verdict = "REGRESSION"
            regressions.append(
                f"REGRESSION {name}: baseline {duration(entry['median_s'])}, now {duration(measured.median_s)} "
                f"({change:+.0%}), band +{entry['band']:.0%}{implementation_note(entry.get('extra', {}), measured.extra)}"
            )
        else:
            verdict = "ok"
        lines.append(f"| {name} | {duration(entry['median_s'])} | {duration(measured.median_s)} | {change:+.0%} | +{entry['band']:.0%} | {verdict} |")
    new = sorted(set(run.benchmarks) - set(baseline["benchmarks"]))
    if new:
        lines += ["", f"Not in the baseline (not gated until it is re-recorded): {', '.join(new)}"]
    lines += ["", "Same-run ratios (reference median / seaembed median):", *ratio_lines(run.benchmarks, base)]
    report = "\n".join(lines)
    print(report)
    Path(report_dir).mkdir(parents=True, exist_ok=True)
    (Path(report_dir) / "last-check.md").write_text(report + "\n" + "\n".join(regressions) + "\n")
    if regressions:
        print()
        print("\n".join(regressions))
        return 1
    print(f"\nbench-check: {sum(e['role'] != 'reference' for e in baseline['benchmarks'].values())} guarded benchmarks within their bands.")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="the --benchmark-json file of the run to check")
    parser.add_argument("--baselines", type=Path, default=BASELINES, help="folder of <cpu kind>.json baselines")
    parser.add_argument("--report-dir", type=Path, default=RUNS, help="where last-check.md is written")
    args = parser.parse_args()
    return compare(args.run, args.baselines, args.report_dir)


if __name__ == "__main__":
    sys.exit(main())
