"""TensorRT engines (`--target tensorrt`): tensorrt-fp16 from onnx-fp16, tensorrt-int8 from onnx-int8-qdq.

How an engine is built, and what ties it to the GPU and TensorRT version, is export/tensorrt_build.py.
"""

from __future__ import annotations

from seaembed.runtime.manifest import Artifact

from .base import BuildContext, ExportSettings

SOURCES = {"fp16": "onnx-fp16", "int8": "onnx-int8-qdq"}  # engine precision → the graph it is built from


def names(settings: ExportSettings) -> list[str]:
    if settings.target != "tensorrt":
        return []
    return [f"tensorrt-{p}" for p in SOURCES if p in settings.precisions]


def check(settings: ExportSettings) -> None:
    """--target tensorrt needs a precision an engine is built in (a machine without the TensorRT builder is
    refused when the engines are built, in seconds: tensorrt_build.builder_unavailable_reason)."""
    if settings.target == "tensorrt" and not set(SOURCES) & set(settings.precisions):
        raise ValueError("--target tensorrt builds fp16 and/or int8 engines: add --precision fp16 and/or int8")


def build(context: BuildContext) -> list[Artifact]:
    if context.settings.target != "tensorrt":
        return []
    from ..tensorrt_build import EngineProfile, build_engine

    engines = context.engines
    artifacts = []
    for precision, source_name in SOURCES.items():
        if precision in context.settings.precisions:
            source = context.artifact(source_name)
            artifacts.append(
                build_engine(
                    context.out_dir / source.file,
                    context.out_dir,
                    precision,
                    source.name,
                    engines.profile or EngineProfile(),
                    engines.optimization_level,
                    engines.timing_cache,
                    **(engines.compatibility or {}),
                )
            )
    return artifacts
