"""Backend registry: name → class path. A new backend is one module plus one line here."""

from __future__ import annotations

import importlib

from .base import Backend, BackendUnavailable

REGISTRY: dict[str, str] = {
    "cpu": "seaembed.runtime.backends.onnx_cpu:OnnxCpuBackend",
    "cuda": "seaembed.runtime.backends.onnx_cuda:OnnxCudaBackend",
    "tensorrt": "seaembed.runtime.backends.tensorrt_backend:TensorRTBackend",
    "openvino": "seaembed.runtime.backends.openvino_backend:OpenVinoBackend",
}
# `auto` tries these in order (fastest first) and takes the first that loads.
AUTO_ORDER = ("tensorrt", "cuda", "cpu")
# On the CPU, bf16 runs on OpenVINO (its only engine) when it is installed and the bundle has its artifact (its
# gate not failed). int8 stays on ONNX Runtime's dynamic graph, measured faster than the bundle's OpenVINO INT8 IR
# on every CPU kind tried: AVX2-only EPYC 0.75x, Zen 4 with AVX512-VNNI 0.76x (XLM-R-large shape, same run,
# benchmarks/results/cpu_xlmr-large_epyc-zen4.md); the IR stays one `--backend openvino` away.
OPENVINO_FIRST = ("bf16",)


def backend_candidates(name: str, manifest, precision: str | None, artifact: str | None = None) -> tuple[str, ...]:
    """The backends to try in order for `name` ("auto" expands; "cpu" may put OpenVINO first)."""
    order = AUTO_ORDER if name == "auto" else (name,)
    if artifact is not None:
        wants_openvino = any(a.name == artifact and a.format == "openvino" for a in manifest.artifacts)
    else:
        wants_openvino = (
            precision in OPENVINO_FIRST
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
