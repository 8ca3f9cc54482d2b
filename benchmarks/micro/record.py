"""Record the micro benchmarks' baseline for this CPU kind: K separate runs of the suite; per benchmark
the median of the K run medians, and a noise band = max(floor, k × (max − min) / median) of them.

Record on a quiet tree (the commit the baseline describes) and say in --note what else ran on the
machine: the band is only as honest as the runs it was measured from.
Usage: python benchmarks/micro/record.py [--runs 5] [--k 2.0] [--floor 0.10] [--note TEXT]
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata as md
import json
import os
import subprocess
import sys
import time

from baseline import DEFAULT_FLOOR, DEFAULT_K, DEFAULT_RUNS, REPO, RUNS, band, baseline_path, read_run


def run_suite(json_path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pytest", "benchmarks/micro", f"--benchmark-json={json_path}"]
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)


def versions() -> dict[str, str]:
    found = {}
    for package in ("seaembed", "numpy", "onnxruntime", "tokenizers", "orjson", "pytest-benchmark"):
        try:
            found[package] = md.version(package)
        except md.PackageNotFoundError:
            pass
    return found


def git_commit() -> str | None:
    out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() or None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="separate runs of the suite the band is measured from (at least 3)")
    parser.add_argument("--k", type=float, default=DEFAULT_K, help="band = max(floor, k × relative spread of the run medians)")
    parser.add_argument("--floor", type=float, default=DEFAULT_FLOOR, help="smallest band, as a fraction (0.10 = 10%%)")
    parser.add_argument("--note", default="", help="what else ran on the machine while recording (kept in the baseline)")
    args = parser.parse_args()
    if args.runs < 3:
        parser.error(f"--runs {args.runs}: a spread needs at least 3 runs")
    if os.environ.get("SEAEMBED_TOKENIZER") == "python":
        print("SEAEMBED_TOKENIZER=python is set: a baseline is recorded on the default (compiled) tokenizer; unset it", file=sys.stderr)
        return 2

    started = time.perf_counter()
    runs = []
    for index in range(args.runs):
        path = RUNS / f"record-{index + 1}.json"
        run_suite(path)
        runs.append(read_run(path))
        print(f"run {index + 1}/{args.runs} done ({time.perf_counter() - started:.0f} s, load average {os.getloadavg()[0]:.1f})", flush=True)

    names = sorted(set.intersection(*(set(run.benchmarks) for run in runs)))
    benchmarks = {}
    for name in names:
        medians = [run.benchmarks[name].median_s for run in runs]
        center, spread, width = band(medians, args.k, args.floor)
        first = runs[0].benchmarks[name]
        benchmarks[name] = {
            "group": first.group, "role": first.role, "median_s": center, "run_medians_s": medians,
            "relative_spread": spread, "band": width, "extra": first.extra,
        }
    kind = runs[0].cpu_kind
    from seaembed.runtime.cpus import available_cpus, cpu_isa, cpu_model

    payload = {
        "cpu_kind": kind,
        "cpu": cpu_model(),
        "isa": [flag for flag, present in cpu_isa().items() if present],
        "cpus": available_cpus(),
        "recorded": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": git_commit(),
        "versions": versions(),
        "runs": args.runs,
        "k": args.k,
        "floor": args.floor,
        "load_average_1min_per_run": [round(run.load_average[0], 1) if run.load_average else None for run in runs],
        "note": args.note,
        "seconds": round(time.perf_counter() - started, 1),
        "benchmarks": benchmarks,
    }
    path = baseline_path(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n")
    for name, entry in benchmarks.items():
        print(f"{name:40s} median {entry['median_s'] * 1000:9.3f} ms  spread {entry['relative_spread']:6.1%}  band +{entry['band']:.0%}  ({entry['role']})")
    print(f"wrote {path.relative_to(REPO)} ({args.runs} runs, {payload['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
