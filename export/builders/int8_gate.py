"""What both ONNX INT8 builders do once their graph is written: compact, gate on held-out text, describe.

Not a builder itself (REGISTRY does not list it): the shared tail of onnx_int8_dynamic and onnx_int8_qdq.
"""

from __future__ import annotations

from seaembed.runtime.manifest import Artifact

from ..accuracy import GATE_BATCH_SIZES, enforce_accuracy, session_embed, worst_case
from ..artifacts import onnx_artifact, op_counts
from ..compact_embeddings import compact_artifact, storage_details
from ..onnx_graph import OPSET
from .base import BuildContext

QUANTIZED_OPS = ("QAttention", "DynamicQuantizeMatMul", "MatMulInteger", "QuantizeLinear", "DequantizeLinear")


def gate_int8_graph(context: BuildContext, name: str, graph_file: str, details: dict, batch_capped: bool) -> Artifact:
    """Gate graph_file against PyTorch at every GATE_BATCH_SIZES; the artifact records the worst figures.

    batch_capped: the graph's vectors depend on their batch-mates (dynamic activation scales), so the
    runtime may never batch it wider than the gate measured (details["max_batch"]).
    """
    out_dir = context.out_dir
    details = dict(details, **storage_details(compact_artifact(out_dir / graph_file, name)))
    measured = worst_case([context.accuracy_reference.measure(session_embed(out_dir / graph_file, context.tokenizer, batch_size=b)) for b in GATE_BATCH_SIZES])
    if batch_capped:
        details = dict(details, max_batch=max(GATE_BATCH_SIZES))  # the runtime never batches wider than the gate measured
    # Random-weight models (benchmarks) have no quality to keep: measured, recorded, not enforced.
    stats = enforce_accuracy(measured, name) if context.accuracy_gates else dict(measured, gate="not enforced", passed=None)
    counts = op_counts(out_dir / graph_file)
    details = dict(details, quantized_ops={k: v for k, v in counts.items() if k in QUANTIZED_OPS})
    return onnx_artifact(name, "int8", out_dir, graph_file, context.checkpoint.architecture.hidden, stats, details, opset=details.get("opset", OPSET))
