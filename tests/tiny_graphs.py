"""Tiny random encoders of both families as (Architecture, weights), for graph-level tests.

No checkpoint, tokenizer or torch: the graph builders take an Architecture and a weight
dict, and graphs built this way are compared with each other (the FP32 graph itself is
held to sentence-transformers by the export tests).
"""

from __future__ import annotations

import numpy as np

from seaembed.export.checkpoint import Architecture


def tiny_architecture(family: str, layers: int = 2, hidden: int = 32, heads: int = 4, ffn: int = 64) -> Architecture:
    xlmr = family == "xlm-roberta"
    return Architecture(
        family=family, layers=layers, hidden=hidden, heads=heads, ffn=ffn, vocab_size=97,
        max_position_embeddings=514 if xlmr else 512, position_offset=2 if xlmr else 0,
        pad_id=1 if xlmr else 0, type_vocab_size=1 if xlmr else 2, layer_norm_eps=1e-5 if xlmr else 1e-12, hidden_act="gelu",
    )


def tiny_weights(arch: Architecture, seed: int = 0, scale: float = 0.2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    h, f = arch.hidden, arch.ffn
    w = {
        "embeddings.word_embeddings.weight": normal(arch.vocab_size, h),
        "embeddings.position_embeddings.weight": normal(arch.max_position_embeddings, h),
        "embeddings.token_type_embeddings.weight": normal(arch.type_vocab_size, h),
        "embeddings.LayerNorm.weight": 1 + normal(h),
        "embeddings.LayerNorm.bias": normal(h),
    }
    for layer in range(arch.layers):
        p = f"encoder.layer.{layer}"
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            w[f"{p}.{name}.weight"], w[f"{p}.{name}.bias"] = normal(h, h), normal(h)
        w[f"{p}.intermediate.dense.weight"], w[f"{p}.intermediate.dense.bias"] = normal(f, h), normal(f)
        w[f"{p}.output.dense.weight"], w[f"{p}.output.dense.bias"] = normal(h, f), normal(h)
        for ln in ("attention.output.LayerNorm", "output.LayerNorm"):
            w[f"{p}.{ln}.weight"], w[f"{p}.{ln}.bias"] = 1 + normal(h), normal(h)
    return w


def ragged_batch(arch: Architecture, lengths: list[int], seed: int = 1) -> list[list[int]]:
    """Token ids with <s>/</s> (or [CLS]/[SEP]) framing, never the pad id inside."""
    rng = np.random.default_rng(seed)
    first, last = (0, 2) if arch.family == "xlm-roberta" else (3, 4)
    return [[first, *rng.integers(5, arch.vocab_size, n - 2).tolist(), last] for n in lengths]


def pad(sequences: list[list[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    width = max(len(s) for s in sequences)
    ids = np.full((len(sequences), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)], mask[row, : len(seq)] = seq, 1
    return ids, mask


def run_graph(model, feeds: dict[str, np.ndarray], output: str = "sentence_embedding") -> np.ndarray:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run([output], feeds)[0]
