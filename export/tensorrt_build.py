"""ONNX graph → TensorRT engine, strongly typed (TensorRT 10 and 11 alike).

Precision is already in the graph: the FP16 graph keeps LayerNorm, Softmax, GELU and
pooling in FP32, and the INT8 graph carries Q/DQ nodes, so no builder precision flag or
calibrator is used (TensorRT 11 removed both). Engines are tied to the TensorRT version
and the GPU's compute capability; the manifest records both and the runtime refuses a
mismatch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from seaembed.runtime.backends.tensorrt_backend import compute_capability
from seaembed.runtime.integrity import sha256_file
from seaembed.runtime.manifest import Artifact


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


def _network(builder, trt):
    flags = 0
    creation = getattr(trt, "NetworkDefinitionCreationFlag", None)
    # TensorRT 10 builds weakly typed unless asked; 11 is strongly typed only (the flag may be gone).
    if creation is not None and hasattr(creation, "STRONGLY_TYPED") and int(trt.__version__.split(".")[0]) < 11:
        flags |= 1 << int(creation.STRONGLY_TYPED)
    return builder.create_network(flags)


def build_engine(
    onnx_path: Path,
    out_dir: Path,
    precision: str,
    source_artifact: str,
    profile: EngineProfile = EngineProfile(),
    optimization_level: int = 3,
    timing_cache: Path | None = None,
    workspace_gib: float = 8.0,
) -> Artifact:
    try:
        import tensorrt as trt
    except ModuleNotFoundError as err:
        raise EngineBuildError("building engines needs TensorRT: pip install tensorrt (NVIDIA GPU machine)") from err
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
    trt_profile = builder.create_optimization_profile()
    minimum, optimum, maximum = profile.shapes()
    for name in ("input_ids", "attention_mask"):
        trt_profile.set_shape(name, minimum, optimum, maximum)
    config.add_optimization_profile(trt_profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.exists() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    started = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    build_seconds = time.perf_counter() - started
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path.name} (see the log above)")
    if timing_cache is not None:
        timing_cache.write_bytes(memoryview(config.get_timing_cache().serialize()))
    cc = compute_capability()
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
            "source": source_artifact,
            "strongly_typed": True,
            "profile": {"min": list(minimum), "opt": list(optimum), "max": list(maximum)},
            "builder_optimization_level": optimization_level,
            "timing_cache": str(timing_cache) if timing_cache else None,
            "build_seconds": round(build_seconds, 1),
        },
    )
