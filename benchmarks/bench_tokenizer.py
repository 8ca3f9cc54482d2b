"""Tokenizer throughput: seaembed's pure-Python tokenizer vs Hugging Face `tokenizers` (Rust), same corpus, same run.

Usage: python benchmarks/bench_tokenizer.py [--tokenizer-dir ../shared/xlmr-tokenizer]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import environment, summary, time_runs, write_results  # noqa: E402
from conftest import read_corpus  # noqa: E402

from seaembed.runtime.tokenizer import Tokenizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tokenizer-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "xlmr-tokenizer"))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from transformers import AutoTokenizer

    tokenizer_dir = Path(args.tokenizer_dir)
    reference = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    effective = Path("/tmp/seaembed-bench-tokenizer.json")
    effective.write_text(reference.backend_tokenizer.to_str(), encoding="utf-8")

    load_times = time_runs(lambda: Tokenizer.from_file(effective), repeat=3, warmup=0)
    ours = Tokenizer.from_file(effective)
    corpus = read_corpus() * 20  # 1,200 texts in 11 languages
    n_tokens = sum(len(ours.encode(t)) for t in corpus)
    backend = reference.backend_tokenizer

    def run_ours_cold():
        for text in corpus:
            ours.model._cache.clear()  # every word segmented afresh: the worst case
            ours.encode(text)

    def run_ours_warm():
        for text in corpus:
            ours.encode(text)

    def run_rust_single_thread():
        for text in corpus:
            backend.encode(text)

    rows = {}
    for name, fn in (("seaembed (word cache cleared per text)", run_ours_cold), ("seaembed (warm word cache)", run_ours_warm), ("tokenizers, one text at a time", run_rust_single_thread)):
        s = summary(time_runs(fn, repeat=args.repeat))
        rows[name] = {"seconds": s["median"], "tokens_per_s": n_tokens / s["median"]}
    long_text = "ภาษาไทยเป็นภาษาที่สวยงาม" * 4200
    def run_long():
        ours.model._cache.clear()
        ours.encode(long_text)

    long_s = summary(time_runs(run_long, repeat=args.repeat))["median"]
    baseline = rows["tokenizers, one text at a time"]["tokens_per_s"]
    payload = {
        "benchmark": "tokenizer",
        "environment": environment(),
        "vocabulary": str(tokenizer_dir),
        "texts": len(corpus),
        "tokens": n_tokens,
        "load_seconds_median": summary(load_times)["median"],
        "truncated_100k_char_unspaced_thai_seconds": long_s,
        "rows": rows,
        "ratio_vs_tokenizers": {k: v["tokens_per_s"] / baseline for k, v in rows.items()},
    }
    lines = [
        f"# Tokenizer throughput (XLM-R 250,002-piece vocabulary, {len(corpus)} texts, {n_tokens} tokens)",
        "",
        f"Machine: {payload['environment']['cpu']} ({payload['environment']['cores']} cores). Same corpus, same run.",
        "",
        "| tokenizer | tokens/s | ratio vs `tokenizers` |",
        "|---|---:|---:|",
    ]
    for name, row in rows.items():
        lines.append(f"| {name} | {row['tokens_per_s']:,.0f} | {row['tokens_per_s'] / baseline:.2f}× |")
    lines += [
        "",
        f"- Loading the vocabulary: {payload['load_seconds_median'] * 1000:.0f} ms (median of 3).",
        f"- A 100,000-character unspaced Thai text, truncated to 512 tokens: {long_s * 1000:.0f} ms.",
    ]
    json_path, md_path = write_results("tokenizer", payload, "\n".join(lines))
    print("\n".join(lines))
    print(f"\nwrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
