"""Padding-free batches for the packed graph: ragged token ids → (tokens, offsets, cumulative lengths).

The packed graph (export/attention_graphs.py) takes the batch's tokens concatenated, so no
padding is ever created or computed. Its inputs follow ONNX Runtime's PackedMultiHeadAttention:
- input_ids [T] int64: sequence 0's tokens, then sequence 1's, …;
- token_offset [B, S] int32 (S = the longest sequence): for each packed token, its position
  b·S + s in the padded layout, then the padded layout's unused positions, ascending;
- cumulative_sequence_length [B + 1] int32: 0, len0, len0 + len1, ….
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def pack(sequences: Sequence[Sequence[int]]) -> dict[str, np.ndarray]:
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("pack() needs at least one sequence and no empty sequence")
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    batch, width = len(sequences), int(lengths.max())
    cumulative = np.zeros(batch + 1, dtype=np.int32)
    np.cumsum(lengths, out=cumulative[1:])
    real = np.arange(width)[None, :] < lengths[:, None]  # [B, S]: which padded positions hold a token
    padded_positions = np.arange(batch * width, dtype=np.int32).reshape(batch, width)
    token_offset = np.concatenate([padded_positions[real], padded_positions[~real]]).reshape(batch, width)
    input_ids = np.fromiter((t for s in sequences for t in s), dtype=np.int64, count=int(cumulative[-1]))
    return {"input_ids": input_ids, "token_offset": token_offset, "cumulative_sequence_length": cumulative}


def unpack(packed_rows: np.ndarray, feeds: dict[str, np.ndarray], fill: float = 0.0) -> np.ndarray:
    """[T, ...] rows of a packed batch → [B, S, ...] in the padded layout (what RestorePadding does)."""
    token_offset = feeds["token_offset"]
    batch, width = token_offset.shape
    out = np.full((batch * width, *packed_rows.shape[1:]), fill, dtype=packed_rows.dtype)
    out[token_offset.reshape(-1)[: len(packed_rows)]] = packed_rows
    return out.reshape(batch, width, *packed_rows.shape[1:])


def plan_packed_batches(lengths: Sequence[int], max_sequences: int, max_tokens: int) -> list[list[int]]:
    """Batches under a real-token budget (no padding to pay for), longest first.

    Sorting still pays off: attention costs Σ len² and token_offset is B × longest. An input
    longer than the budget gets a batch of its own.
    """
    if max_sequences < 1 or max_tokens < 1:
        raise ValueError(f"max_sequences and max_tokens must be >= 1, got {max_sequences} and {max_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    tokens = 0
    for index in order:
        if current and (len(current) >= max_sequences or tokens + lengths[index] > max_tokens):
            batches.append(current)
            current, tokens = [], 0
        current.append(index)
        tokens += lengths[index]
    if current:
        batches.append(current)
    return batches
