"""Accuracy gates for lossy artifacts (INT8): against PyTorch FP32 on held-out multilingual text.

The evaluation texts are the retrieval set's queries and passages (with the model's E5
prompts), never the calibration set. A miss fails the export; the numbers go in the manifest.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .parity import ParityError, TorchReference, compare
from .quality import load_pairs, recall_at_k
from .ranking import RANKING_GATE, RankingGate, RankingReference, enforce_ranking


@dataclass(frozen=True)
class AccuracyGate:
    min_mean_cosine: float = 0.99
    min_cosine: float = 0.97
    max_recall_drop: float = 0.01  # one point of recall@1


def retrieval_pairs() -> list[dict]:
    return load_pairs(Path(str(resources.files("seaembed.export").joinpath("data/retrieval.jsonl"))))


def _prompt(prompts: dict[str, str], *names: str) -> str | None:
    return next((n for n in names if n in prompts), None)


class AccuracyReference:
    """PyTorch FP32 embeddings of the evaluation set, computed once per export."""

    def __init__(self, torch_model: TorchReference, prompts: dict[str, str]):
        pairs = retrieval_pairs()
        self.query_prompt = _prompt(prompts, "query")
        self.passage_prompt = _prompt(prompts, "passage", "document")
        self.queries = [p["query"] for p in pairs]
        self.passages = [p["passage"] for p in pairs]
        self.query_vectors = torch_model.encode(self.queries, self.query_prompt)
        self.passage_vectors = torch_model.encode(self.passages, self.passage_prompt)
        self.recall = recall_at_k(self.query_vectors, self.passage_vectors)
        self.ranking = RankingReference(torch_model.encode, self.queries, self.query_prompt, self.passage_prompt, pairs)

    def measure(self, embed) -> dict:
        """embed(texts, prompt_name) → vectors, from the candidate artifact."""
        q = embed(self.queries, self.query_prompt)
        p = embed(self.passages, self.passage_prompt)
        stats = compare(np.concatenate([self.query_vectors, self.passage_vectors]), np.concatenate([q, p]))
        stats.update(
            texts=2 * len(self.queries),
            recall_at_1=recall_at_k(q, p),
            reference_recall_at_1=self.recall,
            ranking=self.ranking.measure(embed),
        )
        return stats


# Dynamic int8 picks activation scales per call, so a vector depends on its batch-mates: the
# gate measures every batch size the runtime may use (dynamic artifacts are capped at the largest).
GATE_BATCH_SIZES = (1, 16)


def worst_case(runs: list[dict]) -> dict:
    """Combine measurements at several batch sizes: the worst value of each figure counts."""
    out = dict(runs[0])
    for key in ("mean_cosine", "min_cosine", "recall_at_1"):
        out[key] = min(r[key] for r in runs)
    out["max_abs_diff"] = max(r["max_abs_diff"] for r in runs)
    out["ranking"] = {k: min(r["ranking"][k] for r in runs) if isinstance(v, float) else v for k, v in runs[0]["ranking"].items()}
    out["finite"] = all(r["finite"] for r in runs)
    out["batch_sizes"] = list(GATE_BATCH_SIZES)
    return out


def session_embed(onnx_path: Path, tokenizer, threads: int | None = None, batch_size: int = 16):
    """embed(texts, prompt_name) through ONNX Runtime (as the runtime configures it) and the runtime tokenizer."""
    import onnxruntime as ort

    from seaembed.runtime.backends.onnx_cpu import OnnxCpuBackend
    from seaembed.runtime.batching import pad_batch, plan_batches
    from seaembed.runtime.cpus import available_cpus

    session = ort.InferenceSession(
        str(onnx_path), OnnxCpuBackend.session_options(threads or available_cpus()), providers=["CPUExecutionProvider"]
    )

    def embed(texts: list[str], prompt_name: str | None) -> np.ndarray:
        sequences = [tokenizer.encode(t, prompt_name=prompt_name) for t in texts]
        out = np.empty((len(sequences), session.get_outputs()[0].shape[-1]), dtype=np.float32)
        for batch in plan_batches([len(s) for s in sequences], batch_size):
            input_ids, attention_mask = pad_batch([sequences[i] for i in batch], tokenizer.pad_id)
            out[batch] = session.run(["sentence_embedding"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]
        return out

    return embed


def enforce_accuracy(stats: dict, name: str, gate: AccuracyGate = AccuracyGate(), ranking_gate: RankingGate = RANKING_GATE) -> dict:
    failures = []
    if not stats["finite"]:
        failures.append("output has NaN/Inf")
    if stats["mean_cosine"] < gate.min_mean_cosine:
        failures.append(f"mean cosine {stats['mean_cosine']:.5f} < {gate.min_mean_cosine}")
    if stats["min_cosine"] < gate.min_cosine:
        failures.append(f"min cosine {stats['min_cosine']:.5f} < {gate.min_cosine}")
    drop = stats["reference_recall_at_1"] - stats["recall_at_1"]
    if drop > gate.max_recall_drop + 1e-9:
        failures.append(f"recall@1 {stats['recall_at_1']:.4f} is {drop * 100:.1f} points below FP32's {stats['reference_recall_at_1']:.4f}")
    failures += enforce_ranking(stats["ranking"], ranking_gate)
    gate_json = {
        "min_mean_cosine": gate.min_mean_cosine,
        "min_cosine": gate.min_cosine,
        "max_recall_drop": gate.max_recall_drop,
        "ranking": {"min_top1_agreement": ranking_gate.min_top1_agreement, "min_overlap_at_10": ranking_gate.min_overlap_at_10},
    }
    if failures:
        raise ParityError(f"{name} misses the accuracy gate on {stats['texts']} held-out texts: " + "; ".join(failures))
    return dict(stats, gate=gate_json, passed=True)
