"""The artifact builders, one module per artifact family, in build order.

Each module has names(settings), check(settings) and build(context) (the contract is in base.py).
The exporter runs check() of every builder before any work and build() in this order: later
builders read what earlier ones made (the INT8 graphs are made from the FP32 ones, the TensorRT
engines from the FP16 and Q/DQ graphs). `--keep` names are checked against planned_artifacts().
A new family is one module here plus one line in REGISTRY.
"""

from __future__ import annotations

from seaembed.runtime.manifest import Artifact

from . import onnx_cuda_attention, onnx_float, onnx_int8_dynamic, onnx_int8_qdq, openvino_ir, tensorrt_engines
from .base import ArtifactBuilder, BuildContext, EngineOptions, ExportSettings

REGISTRY: tuple[ArtifactBuilder, ...] = (
    onnx_float,  # onnx-fp32, onnx-fp32-ort, onnx-fp16, onnx-fp16-ort
    onnx_cuda_attention,  # onnx-fp16-mha, onnx-fp16-packed
    onnx_int8_dynamic,  # onnx-int8-dynamic
    onnx_int8_qdq,  # onnx-int8-qdq
    openvino_ir,  # openvino-int8, openvino-bf16
    tensorrt_engines,  # tensorrt-fp16, tensorrt-int8
)


def planned_artifacts(settings: ExportSettings) -> list[str]:
    """Names of the artifacts an export with these settings builds, in build order."""
    return [name for builder in REGISTRY for name in builder.names(settings)]


def check_settings(settings: ExportSettings) -> None:
    """ValueError for settings some builder cannot build, before the long export starts."""
    for builder in REGISTRY:
        builder.check(settings)


def build_all(context: BuildContext) -> list[Artifact]:
    """Build and gate every artifact the settings ask for, in REGISTRY order; context.built grows as they come."""
    for builder in REGISTRY:
        context.built.extend(builder.build(context))
    return list(context.built)


__all__ = ["REGISTRY", "ArtifactBuilder", "BuildContext", "EngineOptions", "ExportSettings", "build_all", "check_settings", "planned_artifacts"]
