"""The static INT8 Q/DQ graph: TensorRT's INT8 input, built on the FP16 graph's layout.

In a strongly typed TensorRT network precision comes from the graph alone, so this graph
is the FP16 graph (non-quantised matmuls FP16, LayerNorm/GELU/pooling FP32) plus:
- int8 weights, symmetric, one scale per output channel (axis 1 of the [in, out] weight),
  behind a DequantizeLinear with fp16 scales (opset 19);
- one QuantizeLinear/DequantizeLinear pair on each quantised matmul's input, symmetric
  per-tensor int8, scale = max |x| over the real tokens of the calibration set / 127.
Outputs of matmuls are never quantised (TensorRT fuses Q/DQ on inputs; ONNX Runtime's own
quantiser notes output quantisation of weighted ops is not recommended for TensorRT).

Which matmuls are int8 was chosen by measurement on trained e5-small (held-out set; mean /
min cosine, recall@1 vs FP32's 0.9318): everything int8 0.937 / 0.886 / 0.750; FFN down
projection and attention score/context in float 0.991 / 0.980 / 0.909; both FFN matmuls and
score/context in float 0.9988 / 0.9982 / 0.9318. Per-tensor int8 fails on the FFN: its
input (LayerNorm output) and the GELU output carry outlier channels. So: Q, K, V and the
attention output projection are int8; the rest stays FP16. The scales themselves are
export/int8_scales.py's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .onnx_graph import build_encoder_graph, save_with_external_data


def quantized_activations(layers: int) -> list[str]:
    """Keys of the activations whose matmuls run in int8 (see the module docstring)."""
    keys = []
    for layer in range(layers):
        keys += [f"encoder.layer.{layer}.attention.self", f"encoder.layer.{layer}.attention.output.dense"]
    return keys


def calibrate(checkpoint, batches: list[dict[str, np.ndarray]]) -> dict[str, float]:
    """max |x| of every quantised activation over the real (unpadded) tokens, from the FP32 graph."""
    import onnxruntime as ort

    arch = checkpoint.architecture
    keys = quantized_activations(arch.layers)
    model = build_encoder_graph(arch, checkpoint.weights, checkpoint.normalize, "fp32", record_taps=True)
    amax = dict.fromkeys(keys, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "calibration.onnx"
        save_with_external_data(model, path, "calibration.onnx.data")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [f"calibration.{k}" for k in keys]
        for batch in batches:
            real = batch["attention_mask"].astype(bool)
            for key, value in zip(keys, session.run(names, batch), strict=True):
                amax[key] = max(amax[key], float(np.abs(value[real]).max()))
    return amax


def export_qdq_graph(checkpoint, out_dir: Path, graph_file: str, batches: list[dict[str, np.ndarray]]) -> dict:
    """Write graph_file (+ .data) and return what the manifest records about it."""
    amax = calibrate(checkpoint, batches)
    model = build_encoder_graph(checkpoint.architecture, checkpoint.weights, checkpoint.normalize, "fp16", quantized=amax)
    save_with_external_data(model, out_dir / graph_file, graph_file + ".data")
    return {
        "opset": model.opset_import[0].version,
        "quantized_matmuls": 4 * checkpoint.architecture.layers,
        "activation_amax": {"min": min(amax.values()), "max": max(amax.values())},
    }
