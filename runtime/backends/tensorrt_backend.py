"""TensorRT engines (`tensorrt`, or the lean runtime `tensorrt_lean`, + cuda-python).

Device buffers are allocated once for the engine's largest profile shape, host staging
buffers are pinned, and each backend owns one execution context and one CUDA stream,
all freed by close(). I/O dtypes and the largest shapes are read from the engine itself.

An engine loads only where it was built for (engines are executable code): the same
TensorRT version (or, for a version-compatible engine, the same major and not older), the
same compute capability, and the same GPU model unless it was built with hardware
compatibility. The lean runtime runs version-compatible engines only.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from ..manifest import Artifact, Manifest
from .base import BackendUnavailable, pick_artifact

# TensorRT DataType member name → numpy dtype of the staging buffer
_NUMPY_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64, "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}


def _tensorrt():
    try:
        import tensorrt as trt
    except ModuleNotFoundError:
        try:
            import tensorrt_lean as trt
        except ModuleNotFoundError:
            return None
    return trt


def cuda_runtime():
    """cuda-python's runtime module, or None when cuda-python is not installed."""
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
    return rest[0] if len(rest) == 1 else (rest or None)


def compute_capability(cudart=None) -> str:
    """The GPU's compute capability, e.g. "9.0" (engines are built for exactly one)."""
    cudart = cudart or cuda_runtime()
    major = _check(cudart.cudaDeviceGetAttribute(cudart.cudaDeviceAttr.cudaDevAttrComputeCapabilityMajor, 0))
    minor = _check(cudart.cudaDeviceGetAttribute(cudart.cudaDeviceAttr.cudaDevAttrComputeCapabilityMinor, 0))
    return f"{major}.{minor}"


def gpu_name(cudart=None) -> str:
    cudart = cudart or cuda_runtime()
    name = _check(cudart.cudaGetDeviceProperties(0)).name
    return (name.split(b"\0", 1)[0].decode() if isinstance(name, bytes) else str(name)).strip()


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".")[:3] if part.isdigit())


def compatibility_problem(details: dict, runtime: str, version: str, cc: str, gpu: str) -> str | None:
    """Why an engine described by `details` cannot run on (runtime module, TensorRT version, compute capability, GPU), or None."""
    built_version, built_cc = details.get("tensorrt_version"), details.get("compute_capability")
    version_compatible = bool(details.get("version_compatible"))
    level = details.get("hardware_compatibility_level", "NONE")
    if runtime == "tensorrt_lean" and not version_compatible:
        return "the lean runtime (tensorrt_lean) runs only version-compatible engines; install tensorrt-cu13 or rebuild with --trt-version-compatible"
    if version_compatible:
        if _version(version)[:1] != _version(built_version)[:1] or _version(version) < _version(built_version):
            return f"it is version compatible from TensorRT {built_version} within major {_version(built_version)[0]}; this machine has TensorRT {version}"
    elif version != built_version:
        return f"it was built by TensorRT {built_version}; this machine has TensorRT {version}"
    if level == "AMPERE_PLUS":
        if _version(cc) < (8, 0):
            return f"it needs an Ampere or newer GPU (compute capability >= 8.0); this GPU has {cc}"
    elif cc != built_cc:
        return f"it was built for compute capability {built_cc}; this GPU has {cc}"
    elif level == "NONE" and details.get("gpu") and details["gpu"] != gpu:
        return f"it was built on a {details['gpu']} without hardware compatibility; this GPU is a {gpu} (rebuild with --trt-hardware-compatibility same-compute-capability to share engines)"
    return None


