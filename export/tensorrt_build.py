"""ONNX graph → TensorRT engine, strongly typed (TensorRT 10 and 11 alike).

Precision is already in the graph: the FP16 graph keeps LayerNorm, GELU and pooling in FP32
and writes attention as the FP16 block TensorRT fuses, and the INT8 graph is the same layout
with Q/DQ pairs, so no builder precision flag or calibrator is used (TensorRT 11 removed both).
Before any parsing, the GPU is read (compute capability, name) and the graph is checked
against onnx-tensorrt's operator table (export/tensorrt_readiness.py), so a missing package
or an unsupported node fails in seconds, not after a long build.

Engines are tied to the TensorRT version and the GPU. The manifest records both, plus the
hardware compatibility level and whether the engine is version compatible, and the runtime
refuses a mismatch (runtime/backends/tensorrt_backend.py).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from seaembed.runtime.backends.tensorrt_backend import compute_capability, cuda_runtime, gpu_name
from seaembed.runtime.integrity import sha256_file
from seaembed.runtime.manifest import Artifact

log = logging.getLogger("seaembed.export")

# --trt-hardware-compatibility values → TensorRT's HardwareCompatibilityLevel member names
HARDWARE_COMPATIBILITY = {"none": "NONE", "same-compute-capability": "SAME_COMPUTE_CAPABILITY"}


class EngineBuildError(RuntimeError):
    """TensorRT could not parse or build the graph; the message carries TensorRT's own errors."""


@dataclass(frozen=True)
class EngineProfile:
    max_batch: int = 256
    max_seq: int = 512
    opt_batch: int = 64
    opt_seq: int = 128

    def shapes(self) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
        return (1, 1), (self.opt_batch, self.opt_seq), (self.max_batch, self.max_seq)


def builder_unavailable_reason() -> str | None:
    """None when engines can be built here: the full `tensorrt` package (not the lean runtime) and cuda-python."""
    try:
        import tensorrt  # noqa: F401
    except ModuleNotFoundError:
        return "building engines needs the full TensorRT package (pip install tensorrt-cu13); tensorrt_lean only runs engines"
    if cuda_runtime() is None:
        return "building engines needs cuda-python to read the GPU's compute capability (pip install cuda-python)"
    return None


def _network(builder, trt):
    flags = 0
    creation = getattr(trt, "NetworkDefinitionCreationFlag", None)
    # TensorRT 10 builds weakly typed unless asked; 11 is strongly typed only (the flag is deprecated and ignored).
    if creation is not None and hasattr(creation, "STRONGLY_TYPED") and int(trt.__version__.split(".")[0]) < 11:
        flags |= 1 << int(creation.STRONGLY_TYPED)
    return builder.create_network(flags)


def attach_timing_cache(config, cache_bytes: bytes):
    """Attach a timing cache built from cache_bytes, or a fresh one if TensorRT rejects them; returns it."""
    for attempt in ([cache_bytes, b""] if cache_bytes else [b""]):
        cache = config.create_timing_cache(attempt)
        if cache is None:
            log.warning("TensorRT could not read the timing cache (%d bytes); starting an empty one", len(attempt))
            continue
        # set_timing_cache returns False when the cache was made on another GPU or TensorRT version
        if config.set_timing_cache(cache, ignore_mismatch=False):
            return cache
        log.warning("the timing cache belongs to another GPU or TensorRT version; starting an empty one")
    raise EngineBuildError("TensorRT refused even an empty timing cache (create_timing_cache/set_timing_cache failed)")


def save_timing_cache(config, path: Path) -> bool:
    cache = config.get_timing_cache()  # None when no cache is attached (Polygraphy guards the same way)
    if cache is None:
        log.warning("no timing cache to save to %s", path)
        return False
    data = cache.serialize()
    temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
    temporary.write_bytes(memoryview(data))
    temporary.replace(path)  # a build killed mid-write never leaves a truncated cache behind
    return True


