"""onnx-int8-dynamic: ONNX Runtime's dynamic INT8 quantisation of the ORT-fused FP32 graph (CPU, ORT only).

Weights int8 per channel (7-bit range), activations quantised per call, attention as QAttention. Every
MatMul is int8; each FFN's outlier channels run on a small float side path (export/int8_outliers.py).
Where that graph misses the accuracy gate, the graph shipped before it is built and gated instead: the
FFN down projections float (stored int8 + DequantizeLinear), measured 1.4x slower on XLM-R-large's
shape; the manifest records which recipe was kept and why.
Per-call scales make a vector depend on its batch-mates, so the gate runs at every batch size the
runtime may use and the artifact is capped at the largest (max_batch).
"""

from __future__ import annotations

from seaembed.runtime.manifest import Artifact

from .. import quantize
from ..int8_outliers import OUTLIER_CHANNELS
from ..parity import ParityError
from .base import BuildContext, ExportSettings
from .int8_gate import gate_int8_graph

NAME, GRAPH_FILE = "onnx-int8-dynamic", "model.int8.dynamic.onnx"
SOURCE = "onnx-fp32-ort"
COMMON = {"method": "dynamic", "weights": "int8 symmetric per-channel, 7-bit range", "activations": "uint8 per call", "ort_only": True, "source": SOURCE}


def names(settings: ExportSettings) -> list[str]:
    return [NAME] if "int8" in settings.precisions else []


def check(settings: ExportSettings) -> None:
    """Nothing to refuse: ONNX Runtime's quantiser is part of the export's dependencies."""


def build(context: BuildContext) -> list[Artifact]:
    if "int8" not in context.settings.precisions:
        return []
    source = context.out_dir / context.artifact(SOURCE).file
    target = context.out_dir / GRAPH_FILE
    split = quantize.quantize_dynamic_int8_split_ffn(source, target, GRAPH_FILE + ".data", context.tokenizer)
    details = dict(
        COMMON,
        recipe="split-ffn",
        float_matmuls=f"each FFN's {OUTLIER_CHANNELS} outlier channels (calibration peaks of the GELU output), a float side path",
        ffn_split=split,
    )
    try:
        return [gate_int8_graph(context, NAME, GRAPH_FILE, details, batch_capped=True)]
    except ParityError as miss:
        fallback_reason = str(miss)
    excluded = quantize.dynamic_exclusions(source)
    quantize.quantize_dynamic_int8(source, target, GRAPH_FILE + ".data", nodes_to_exclude=excluded)
    details = dict(
        COMMON,
        recipe="ffn-down-float",
        float_matmuls="FFN down projection (GELU-output outliers; see quantize.dynamic_exclusions)",
        matmuls_kept_float=len(excluded),
        split_ffn_missed_gate=fallback_reason,
    )
    return [gate_int8_graph(context, NAME, GRAPH_FILE, details, batch_capped=True)]
