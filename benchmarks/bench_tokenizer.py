"""Tokenizer throughput, load time and memory: seaembed's compiled core and Python reference vs
Hugging Face `tokenizers` (Rust) and sentencepiece (C++), same texts, same run.

Run it alone, under the CPU lock: `flock /tmp/seaembed-cpu.lock python benchmarks/bench_tokenizer.py`
Usage: python benchmarks/bench_tokenizer.py [--tokenizer-dir ../shared/xlmr-tokenizer] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import environment, summary, time_runs, write_results  # noqa: E402
from conftest import read_corpus  # noqa: E402

from seaembed.runtime.cpus import available_cpus  # noqa: E402
from seaembed.runtime.tokenizer import Tokenizer  # noqa: E402

SEA_SCRIPTS = ((0x0E00, 0x0EFF), (0x1780, 0x17FF), (0x1000, 0x109F))  # Thai, Lao, Khmer, Burmese
ISA_FLAGS = ("sse4_2", "avx", "avx2", "bmi2", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8",
             "asimd", "asimddp", "i8mm", "sve", "sve2")


def isa_flags() -> list[str]:
    from seaembed.runtime.cpus import cpu_features

    present = cpu_features()
    return [f for f in ISA_FLAGS if f in present]


def unique_texts(lines: list[str], count: int, seed: int) -> list[str]:
    """`count` distinct texts spliced from the corpus lines, so no word cache sees a text twice."""
    rng = random.Random(seed)
    texts: set[str] = set()
    while len(texts) < count:
        picked = rng.sample(lines, min(len(lines), rng.randint(1, 3)))
        text = " ".join(picked)
        start = rng.randint(0, max(0, len(text) // 3))
        texts.add(text[start:])
    return sorted(texts)


def sea_only(lines: list[str]) -> list[str]:
    def is_sea(text: str) -> bool:
        letters = [c for c in text if c.isalpha()]
        return bool(letters) and all(any(a <= ord(c) <= b for a, b in SEA_SCRIPTS) for c in letters)

    return [line for line in lines if is_sea(line)]


# -- load time and resident memory, each in a fresh process --------------------------------

LOAD_SCRIPT = r"""
import json, sys, time
def rss_kb(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1])
kind, path, texts_file = sys.argv[1], sys.argv[2], sys.argv[3]
texts = json.load(open(texts_file))
if kind.startswith("seaembed"):
    from seaembed.runtime.tokenizer import Tokenizer
    impl = "python" if kind == "seaembed-python" else "native"
    load = lambda: Tokenizer.from_file(path, implementation=impl)
    run = lambda t: t.encode_batch(texts)
elif kind == "tokenizers":
    from tokenizers import Tokenizer
    load = lambda: Tokenizer.from_file(path)
    run = lambda t: t.encode_batch(texts)
else:
    import sentencepiece
    load = lambda: sentencepiece.SentencePieceProcessor(model_file=path)
    run = lambda t: t.encode(texts)
before = rss_kb("VmRSS")
started = time.perf_counter()
tokenizer = load()
seconds = time.perf_counter() - started
loaded = rss_kb("VmRSS")
run(tokenizer)
print(json.dumps({"load_s": seconds, "rss_before_mb": before / 1024, "rss_loaded_mb": loaded / 1024,
                  "rss_after_encode_mb": rss_kb("VmRSS") / 1024, "peak_mb": rss_kb("VmHWM") / 1024}))
