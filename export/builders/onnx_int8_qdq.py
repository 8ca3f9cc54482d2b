"""onnx-int8-qdq: the static INT8 Q/DQ graph on the FP16 layout, TensorRT's INT8 input.

Calibrated on export/data/calibration.txt (tokenized as the runtime does); which matmuls are int8
and why is export/qdq.py's docstring. Static scales: a vector does not depend on its batch-mates.
"""

from __future__ import annotations

from seaembed.runtime.manifest import Artifact

from .. import quantize
from ..qdq import export_qdq_graph
from .base import BuildContext, ExportSettings
from .int8_gate import gate_int8_graph

NAME, GRAPH_FILE = "onnx-int8-qdq", "model.int8.qdq.onnx"


def names(settings: ExportSettings) -> list[str]:
    return [NAME] if "int8" in settings.precisions else []


def check(settings: ExportSettings) -> None:
    """Nothing to refuse: the graph is written by export/onnx_graph.py and calibrated with ONNX Runtime."""


def build(context: BuildContext) -> list[Artifact]:
    if "int8" not in context.settings.precisions:
        return []
    details = {
        "method": "static QDQ",
        "weights": "int8 symmetric per output channel, fp16 scales",
        "activations": "int8 symmetric per-tensor, max |x| over the calibration set's real tokens",
        "calibration_texts": len(quantize.calibration_texts()),
        "layout": "onnx-fp16's (non-quantised matmuls FP16; LayerNorm, GELU, pooling FP32)",
        "float_matmuls": "FFN and attention score/context in FP16 (outlier activations; see export/qdq.py)",
        "tensorrt_ready": True,
    }
    batches = list(quantize.calibration_batches(context.tokenizer))
    details = dict(details, **export_qdq_graph(context.checkpoint, context.out_dir, GRAPH_FILE, batches))
    return [gate_int8_graph(context, NAME, GRAPH_FILE, details, batch_capped=False)]
