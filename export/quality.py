"""Retrieval quality: recall@k and full rankings of passages for queries."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def load_pairs(path: str | Path) -> list[dict]:
    """query→passage pairs (JSON lines with 'query' and 'passage'); passage i is query i's answer."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def rankings(query_vectors: np.ndarray, passage_vectors: np.ndarray) -> np.ndarray:
    """Passage indices per query, best first (stable for ties)."""
    scores = query_vectors.astype(np.float64) @ passage_vectors.astype(np.float64).T
    return np.argsort(-scores, axis=1, kind="stable")


def recall_at_k(query_vectors: np.ndarray, passage_vectors: np.ndarray, k: int = 1) -> float:
    ranked = rankings(query_vectors, passage_vectors)[:, :k]
    hits = [i in ranked[i] for i in range(len(ranked))]
    return float(np.mean(hits))