"""


def load_and_memory(kind: str, path: Path, texts: list[str], cache_dir: str) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(texts, handle)
    env = dict(os.environ, SEAEMBED_CACHE_DIR=cache_dir)
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, kind, str(path), handle.name], capture_output=True, text=True, env=env, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    os.unlink(handle.name)
    best = min(runs, key=lambda r: r["load_s"])
    return {**best, "load_s_runs": [r["load_s"] for r in runs]}


# -- throughput --------------------------------------------------------------------------------


def throughput_rows(texts: list[str], native: Tokenizer, python: Tokenizer, backend, spm, repeat: int) -> tuple[dict, int]:
    n_tokens = sum(len(ids) for ids in native.encode_batch(texts))
    cores = available_cpus()

    def per_text(tokenizer, clear):
        def run():
            for text in texts:
                clear()
                tokenizer.encode(text)

        return run

    def batch(tokenizer, threads):
        def run():
            tokenizer.threads = threads
            tokenizer.encode_batch(texts)

        return run

    def padded():
        native.threads = cores
        native.encode_batch_padded(texts)

    def rust_single(clear):
        def run():
            for text in texts:
                if clear:
                    backend.model._clear_cache()
                backend.encode(text)

        return run

    cases = {
        "seaembed native, one text at a time, cold": per_text(native, native.clear_cache),
        "seaembed native, one text at a time, warm": per_text(native, lambda: None),
        "seaembed native encode_batch, 1 thread": batch(native, 1),
        f"seaembed native encode_batch, {cores} threads": batch(native, cores),
        f"seaembed native encode_batch_padded, {cores} threads": padded,
        "seaembed Python reference, cold": per_text(python, python.clear_cache),
        "seaembed Python reference, warm": per_text(python, lambda: None),
        "tokenizers, one text at a time, cold": rust_single(True),
        "tokenizers, one text at a time, warm": rust_single(False),
        f"tokenizers encode_batch, {cores} threads": lambda: backend.encode_batch(texts),
    }
    if spm is not None:
        cases["sentencepiece C++, one text at a time"] = lambda: [spm.encode(t) for t in texts]
        cases[f"sentencepiece C++ batch, {cores} threads"] = lambda: spm.encode(texts, num_threads=cores)
    rows = {}
    for name, fn in cases.items():
        reps = max(2, repeat // 3) if "Python" in name else repeat
        seconds = summary(time_runs(fn, repeat=reps))["median"]
        rows[name] = {"seconds": seconds, "tokens_per_s": n_tokens / seconds}
    native.threads = cores
    return rows, n_tokens


def mismatches(texts: list[str], native: Tokenizer, python: Tokenizer, reference) -> dict:
    expected = reference(texts, truncation=True, max_length=512)["input_ids"]
    return {
        "native": sum(a != b for a, b in zip(native.encode_batch(texts), expected, strict=True)),
        "python": sum(a != b for a, b in zip(python.encode_batch(texts), expected, strict=True)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokenizer-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "xlmr-tokenizer"))
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    from tokenizers import Tokenizer as RustTokenizer
    from transformers import AutoTokenizer

    tokenizer_dir = Path(args.tokenizer_dir)
    reference = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    work = Path(tempfile.mkdtemp(prefix="seaembed-bench-tokenizer-"))
    effective = work / "tokenizer.json"  # what bundles carry: the tokenizer sentence-transformers runs
    effective.write_text(reference.backend_tokenizer.to_str(), encoding="utf-8")
    cache_dir = str(work / "cache")
    os.environ["SEAEMBED_CACHE_DIR"] = cache_dir

    started = time.perf_counter()
    native = Tokenizer.from_file(effective, implementation="native")
    first_load = time.perf_counter() - started
    python = Tokenizer.from_file(effective, implementation="python")
    backend = RustTokenizer.from_file(str(effective))
    spm_model = tokenizer_dir / "sentencepiece.bpe.model"
    try:
        import sentencepiece

        spm = sentencepiece.SentencePieceProcessor(model_file=str(spm_model)) if spm_model.exists() else None
    except ImportError:
        spm = None

    lines = read_corpus()
    corpora = {
        "multilingual": unique_texts(lines, 600, seed=1),
        "thai-lao-khmer-burmese": unique_texts(sea_only(lines), 600, seed=2),
    }
    results = {}
    for name, texts in corpora.items():
        rows, n_tokens = throughput_rows(texts, native, python, backend, spm, args.repeat)
        results[name] = {"texts": len(texts), "tokens": n_tokens, "rows": rows, "mismatches": mismatches(texts, native, python, reference)}

    long_text = ("ภาษาไทยเป็นภาษาที่สวยงาม" * 4200)[:100_000]
    long_ms = {
        "seaembed native": summary(time_runs(lambda: native.encode(long_text), repeat=args.repeat))["median"] * 1000,
        "seaembed Python reference": summary(time_runs(lambda: (python.clear_cache(), python.encode(long_text)), repeat=3))["median"] * 1000,
        "tokenizers (encodes all, then truncates)": summary(time_runs(lambda: backend.encode(long_text), repeat=3))["median"] * 1000,
    }
    sample = corpora["multilingual"]
    memory = {
        "seaembed native": load_and_memory("seaembed-native", effective, sample, cache_dir),
        "seaembed Python reference": load_and_memory("seaembed-python", effective, sample, cache_dir),
        "tokenizers": load_and_memory("tokenizers", effective, sample, cache_dir),
    }
    if spm is not None:
        memory["sentencepiece C++"] = load_and_memory("sentencepiece", spm_model, sample, cache_dir)

    cores = available_cpus()
    targets = {}
    for name, minimum in (("multilingual", 2.0), ("thai-lao-khmer-burmese", 1.5)):
        rows = results[name]["rows"]
        ratio = rows["seaembed native, one text at a time, cold"]["tokens_per_s"] / rows["tokenizers, one text at a time, cold"]["tokens_per_s"]
        targets[f"{name}: native cold ≥ {minimum}× tokenizers cold, one text at a time"] = (ratio, ratio >= minimum)
    rows = results["multilingual"]["rows"]
    scaling = rows[f"seaembed native encode_batch, {cores} threads"]["tokens_per_s"] / rows["seaembed native encode_batch, 1 thread"]["tokens_per_s"]
    versus = rows[f"seaembed native encode_batch, {cores} threads"]["tokens_per_s"] / rows[f"tokenizers encode_batch, {cores} threads"]["tokens_per_s"]
    targets[f"multilingual: encode_batch on {cores} threads ≥ 1.7× its 1-thread rate"] = (scaling, scaling >= 1.7)
    targets[f"multilingual: encode_batch on {cores} threads ≥ 1× tokenizers.encode_batch"] = (versus, versus >= 1.0)
    load = memory["seaembed native"]["load_s"]
    targets["native load ≤ 0.1 s (binary form cached)"] = (load, load <= 0.1)
    native_mb = memory["seaembed native"]["rss_after_encode_mb"] - memory["seaembed native"]["rss_before_mb"]
    rust_mb = memory["tokenizers"]["rss_after_encode_mb"] - memory["tokenizers"]["rss_before_mb"]
    targets["native resident memory ≤ tokenizers' (ratio of MB added by load + encode)"] = (native_mb / rust_mb, native_mb <= rust_mb)
    total_mismatches = sum(sum(r["mismatches"].values()) for r in results.values())
    targets["0 mismatches against AutoTokenizer, both implementations"] = (total_mismatches, total_mismatches == 0)

    env = environment()
    env["isa_flags"] = isa_flags()
    payload = {
        "benchmark": "tokenizer",
        "environment": env,
        "vocabulary": str(tokenizer_dir),
        "native_first_load_seconds_compiling": first_load,
        "corpora": results,
        "truncated_100k_char_unspaced_thai_ms": long_ms,
        "load_and_memory": memory,
        "targets": {k: {"value": v, "met": ok} for k, (v, ok) in targets.items()},
    }
    print(json.dumps(payload["targets"], indent=1, ensure_ascii=False))
    json_path, md_path = write_results("tokenizer", payload, markdown(payload, cores))
    plot(payload, json_path.with_suffix(".png"))
    print(md_path.read_text())
    print(f"wrote {json_path}, {md_path} and {json_path.with_suffix('.png')}")


def markdown(payload: dict, cores: int) -> str:
    env = payload["environment"]
    lines = [
        "# Tokenizer: seaembed's compiled core vs `tokenizers` and sentencepiece",
        "",
        f"Machine: {env['cpu']} ({env['cores']} cores; {cores} available; ISA: {' '.join(env['isa_flags'])}). "
        f"Python {env['python']}, tokenizers {env['versions'].get('tokenizers', '?')}. XLM-R 250,002-piece vocabulary, "
        "the tokenizer sentence-transformers runs. One run; every row measured in it (median of repeats).",
        "",
        "\"cold\": each tool's word cache cleared before every text (the compiled core has none, so cold = warm).",
        "",
    ]
    for name, corpus in payload["corpora"].items():
        rows = corpus["rows"]
        base = rows["tokenizers, one text at a time, cold"]["tokens_per_s"]
        lines += [
            f"## {name}: {corpus['texts']} distinct texts, {corpus['tokens']:,} tokens; mismatches vs AutoTokenizer: "
            f"native {corpus['mismatches']['native']}, Python {corpus['mismatches']['python']}",
            "",
            "| tokenizer | tokens/s | vs `tokenizers` one at a time, cold |",
            "|---|---:|---:|",
        ]
        lines += [f"| {row} | {v['tokens_per_s']:,.0f} | {v['tokens_per_s'] / base:.2f}× |" for row, v in rows.items()]
        lines.append("")
    lines += ["## Load time and resident memory (fresh process each, best of 3 loads)", "",
              "| tokenizer | load | RSS added by load | RSS added by load + encoding 600 texts | peak RSS |", "|---|---:|---:|---:|---:|"]
    for name, m in payload["load_and_memory"].items():
        lines.append(
            f"| {name} | {m['load_s'] * 1000:.0f} ms | {m['rss_loaded_mb'] - m['rss_before_mb']:.0f} MB | "
            f"{m['rss_after_encode_mb'] - m['rss_before_mb']:.0f} MB | {m['peak_mb']:.0f} MB |"
        )
    lines += [
        "",
        f"seaembed native loads the binary form from the cache (memory-mapped); its first load, which parses the JSON and "
        f"compiles that form, took {payload['native_first_load_seconds_compiling']:.2f} s.",
        "",
        "A 100,000-character unspaced Thai text, truncated to 512 tokens: "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in payload["truncated_100k_char_unspaced_thai_ms"].items())
        + ".",
        "",
        "## Targets",
        "",
        "| target | measured | met |",
        "|---|---:|:---:|",
    ]
    for name, t in payload["targets"].items():
        value = t["value"]
        shown = f"{value * 1000:.0f} ms" if name.startswith("native load") else f"{value:.0f}" if "mismatch" in name else f"{value:.2f}×"
        lines.append(f"| {name} | {shown} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines)


def plot(payload: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    corpora = payload["corpora"]
    fig, axes = plt.subplots(1, len(corpora), figsize=(14, 6), sharey=True)
    for ax, (name, corpus) in zip(axes, corpora.items(), strict=True):
        names = list(corpus["rows"])
        values = [corpus["rows"][n]["tokens_per_s"] / 1e6 for n in names]
        colors = ["tab:green" if "native" in n else "tab:olive" if "Python" in n else "tab:blue" if "tokenizers" in n else "tab:gray" for n in names]
        ax.barh(names, values, color=colors)
        ax.set_title(name)
        ax.set_xlabel("million tokens/s")
        ax.invert_yaxis()
    fig.suptitle(f"Tokenizer throughput, {payload['environment']['cpu']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
