"""The opt-in CUDA attention graphs (`seaembed export --cuda-attention mha,packed`): onnx-fp16-mha, onnx-fp16-packed.

They use ORT-CUDA contrib ops (PackedMultiHeadAttention has no CPU kernel), so they are
gated where they run: on the CUDA execution provider, against PyTorch on the same probes
as every other graph (the packed graph is fed the probes packed, from their unpadded rows).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from seaembed.runtime.manifest import Artifact
from seaembed.runtime.packing import pack

from .. import parity
from ..artifacts import onnx_artifact
from ..attention_graphs import PACKED_INPUTS, VARIANTS, build_mha_graph, build_packed_graph
from ..onnx_graph import save_with_external_data
from ..providers import CUDA_PROVIDERS
from .base import BuildContext, ExportSettings


def names(settings: ExportSettings) -> list[str]:
    return [f"onnx-fp16-{variant}" for variant in settings.cuda_attention]


def check(settings: ExportSettings) -> None:
    check_variants(settings.cuda_attention)


def build(context: BuildContext) -> list[Artifact]:
    if not context.settings.cuda_attention:
        return []
    return export_attention_variants(context.checkpoint, context.out_dir, context.settings.cuda_attention, context.reference)


def check_variants(variants: tuple[str, ...]) -> None:
    """Refuse unknown names, and a machine whose onnxruntime cannot run (so cannot gate) these graphs."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"--cuda-attention {', '.join(unknown)} is not available; choose from {', '.join(VARIANTS)}")
    if variants:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ValueError(
                f"--cuda-attention graphs are gated on the GPU they run on: this onnxruntime has {ort.get_available_providers()}; "
                "install onnxruntime-gpu on a CUDA machine"
            )


def _packed_feed(input_ids: np.ndarray, attention_mask: np.ndarray) -> dict:
    return pack([ids[mask.astype(bool)].tolist() for ids, mask in zip(input_ids, attention_mask, strict=True)])


def measure_packed_parity(onnx_path, reference, providers: tuple[str, ...] = CUDA_PROVIDERS) -> dict:
    """parity.measure_onnx_parity for the packed graph: each padded probe batch is packed from its real tokens."""
    return parity.measure_onnx_parity(onnx_path, reference, providers, feed=_packed_feed)


def export_attention_variants(checkpoint, out_dir, variants: tuple[str, ...], reference, providers: tuple[str, ...] = CUDA_PROVIDERS) -> list[Artifact]:
    arch = checkpoint.architecture
    artifacts = []
    for variant in variants:
        graph_file = f"model.fp16.{variant}.onnx"
        if variant == "mha":
            model = build_mha_graph(arch, checkpoint.weights, checkpoint.normalize, "fp16")
        else:
            model = build_packed_graph(arch, checkpoint.weights, checkpoint.normalize, "fp16", attention="packed")
        save_with_external_data(model, out_dir / graph_file, graph_file + ".data")
        measure = parity.measure_onnx_parity if variant == "mha" else measure_packed_parity
        stats = parity.enforce(measure(out_dir / graph_file, reference, providers), "fp16")
        details = {"ort_only": True, "execution_provider": providers[0], "attention": "MultiHeadAttention, key lengths [batch]"}
        if variant == "packed":
            details = dict(details, attention="PackedMultiHeadAttention", packed=True)
        artifact = onnx_artifact(f"onnx-fp16-{variant}", "fp16", out_dir, graph_file, arch.hidden, stats, details)
        if variant == "packed":  # concatenated tokens in, no token_embeddings out
            packed_inputs = [
                {"name": PACKED_INPUTS[0], "dtype": "int64", "shape": ["tokens"]},
                {"name": PACKED_INPUTS[1], "dtype": "int32", "shape": ["batch", "max_len"]},
                {"name": PACKED_INPUTS[2], "dtype": "int32", "shape": ["batch_plus_1"]},
            ]
            artifact = dataclasses.replace(artifact, inputs=packed_inputs, outputs=artifact.outputs[:2])
        artifacts.append(artifact)
    return artifacts