class TensorRTBackend:
    name = "tensorrt"
    formats = ("tensorrt",)
    preference: dict[str | None, tuple[str, ...]] = {
        None: ("tensorrt-fp16", "tensorrt-int8"),
        "fp16": ("tensorrt-fp16",),
        "int8": ("tensorrt-int8",),
    }
    batch_hint = (256, 131072)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if _tensorrt() is None:
            return "TensorRT is not installed (pip install tensorrt-cu13, or tensorrt-lean-cu13 for version-compatible engines)"
        cudart = cuda_runtime()
        if cudart is None:
            return "cuda-python is not installed (pip install cuda-python)"
        err, count = cudart.cudaGetDeviceCount()
        if int(err) != 0 or count == 0:
            return "no CUDA GPU is visible"
        return None

    @classmethod
    def select(cls, manifest: Manifest, precision: str | None, artifact: str | None = None) -> Artifact:
        chosen = pick_artifact(manifest, cls.preference, precision, artifact, cls.formats)
        trt, cudart = _tensorrt(), cuda_runtime()
        if trt is not None and cudart is not None:
            problem = compatibility_problem(chosen.details, trt.__name__, trt.__version__, compute_capability(cudart), gpu_name(cudart))
            if problem:
                raise BackendUnavailable(f"{chosen.file} cannot run here: {problem}. Rebuild it here: seaembed export … --target tensorrt")
        return chosen

    def __init__(self, engine, artifact: Artifact, cudart, trt):
        self.artifact = artifact
        self.engine = engine
        self._cudart = cudart
        self._device: dict[str, int] = {}
        self._pinned: dict[str, int] = {}
        self._host: dict[str, np.ndarray] = {}
        self.stream = None
        self.context = engine.create_execution_context()
        if self.context is None:
            raise BackendUnavailable(f"TensorRT could not create an execution context for {artifact.file} (GPU memory?)")
        try:
            self._allocate(trt)
        except BaseException:
            self.close()
            raise

    def _allocate(self, trt) -> None:
        engine, cudart = self.engine, self._cudart
        self.stream = _check(cudart.cudaStreamCreate())
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self._dtypes = {n: _NUMPY_DTYPES[engine.get_tensor_dtype(n).name] for n in names}
        _, _, largest = engine.get_tensor_profile_shape(self._inputs[0], 0)  # (min, opt, max) of profile 0
        self.max_batch, self.max_seq = int(largest[0]), int(largest[1])
        self.hidden = int(engine.get_tensor_shape(self._outputs[0])[-1])
        counts = {n: self.max_batch * self.max_seq for n in self._inputs} | {n: self.max_batch * self.hidden for n in self._outputs}
        for name, count in counts.items():
            nbytes = count * np.dtype(self._dtypes[name]).itemsize
            self._device[name] = _check(cudart.cudaMalloc(nbytes))
            self._pinned[name] = _check(cudart.cudaMallocHost(nbytes))
            buffer = (ctypes.c_byte * nbytes).from_address(int(self._pinned[name]))
            self._host[name] = np.frombuffer(buffer, dtype=self._dtypes[name], count=count)
            if not self.context.set_tensor_address(name, int(self._device[name])):
                raise RuntimeError(f"TensorRT refused the device buffer of {name!r}")

    @classmethod
    def load(cls, bundle_dir: Path, manifest: Manifest, precision: str | None, threads: int | None, artifact: str | None = None) -> TensorRTBackend:
        reason = cls.unavailable_reason()
        if reason:
            raise BackendUnavailable(reason)
        trt, cudart = _tensorrt(), cuda_runtime()
        chosen = cls.select(manifest, precision, artifact)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        if chosen.details.get("version_compatible"):
            runtime.engine_host_code_allowed = True  # version-compatible plans embed the lean runtime's code
        engine = runtime.deserialize_cuda_engine((Path(bundle_dir) / chosen.file).read_bytes())
        if engine is None:
            raise BackendUnavailable(f"TensorRT could not deserialize {chosen.file} (see TensorRT's log above)")
        return cls(engine, chosen, cudart, trt)

    @property
    def max_batch_size(self) -> int | None:
        return self.max_batch

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, normalized: bool = True) -> np.ndarray:
        if self.stream is None:
            raise RuntimeError("this TensorRT backend was closed")
        cudart = self._cudart
        batch, seq = input_ids.shape
        if batch > self.max_batch or seq > self.max_seq:
            raise ValueError(f"batch {batch}×{seq} exceeds the engine's profile {self.max_batch}×{self.max_seq}; split the batch or rebuild with a larger --trt-max-batch")
        output = "sentence_embedding" if normalized or "pooled_embedding" not in self._outputs else "pooled_embedding"
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        for name, array in (("input_ids", input_ids), ("attention_mask", attention_mask)):
            staged = self._host[name][: batch * seq]
            staged[:] = array.reshape(-1)  # casts to the engine's input dtype
            _check(cudart.cudaMemcpyAsync(self._device[name], staged.ctypes.data, staged.nbytes, h2d, self.stream))
            if not self.context.set_input_shape(name, (batch, seq)):
                raise ValueError(f"TensorRT refused input shape {name}={batch}×{seq} (profile 1×1 … {self.max_batch}×{self.max_seq})")
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed (see TensorRT's log above)")
        result = self._host[output][: batch * self.hidden]
        _check(cudart.cudaMemcpyAsync(result.ctypes.data, self._device[output], result.nbytes, d2h, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return result.reshape(batch, self.hidden).astype(np.float32, copy=True)

    def close(self) -> None:
        """Free the device and pinned buffers and the stream; the backend is unusable afterwards. Idempotent."""
        cudart = self._cudart
        if self.stream is not None:
            cudart.cudaStreamSynchronize(self.stream)
        self._host = {}  # the numpy views must not outlive the pinned memory under them
        for pointer in self._device.values():
            cudart.cudaFree(pointer)
        for pointer in self._pinned.values():
            cudart.cudaFreeHost(pointer)
        self._device, self._pinned = {}, {}
        if self.stream is not None:
            cudart.cudaStreamDestroy(self.stream)
            self.stream = None
        self.context = None
        self.engine = None

    def describe(self) -> dict:
        details = self.artifact.details
        return {
            "backend": self.name,
            "engine": "tensorrt",
            "artifact": self.artifact.name,
            "precision": self.artifact.precision,
            "tensorrt_version": details.get("tensorrt_version"),
            "compute_capability": details.get("compute_capability"),
            "hardware_compatibility_level": details.get("hardware_compatibility_level", "NONE"),
            "version_compatible": bool(details.get("version_compatible")),
            "max_batch": getattr(self, "max_batch", None),
        }
