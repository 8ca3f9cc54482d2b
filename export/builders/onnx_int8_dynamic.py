"""onnx-int8-dynamic: ONNX Runtime's dynamic INT8 quantisation of the ORT-fused FP32 graph (CPU, ORT only).

Weights int8 per channel (7-bit range), activations quantised per call, attention as QAttention;
the FFN down projections stay float (export/quantize.py says why). Per-call scales make a vector
depend on its batch-mates, so the gate runs at every batch size the runtime may use and the
artifact is capped at the largest (max_batch).
"""

from __future__ import annotations

from seaembed.runtime.manifest import Artifact

from .. import quantize
from .base import BuildContext, ExportSettings
from .int8_gate import gate_int8_graph

NAME, GRAPH_FILE = "onnx-int8-dynamic", "model.int8.dynamic.onnx"
SOURCE = "onnx-fp32-ort"


def names(settings: ExportSettings) -> list[str]:
    return [NAME] if "int8" in settings.precisions else []


def check(settings: ExportSettings) -> None:
    """Nothing to refuse: ONNX Runtime's quantiser is part of the export's dependencies."""


def build(context: BuildContext) -> list[Artifact]:
    if "int8" not in context.settings.precisions:
        return []
    fused = context.artifact(SOURCE)
    details = {
        "method": "dynamic",
        "weights": "int8 symmetric per-channel, 7-bit range",
        "activations": "uint8 per call",
        "source": fused.name,
        "ort_only": True,
        "float_matmuls": "FFN down projection (GELU-output outliers; see quantize.dynamic_exclusions)",
    }
    out_dir = context.out_dir
    excluded = quantize.dynamic_exclusions(out_dir / fused.file)
    quantize.quantize_dynamic_int8(out_dir / fused.file, out_dir / GRAPH_FILE, GRAPH_FILE + ".data", nodes_to_exclude=excluded)
    details = dict(details, matmuls_kept_float=len(excluded))
    return [gate_int8_graph(context, NAME, GRAPH_FILE, details, batch_capped=True)]
