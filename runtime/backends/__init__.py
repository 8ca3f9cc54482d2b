"""Backend registry: name → class path. A new backend is one module plus one line here."""

from __future__ import annotations

import importlib

from .base import Backend, BackendUnavailable

REGISTRY: dict[str, str] = {
    "cpu": "seaembed.runtime.backends.onnx_cpu:OnnxCpuBackend",
    "cuda": "seaembed.runtime.backends.onnx_cuda:OnnxCudaBackend",
    "tensorrt": "seaembed.runtime.backends.tensorrt_backend:TensorRTBackend",
}
# `auto` tries these in order (fastest first) and takes the first that loads.
AUTO_ORDER = ("tensorrt", "cuda", "cpu")


def backend_class(name: str) -> type:
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; choose from {', '.join([*REGISTRY, 'auto'])}")
    module_name, class_name = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


__all__ = ["Backend", "BackendUnavailable", "REGISTRY", "AUTO_ORDER", "backend_class"]
