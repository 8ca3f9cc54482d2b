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
# On the CPU, int8 and bf16 run on OpenVINO when it is installed and the bundle has its artifact (its gate
# not failed); ONNX Runtime stays the lean default otherwise.
OPENVINO_FIRST = ("int8", "bf16")


def _openvino_pays_off(precision: str) -> bool:
    """INT8 only where the CPU has x86 int8 dot products (VNNI/AMX): without them OpenVINO INT8 measured 0.58x
    ONNX Runtime's dynamic int8 on an AVX2-only EPYC. On Arm, OpenVINO's CPU plugin lists its quantized
    kernels for x86-64 only, so the INT8 graph is ONNX Runtime's dynamic one, whose int8 GEMMs use the
    SDOT/SMMLA units where the CPU has them (asimddp, i8mm). BF16 exists only as OpenVINO, whose backend
    names the ISA it needs where it is missing."""
    return has_x86_int8_dot() if precision == "int8" else precision in OPENVINO_FIRST


def backend_candidates(name: str, manifest, precision: str | None, artifact: str | None = None) -> tuple[str, ...]:
    """The backends to try in order for `name` ("auto" expands; "cpu" may put OpenVINO first)."""
    order = AUTO_ORDER if name == "auto" else (name,)
    if artifact is not None:
        wants_openvino = any(a.name == artifact and a.format == "openvino" for a in manifest.artifacts)
    else:
        wants_openvino = (
            _openvino_pays_off(precision)
            and any(a.format == "openvino" and a.precision == precision and a.parity.get("passed") is not False for a in manifest.artifacts)
        )
    # A named OpenVINO IR runs on OpenVINO only; a precision may fall back to ONNX Runtime's graph.
    with_openvino = ("openvino",) if artifact is not None else ("openvino", "cpu")
    return tuple(c for n in order for c in (with_openvino if n == "cpu" and wants_openvino else (n,)))


def backend_class(name: str) -> type:
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join([*REGISTRY, 'auto'])}")
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


__all__ = ["Backend", "BackendUnavailable", "REGISTRY", "AUTO_ORDER", "backend_candidates", "backend_class"]
