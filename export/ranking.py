"""Ranking a pool like FP32: the third measure of a lossy artifact, beside cosine and recall@1.

Recall@1 over 44 pairs moves in steps of 2.3 points; ranking several hundred passages per
query shows whether an artifact orders results as FP32 does: top-1 agreement (the same best
passage) and overlap@10 (shared members of the two top-10 lists).
"""

from __future__ import annotations

import json
import random
from importlib import resources

import numpy as np

from .quality import rankings


def ranking_pool(distractors: int = 300, seed: int = 0) -> tuple[list[str], list[str]]:
    """(queries, passages): the retrieval and quickstart queries; every real text shipped with the
    package (their answers among them) plus multilingual word-salad distractors.

    No passage contains another, so a flipped top-1 is a disagreement, not a tie between
    near-duplicates.
    """
    data = resources.files("seaembed.export")
    pairs = [json.loads(line) for line in data.joinpath("data/retrieval.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    quickstart = json.loads(data.joinpath("data/quickstart.json").read_text(encoding="utf-8"))
    real = [p["passage"] for p in pairs] + [p["text"] for p in quickstart["passages"]]
    for name in ("calibration.txt", "probes.txt"):
        real += data.joinpath(f"data/{name}").read_text(encoding="utf-8").splitlines()
    real = list(dict.fromkeys(t for t in real if len(t.strip()) >= 12))
    words = resources.files("seaembed.runtime").joinpath("data/bench_words.txt").read_text(encoding="utf-8").split()
    rng = random.Random(seed)
    salad = [" ".join(rng.choices(words, k=rng.randint(8, 40))) for _ in range(distractors)]
    queries = [p["query"] for p in pairs] + [q["text"] if isinstance(q, dict) else q for q in quickstart["queries"]]
    return queries, real + salad


def ranking_agreement(ref_queries: np.ndarray, ref_passages: np.ndarray, queries: np.ndarray, passages: np.ndarray, k: int = 10) -> dict:
    """How closely the candidate's rankings follow the reference's, query by query."""
    ref, got = rankings(ref_queries, ref_passages), rankings(queries, passages)
    overlap = [len(set(a[:k]) & set(b[:k])) / k for a, b in zip(ref, got, strict=True)]
    return {
        "queries": len(ref),
        "passages": ref.shape[1],
        "top1_agreement": float(np.mean(ref[:, 0] == got[:, 0])),
        f"overlap_at_{k}": float(np.mean(overlap)),
        f"min_overlap_at_{k}": float(np.min(overlap)),
    }