def _check_graph(onnx_path: Path) -> str:
    from .tensorrt_readiness import check_file, table_summary

    problems = check_file(onnx_path)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise EngineBuildError(f"{onnx_path.name} is not ready for TensorRT ({table_summary()}): {shown}")
    return table_summary()


def build_engine(
    onnx_path: Path,
    out_dir: Path,
    precision: str,
    source_artifact: str,
    profile: EngineProfile = EngineProfile(),
    optimization_level: int = 3,
    timing_cache: Path | None = None,
    workspace_gib: float = 8.0,
    hardware_compatibility: str = "none",
    version_compatible: bool = False,
) -> Artifact:
    if hardware_compatibility not in HARDWARE_COMPATIBILITY:
        raise ValueError(f"hardware compatibility {hardware_compatibility!r} is not one of {', '.join(HARDWARE_COMPATIBILITY)}")
    reason = builder_unavailable_reason()
    if reason:
        raise EngineBuildError(reason)
    import tensorrt as trt

    cudart = cuda_runtime()
    cc, gpu = compute_capability(cudart), gpu_name(cudart)  # before parsing: fail in seconds, not after the build
    readiness = _check_graph(onnx_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = _network(builder, trt)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # reads external data beside the graph
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {onnx_path.name}: {errors}")
    for i in reversed(range(network.num_outputs)):
        tensor = network.get_output(i)
        if tensor.name == "token_embeddings":  # [batch, seq, hidden] nobody reads: skip computing and copying it
            network.unmark_output(tensor)
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gib * (1 << 30)))
    config.builder_optimization_level = optimization_level
    level_name = HARDWARE_COMPATIBILITY[hardware_compatibility]
    if not hasattr(trt, "HardwareCompatibilityLevel") or not hasattr(trt.HardwareCompatibilityLevel, level_name):
        raise EngineBuildError(f"TensorRT {trt.__version__} has no HardwareCompatibilityLevel.{level_name}; build with --trt-hardware-compatibility none")
    config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel, level_name)
    if version_compatible:
        # runs on later TensorRT 10.x/11.x of the same major and on the lean runtime (which needs such engines)
        config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    trt_profile = builder.create_optimization_profile()
    minimum, optimum, maximum = profile.shapes()
    for name in ("input_ids", "attention_mask"):
        trt_profile.set_shape(name, minimum, optimum, maximum)
    config.add_optimization_profile(trt_profile)
    attach_timing_cache(config, timing_cache.read_bytes() if timing_cache and timing_cache.exists() else b"")
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    build_seconds = time.perf_counter() - started
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path.name} (see the log above)")
    if timing_cache is not None:
        save_timing_cache(config, timing_cache)
    version = trt.__version__
    name = f"model.{precision}.sm{cc.replace('.', '')}.trt{version}.engine"
    (out_dir / name).write_bytes(memoryview(serialized))
    return Artifact(
        name=f"tensorrt-{precision}",
        format="tensorrt",
        precision=precision,
        file=name,
        sha256={name: sha256_file(out_dir / name)},
        inputs=[{"name": n, "dtype": "int64", "shape": ["batch", "sequence"]} for n in ("input_ids", "attention_mask")],
        outputs=[{"name": n, "dtype": "float32", "shape": ["batch", "hidden"]} for n in ("sentence_embedding", "pooled_embedding")],
        details={
            "tensorrt_version": version,
            "compute_capability": cc,
            "gpu": gpu,
            "hardware_compatibility_level": config.hardware_compatibility_level.name,
            "version_compatible": version_compatible,
            "source": source_artifact,
            "strongly_typed": True,
            "tensorrt_readiness": readiness,
            "profile": {"min": list(minimum), "opt": list(optimum), "max": list(maximum)},
            "builder_optimization_level": optimization_level,
            "timing_cache": str(timing_cache) if timing_cache else None,
            "build_seconds": round(build_seconds, 1),
        },
    )
