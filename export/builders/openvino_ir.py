"""The OpenVINO artifacts: openvino-int8 (an NNCF-quantised IR) and openvino-bf16 (the FP32 graph, gated in BF16).

How they are made and gated is export/openvino_export.py. openvino-int8 is an extra beside the ORT
INT8 graphs: built only where OpenVINO and NNCF are installed, and a missed gate is recorded rather
than failing the export. openvino-bf16 is planned whenever bf16 is asked; without OpenVINO the
export fails naming the missing packages.
"""

from __future__ import annotations

from seaembed.runtime.manifest import Artifact

from .. import openvino_export
from .base import BuildContext, ExportSettings


def names(settings: ExportSettings) -> list[str]:
    out = ["openvino-int8"] if "int8" in settings.precisions and settings.openvino else []
    return out + (["openvino-bf16"] if "bf16" in settings.precisions else [])


def check(settings: ExportSettings) -> None:
    """Nothing refused up front: a missing OpenVINO is reported when bf16 is built (int8 goes on without its IR)."""


def build(context: BuildContext) -> list[Artifact]:
    precisions = context.settings.precisions
    if not {"int8", "bf16"} & set(precisions):
        return []
    return openvino_export.export_openvino_artifacts(
        context.out_dir,
        context.artifact("onnx-fp32"),
        context.checkpoint.architecture.hidden,
        precisions,
        context.reference,
        context.accuracy_reference,
        context.tokenizer,
        enforce=context.accuracy_gates,
    )
