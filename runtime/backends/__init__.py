"""Backend registry: name → class path. A new backend is one module plus one line here."""

from __future__ import annotations

import importlib

from ..cpus import has_x86_int8_dot
from .base import Backend, BackendUnavailable

REGISTRY: dict[str, str] = {
    "cpu": "seaembed.runtime.backends.onnx_cpu:OnnxCpuBackend",
    "cuda": "seaembed.runtime.backends.onnx_cuda:OnnxCudaBackend",
    "tensorrt": "seaembed.runtime.backends.tensorrt_backend:TensorRTBackend",
    "openvino": "seaembed.runtime.backends.openvino_backend:OpenVinoBackend",
}
# `auto` tries these in order (fastest first) and takes the first that loads.
AUTO_ORDER = ("tensorrt", "cuda", "cpu")


def openvino_first(manifest, precision: str | None, isa: dict[str, bool] | None = None) -> bool:
    """Whether the CPU backend tries OpenVINO before ONNX Runtime for `precision` (it falls back to ORT).

    bf16: OpenVINO is its only engine; whenever the bundle has the artifact (its gate not failed).
    int8: on CPUs with x86 int8 dot products (VNNI/AMX), when the bundle's OpenVINO IR passed its gate and was
    built with the FFN outlier split: measured 1.35x / 1.35x / 1.36x ORT's dynamic graph (mixed 8-256 / 8-512 /
    512-token) on a Zen 4 with AVX512-VNNI, same run (benchmarks/results/cpu_xlmr-large_epyc-zen4.md). An IR of
    the earlier recipe (FFN down float) measured 0.76x there and 0.75x on an AVX2-only EPYC, and the split IR
    is not measured on AVX2 or Arm (where OpenVINO lists no quantized kernels): those stay on ORT.
    """
    irs = [a for a in manifest.artifacts if a.format == "openvino" and a.precision == precision]
    if precision == "bf16":
        return any(a.parity.get("passed") is not False for a in irs)
    if precision == "int8":
        return has_x86_int8_dot(isa) and any(a.parity.get("passed") is True and a.details.get("ffn_split") for a in irs)
    return False


def backend_candidates(name: str, manifest, precision: str | None, artifact: str | None = None) -> tuple[str, ...]:
    """The backends to try in order for `name` ("auto" expands; "cpu" may put OpenVINO first)."""
    order = AUTO_ORDER if name == "auto" else (name,)
    if artifact is not None:
        wants_openvino = any(a.name == artifact and a.format == "openvino" for a in manifest.artifacts)
    else:
        wants_openvino = openvino_first(manifest, precision)
    # A named OpenVINO IR runs on OpenVINO only; a precision may fall back to ONNX Runtime's graph.
    with_openvino = ("openvino",) if artifact is not None else ("openvino", "cpu")
    return tuple(c for n in order for c in (with_openvino if n == "cpu" and wants_openvino else (n,)))


def backend_class(name: str) -> type:
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join([*REGISTRY, 'auto'])}")
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


__all__ = ["Backend", "BackendUnavailable", "REGISTRY", "AUTO_ORDER", "backend_candidates", "backend_class", "openvino_first"]
