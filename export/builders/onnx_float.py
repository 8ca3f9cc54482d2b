"""The FP32 and FP16 ONNX graphs: plain (any ONNX runtime, TensorRT's FP16 input) and ORT-fused.

- onnx-fp32: always built; the reference graph and the source of every other artifact.
- onnx-fp32-ort: ONNX Runtime's contrib ops (Attention, SkipLayerNormalization, BiasGelu) for the
  CPU; built when asked (ort_fused) and whenever int8 is (the dynamic INT8 graph is made from it).
- onnx-fp16: FP16 matmuls and attention, LayerNorm/GELU/pooling in FP32.
- onnx-fp16-ort: the fused graph in FP16, which only ORT's CUDA provider runs, so it is built and
  gated only where onnxruntime has CUDA.
Each is gated against PyTorch on the parity probes (export/parity.py); a miss fails the export.
"""

from __future__ import annotations

import logging
from pathlib import Path

from seaembed.runtime.manifest import Artifact

from .. import parity
from ..artifacts import onnx_artifact, op_counts
from ..checkpoint import Checkpoint
from ..compact_embeddings import compact_artifact, storage_details
from ..onnx_graph import build_encoder_graph, save_with_external_data
from ..providers import CUDA_PROVIDERS
from .base import BuildContext, ExportSettings

log = logging.getLogger("seaembed.export")


def names(settings: ExportSettings) -> list[str]:
    out = ["onnx-fp32"]
    if settings.ort_fused or "int8" in settings.precisions:
        out.append("onnx-fp32-ort")
    if "fp16" in settings.precisions:
        out += ["onnx-fp16", *(["onnx-fp16-ort"] if settings.cuda else [])]
    return out


def check(settings: ExportSettings) -> None:
    """Every setting is buildable: fp32 is always built, the CUDA-only graph is skipped where it cannot run."""


def build(context: BuildContext) -> list[Artifact]:
    settings, checkpoint, out_dir, reference = context.settings, context.checkpoint, context.out_dir, context.reference
    artifacts = [export_onnx_artifact(checkpoint, out_dir, "fp32", reference)]
    if settings.ort_fused or "int8" in settings.precisions:
        artifacts.append(export_onnx_artifact(checkpoint, out_dir, "fp32", reference, fused=True))
    if "fp16" in settings.precisions:
        artifacts.append(export_onnx_artifact(checkpoint, out_dir, "fp16", reference))
        if settings.cuda:
            # ORT's fused fp16 kernels exist on CUDA only: built and gated where they can run.
            artifacts.append(export_onnx_artifact(checkpoint, out_dir, "fp16", reference, fused=True, providers=CUDA_PROVIDERS))
        else:
            log.info("onnx-fp16-ort (the CUDA-fused fp16 graph) is built only where onnxruntime has CUDA: its parity is measured there")
    return artifacts


def export_onnx_artifact(checkpoint: Checkpoint, out_dir: Path, precision: str, reference, fused: bool = False, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> Artifact:
    """Write model.<precision>[.ort].onnx (+ .data), compact its embedding table, gate it against PyTorch."""
    import onnx

    arch = checkpoint.architecture
    stem = f"model.{precision}{'.ort' if fused else ''}"
    graph_file, data_file = f"{stem}.onnx", f"{stem}.onnx.data"
    model = build_encoder_graph(arch, checkpoint.weights, checkpoint.normalize, precision, fused=fused)
    save_with_external_data(model, out_dir / graph_file, data_file)
    onnx.checker.check_model(str(out_dir / graph_file), full_check=not fused)
    name = f"onnx-{precision}{'-ort' if fused else ''}"
    storage = compact_artifact(out_dir / graph_file, name, providers)  # before the gate: it measures what ships
    stats = parity.enforce(parity.measure_onnx_parity(out_dir / graph_file, reference, providers), precision)
    details = {}
    if fused:
        counts = op_counts(out_dir / graph_file)
        details = {
            "ort_only": True,
            "execution_provider": providers[0],
            "fusions": {op: counts.get(op, 0) for op in ("Attention", "SkipLayerNormalization", "BiasGelu")},
        }
    return onnx_artifact(name, precision, out_dir, graph_file, arch.hidden, stats, dict(details, **storage_details(storage)))
