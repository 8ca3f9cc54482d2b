"""`seaembed verify`: a bundle, run by the runtime, against sentence-transformers on the same texts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .parity import compare, probe_texts

# What "equal" means per precision, for the whole pipeline (tokenizer + graph + pooling).
VERIFY_GATES = {"fp32": (1e-4, 0.99999), "fp16": (1e-2, 0.9999), "int8": (None, 0.97)}


@dataclass
class VerifyRow:
    prompt: str
    batch_size: int
    n: int
    token_mismatches: int
    max_abs_diff: float
    min_cosine: float
    passed: bool


def verify_bundle(bundle_dir, reference: str, backend: str = "cpu", precision: str | None = None, texts=None, artifact: str | None = None) -> tuple[list[VerifyRow], dict]:
    import transformers
    from sentence_transformers import SentenceTransformer

    from seaembed.runtime import Embedder

    transformers.logging.set_verbosity_error()
    embedder = Embedder.load(bundle_dir, backend=backend, precision=precision, artifact=artifact)
    model = SentenceTransformer(reference, device="cpu")
    texts = list(texts or probe_texts())
    max_diff, min_cos = VERIFY_GATES.get(embedder.backend.artifact.precision, (None, 0.99))
    rows = []
    ref_tokenizer = model.tokenizer
    for prompt_name in [None, *sorted(embedder.prompts)]:
        prompt = embedder.prompts.get(prompt_name, "") if prompt_name else ""
        expected_ids = ref_tokenizer([prompt + t for t in texts], truncation=True, max_length=model.max_seq_length)["input_ids"]
        got_ids = [embedder.tokenizer.encode(t, prompt_name=prompt_name) for t in texts]
        mismatches = sum(1 for a, b in zip(expected_ids, got_ids, strict=True) if list(a) != b)
        for batch_size in (1, 3, 17):
            expected = model.encode(texts, prompt_name=prompt_name, batch_size=batch_size, convert_to_numpy=True)
            got = embedder.encode(texts, prompt_name=prompt_name, batch_size=batch_size)
            stats = compare(np.asarray(expected), got)
            passed = (
                mismatches == 0
                and stats["finite"]
                and stats["min_cosine"] >= min_cos
                and (max_diff is None or stats["max_abs_diff"] <= max_diff)
            )
            rows.append(
                VerifyRow(prompt_name or "-", batch_size, len(texts), mismatches, stats["max_abs_diff"], stats["min_cosine"], passed)
            )
    gate = {"max_abs_diff": max_diff, "min_cosine": min_cos, "precision": embedder.backend.artifact.precision}
    return rows, gate


def format_table(rows: list[VerifyRow], gate: dict) -> str:
    lines = [
        f"gate ({gate['precision']}): max|diff| <= {gate['max_abs_diff']}, min cosine >= {gate['min_cosine']}, token ids identical",
        f"{'prompt':8s} {'batch':>5s} {'texts':>5s} {'id diffs':>8s} {'max|diff|':>10s} {'min cosine':>12s}  result",
    ]
    for r in rows:
        lines.append(
            f"{r.prompt:8s} {r.batch_size:5d} {r.n:5d} {r.token_mismatches:8d} {r.max_abs_diff:10.2e} {r.min_cosine:12.9f}  {'PASS' if r.passed else 'FAIL'}"
        )
    return "\n".join(lines)
