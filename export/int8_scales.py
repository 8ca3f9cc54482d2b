"""Symmetric int8 scales of the static Q/DQ graph: weights per output channel, activations per tensor.

Used by the graph writer (export/onnx_graph.py) when it places Q/DQ pairs; the calibration that
measures the activation ranges is export/qdq.py.
"""

from __future__ import annotations

import numpy as np

INT8_MAX = 127.0
FP16_TINY = float(np.finfo(np.float16).tiny)  # smallest normal fp16: scales stay out of subnormals


def activation_scale(amax: float) -> np.ndarray:
    """Per-tensor fp16 scale of an activation whose calibrated max |x| is amax."""
    return np.array(max(amax / INT8_MAX, FP16_TINY), dtype=np.float16)


def quantize_weight(weight_t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[in, out] float weight → (int8 weight, fp16 scale per output channel), symmetric, range ±127."""
    amax = np.abs(weight_t).max(axis=0)
    scale = np.maximum(amax / INT8_MAX, FP16_TINY).astype(np.float16)
    q = np.clip(np.rint(weight_t / scale.astype(np.float32)), -INT8_MAX, INT8_MAX).astype(np.int8)
    return q, scale
