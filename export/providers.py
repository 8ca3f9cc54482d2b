"""Which execution providers this machine's onnxruntime offers to the export (its graphs are gated where they run)."""

from __future__ import annotations

import os

# Graphs gated on the GPU: CUDA first, CPU for the nodes CUDA does not take.
CUDA_PROVIDERS = ("CUDAExecutionProvider", "CPUExecutionProvider")


def has_cuda_provider() -> bool:
    """True where onnxruntime has CUDA and SEAEMBED_EXPORT_CUDA_FUSED is not 0 (the opt-out of the CUDA-only graphs)."""
    if os.environ.get("SEAEMBED_EXPORT_CUDA_FUSED", "1") == "0":
        return False
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()
