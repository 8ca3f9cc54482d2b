"""TensorRT engines (lean runtime: `tensorrt` or `tensorrt_lean` + cuda-python).

Device buffers are allocated once for the engine's largest profile shape, host staging
buffers are pinned, and each backend owns one execution context and one CUDA stream.
An engine loads only if the manifest says it was built by this TensorRT version for this
GPU's compute capability (engines are executable code tied to both).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from ..manifest import Artifact, Manifest
from .base import BackendUnavailable, pick_artifact


def _tensorrt():
    try:
        import tensorrt as trt
    except ModuleNotFoundError:
        try:
            import tensorrt_lean as trt
        except ModuleNotFoundError:
            return None
    return trt


def _cudart():
    try:
        from cuda.bindings import runtime as cudart
    except ModuleNotFoundError:
        try:
            from cuda import cudart  # cuda-python < 12.6
        except ModuleNotFoundError:
            return None
    return cudart


def _check(result):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


def compute_capability(cudart=None) -> str:
    """The GPU's compute capability, e.g. "9.0" (engines are built for exactly one)."""
    cudart = cudart or _cudart()
    major = _check(cudart.cudaDeviceGetAttribute(cudart.cudaDeviceAttr.cudaDevAttrComputeCapabilityMajor, 0))
    minor = _check(cudart.cudaDeviceGetAttribute(cudart.cudaDeviceAttr.cudaDevAttrComputeCapabilityMinor, 0))
    return f"{major}.{minor}"


class TensorRTBackend:
    name = "tensorrt"
    preference: dict[str | None, tuple[str, ...]] = {
        None: ("tensorrt-fp16", "tensorrt-int8"),
        "fp16": ("tensorrt-fp16",),
        "int8": ("tensorrt-int8",),
    }
    batch_hint = (256, 131072)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if _tensorrt() is None:
            return "TensorRT is not installed (pip install tensorrt-lean-cu13 or tensorrt-cu13)"
        cudart = _cudart()
        if cudart is None:
            return "cuda-python is not installed (pip install cuda-python)"
        err, count = cudart.cudaGetDeviceCount()
        if int(err) != 0 or count == 0:
            return "no CUDA GPU is visible"
        return None

    @classmethod
    def select(cls, manifest: Manifest, precision: str | None, artifact: str | None = None) -> Artifact:
        chosen = pick_artifact(manifest, cls.preference, precision, artifact)
        trt, cudart = _tensorrt(), _cudart()
        if trt is not None and cudart is not None:
            here = (trt.__version__, compute_capability(cudart))
            built = (chosen.details.get("tensorrt_version"), chosen.details.get("compute_capability"))
            if built != here:
                raise BackendUnavailable(
                    f"{chosen.file} was built by TensorRT {built[0]} for compute capability {built[1]}; this machine has "
                    f"TensorRT {here[0]} and compute capability {here[1]}. Rebuild it here: seaembed export … --target tensorrt"
                )
        return chosen

    def __init__(self, engine, artifact: Artifact, cudart, trt):
        self.artifact = artifact
        self.engine = engine
        self._cudart = cudart
        self.context = engine.create_execution_context()
        self.stream = _check(cudart.cudaStreamCreate())
        profile = artifact.details.get("profile", {})
        self.max_batch, self.max_seq = profile.get("max", [256, 512])
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self.hidden = int(engine.get_tensor_shape(self._outputs[0])[-1])
        self._device, self._host = {}, {}
        sizes = {"input_ids": (self.max_batch * self.max_seq, np.int64), "attention_mask": (self.max_batch * self.max_seq, np.int64)}
        sizes.update({n: (self.max_batch * self.hidden, np.float32) for n in self._outputs})
        for name, (count, dtype) in sizes.items():
            nbytes = count * np.dtype(dtype).itemsize
            self._device[name] = _check(cudart.cudaMalloc(nbytes))
            pinned = _check(cudart.cudaMallocHost(nbytes))
            buffer = (ctypes.c_byte * nbytes).from_address(int(pinned))
            self._host[name] = np.frombuffer(buffer, dtype=dtype, count=count)
            self.context.set_tensor_address(name, int(self._device[name]))

    @classmethod
    def load(cls, bundle_dir: Path, manifest: Manifest, precision: str | None, threads: int | None, artifact: str | None = None) -> TensorRTBackend:
        reason = cls.unavailable_reason()
        if reason:
            raise BackendUnavailable(reason)
        trt, cudart = _tensorrt(), _cudart()
        chosen = cls.select(manifest, precision, artifact)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        engine = runtime.deserialize_cuda_engine((Path(bundle_dir) / chosen.file).read_bytes())
        if engine is None:
            raise BackendUnavailable(f"TensorRT could not deserialize {chosen.file}")
        return cls(engine, chosen, cudart, trt)

    @property
    def max_batch_size(self) -> int | None:
        return self.max_batch

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, normalized: bool = True) -> np.ndarray:
        cudart = self._cudart
        batch, seq = input_ids.shape
        if batch > self.max_batch or seq > self.max_seq:
            raise ValueError(f"batch {batch}×{seq} exceeds the engine's profile {self.max_batch}×{self.max_seq}")
        output = "sentence_embedding" if normalized or "pooled_embedding" not in self._outputs else "pooled_embedding"
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, array in (("input_ids", input_ids), ("attention_mask", attention_mask)):
            staged = self._host[name][: batch * seq]
            staged[:] = array.reshape(-1)
            _check(cudart.cudaMemcpyAsync(self._device[name], staged.ctypes.data, staged.nbytes, h2d, self.stream))
            self.context.set_input_shape(name, (batch, seq))
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed")
        result = self._host[output][: batch * self.hidden]
        _check(cudart.cudaMemcpyAsync(result.ctypes.data, self._device[output], result.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return result.reshape(batch, self.hidden).copy()

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "engine": "tensorrt",
            "artifact": self.artifact.name,
            "precision": self.artifact.precision,
            "tensorrt_version": self.artifact.details.get("tensorrt_version"),
            "compute_capability": self.artifact.details.get("compute_capability"),
            "max_batch": self.max_batch,
        }
