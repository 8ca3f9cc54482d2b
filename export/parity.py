"""Export-time parity: the ONNX graph against PyTorch on a fixed multilingual probe set.

Both sides get the same input ids (from the checkpoint's own tokenizer), so this
measures the graph alone. A miss fails the export; the numbers go into the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

# Odd batch sizes so padding and batch-size-dependent kernels are exercised.
PROBE_BATCH_SIZES = (1, 3, 5, 17)


class ParityError(RuntimeError):
    """The exported graph does not reproduce PyTorch within the gate."""


@dataclass(frozen=True)
class ParityGate:
    max_abs_diff: float
    min_cosine: float


GATES = {
    "fp32": ParityGate(max_abs_diff=1e-4, min_cosine=0.99999),
    "fp16": ParityGate(max_abs_diff=5e-3, min_cosine=0.9999),
}


def probe_texts() -> list[str]:
    text = resources.files("seaembed.export").joinpath("data/probes.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def probe_batches() -> list[list[str]]:
    texts = probe_texts()
    batches, start = [], 0
    for size in PROBE_BATCH_SIZES:
        batches.append([texts[(start + i) % len(texts)] for i in range(size)])
        start += size
    return batches


class TorchReference:
    """sentence-transformers' PyTorch model: the reference every artifact is measured against."""

    def __init__(self, model_dir: Path):
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()  # the unused pooler's "MISSING" report is noise here
        transformers.logging.disable_progress_bar()
        self.model = SentenceTransformer(str(model_dir), device="cpu")
        self.model.eval()

    def tokenizer_json(self) -> str:
        """The tokenizer exactly as the reference runs it.

        transformers >= 5 rebuilds XLM-R's pipeline from its tokenizer class rather than
        taking tokenizer.json's normalisers as written, so the file alone is not the truth.
        """
        return self.model.tokenizer.backend_tokenizer.to_str()

    def encode(self, texts: list[str], prompt_name: str | None = None) -> np.ndarray:
        return np.asarray(self.model.encode(texts, prompt_name=prompt_name, batch_size=16, convert_to_numpy=True), dtype=np.float32)

    def run(self, batches: list[list[str]]):
        """(input_ids, attention_mask, sentence embeddings) per batch, from the PyTorch forward pass."""
        import torch

        results = []
        with torch.inference_mode():
            for texts in batches:
                # sentence-transformers >= 6 renamed tokenize() to preprocess()
                features = (self.model.preprocess if hasattr(self.model, "preprocess") else self.model.tokenize)(texts)
                out = self.model.forward(dict(features))
                results.append(
                    (
                        features["input_ids"].numpy().astype(np.int64),
                        features["attention_mask"].numpy().astype(np.int64),
                        out["sentence_embedding"].float().numpy(),
                    )
                )
        return results


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict:
    reference = reference.astype(np.float64)
    candidate = candidate.astype(np.float64)
    cos = np.sum(reference * candidate, axis=1) / (
        np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1) + 1e-30
    )
    return {
        "max_abs_diff": float(np.max(np.abs(reference - candidate))),
        "min_cosine": float(np.min(cos)),
        "mean_cosine": float(np.mean(cos)),
        "finite": bool(np.all(np.isfinite(candidate))),
    }


def _session(onnx_path: Path, optimized: bool, providers: list[str]):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    return ort.InferenceSession(str(onnx_path), options, providers=providers)


def _padded_feed(input_ids: np.ndarray, attention_mask: np.ndarray) -> dict:
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def measure_onnx_parity(
    onnx_path: Path,
    reference,
    providers: tuple[str, ...] = ("CPUExecutionProvider",),
    feed: Callable[[np.ndarray, np.ndarray], dict] = _padded_feed,
) -> dict:
    """Parity of the graph as written and as ONNX Runtime rewrites it (what the runtime runs); the worse counts.

    `feed` turns a padded probe batch into the graph's inputs (a packed graph takes its real tokens only).
    """
    results = {}
    for label, optimized in (("as_written", False), ("ort_optimized", True)):
        session = _session(onnx_path, optimized, list(providers))
        refs, outs = [], []
        for input_ids, attention_mask, expected in reference:
            (got,) = session.run(["sentence_embedding"], feed(input_ids, attention_mask))
            refs.append(expected)
            outs.append(got)
        results[label] = compare(np.concatenate(refs), np.concatenate(outs))
    stats = {
        "max_abs_diff": max(r["max_abs_diff"] for r in results.values()),
        "min_cosine": min(r["min_cosine"] for r in results.values()),
        "mean_cosine": min(r["mean_cosine"] for r in results.values()),
        "finite": all(r["finite"] for r in results.values()),
        "sessions": results,
        "probes": int(sum(len(r[0]) for r in reference)),
        "batch_sizes": list(PROBE_BATCH_SIZES),
        "providers": list(providers),
    }
    return stats


def enforce(stats: dict, precision: str) -> dict:
    gate = GATES[precision]
    stats = dict(stats, gate={"max_abs_diff": gate.max_abs_diff, "min_cosine": gate.min_cosine})
    failures = []
    if not stats["finite"]:
        failures.append("output has NaN/Inf")
    if stats["max_abs_diff"] > gate.max_abs_diff:
        failures.append(f"max |diff| {stats['max_abs_diff']:.3g} > {gate.max_abs_diff:g}")
    if stats["min_cosine"] < gate.min_cosine:
        failures.append(f"min cosine {stats['min_cosine']:.7f} < {gate.min_cosine}")
    if failures:
        raise ParityError(f"{precision} graph fails parity with PyTorch on {stats['probes']} probes: " + "; ".join(failures))
    stats["passed"] = True
    return stats
