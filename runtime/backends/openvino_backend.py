"""OpenVINO on the CPU: the NNCF-quantised INT8 IR, the FP32 graph in BF16 where the CPU has it, or FP32.

One compiled model and one infer request per backend (calls are serial, like ORT's session);
compiled blobs are cached under the seaembed cache directory, so a second load skips compilation.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from ..cpus import BF16_FLAGS, available_cpus, cpu_isa, cpu_model, has_bf16
from ..integrity import cache_dir
from ..manifest import Artifact, Manifest
from .base import BackendUnavailable, pick_artifact

# Inference precision per artifact precision: int8 layers run int8 and the rest f32; bf16 runs the
# FP32 graph with BF16 arithmetic (only where the ISA exists); fp32 is exact.
_HINTS = {"int8": "f32", "bf16": "bf16", "fp32": "f32"}


def compile_config(precision: str, threads: int) -> dict:
    """OpenVINO CPU properties for an artifact precision.

    One stream with every thread: the embedder calls the engine serially, so a second stream would
    sit idle (LATENCY hint); threads come from available_cpus(), never the host's core count.
    """
    return {
        "INFERENCE_PRECISION_HINT": _HINTS[precision],
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_NUM_THREADS": threads,
    }


def bf16_refusal(artifact: Artifact, isa: dict[str, bool] | None = None) -> str | None:
    """Why a bf16 artifact cannot run here (None when it can): no BF16 ISA, or its gate never ran."""
    isa = cpu_isa() if isa is None else isa
    if not has_bf16(isa):
        present = ", ".join(f for f, on in isa.items() if on) or "none of " + ", ".join(isa)
        return (
            f"{artifact.name} computes in BF16, which this CPU ({cpu_model()}) lacks: it needs {' or '.join(BF16_FLAGS)} "
            f"(it has {present}); without them OpenVINO would silently run FP32 or emulate BF16. "
            "Use precision='int8' (OpenVINO INT8) or 'fp32' instead"
        )
    if artifact.parity.get("passed") is not True:
        return (
            f"{artifact.name} was never gated: the bundle was exported on a CPU without BF16 "
            f"({artifact.parity.get('reason', 'gate not run')}). Re-export it here with `seaembed export … --precision bf16`"
        )
    return None


def inference_precision(compiled) -> str:
    """The precision OpenVINO really computes in ("f32", "bf16"): a bf16 hint resolves to f32 on CPUs without BF16."""
    return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()


class OpenVinoBackend:
    name = "openvino"
    engine = "openvino"
    formats = ("onnx", "openvino")
    # Default: the exact FP32 graph (OpenVINO reads the ONNX file); int8/bf16 only when asked for.
    preference: dict[str | None, tuple[str, ...]] = {
        None: ("onnx-fp32",),
        "fp32": ("onnx-fp32",),
        "int8": ("openvino-int8",),
        "bf16": ("openvino-bf16",),
    }
    batch_hint = (16, 4096)  # like ORT on CPU: small similar-length batches

    def __init__(self, compiled, artifact: Artifact, threads: int, precision: str, device_name: str, cache: Path):
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.artifact = artifact
        self.threads = threads
        self.precision = precision
        self.device_name = device_name
        self.cache = cache
        self._outputs = {name for out in compiled.outputs for name in out.get_names()}

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if importlib.util.find_spec("openvino") is None:
            return "openvino is not installed: pip install 'seaembed[openvino]'"
        return None

    @classmethod
    def select(cls, manifest: Manifest, precision: str | None, artifact: str | None = None) -> Artifact:
        chosen = pick_artifact(manifest, cls.preference, precision, artifact, cls.formats)
        if chosen.format == "onnx" and (chosen.precision != "fp32" or chosen.details.get("ort_only")):
            raise BackendUnavailable(f"{chosen.name} is an ONNX Runtime graph; OpenVINO runs onnx-fp32, openvino-int8 and openvino-bf16")
        if chosen.precision == "bf16":
            reason = bf16_refusal(chosen)
            if reason:
                raise BackendUnavailable(reason)
        return chosen

    @classmethod
    def load(cls, bundle_dir: Path, manifest: Manifest, precision: str | None, threads: int | None, artifact: str | None = None) -> OpenVinoBackend:
        reason = cls.unavailable_reason()
        if reason:
            raise BackendUnavailable(reason)
        import openvino as ov

        chosen = cls.select(manifest, precision, artifact)
        threads = threads or available_cpus()
        core = ov.Core()
        cache = cache_dir() / "openvino"
        cache.mkdir(parents=True, exist_ok=True)
        core.set_property({"CACHE_DIR": str(cache)})
        run_precision = "fp32" if chosen.format == "onnx" else chosen.precision
        # compile from the file path: with CACHE_DIR set, a second load imports the compiled blob
        compiled = core.compile_model(str(Path(bundle_dir) / chosen.file), "CPU", compile_config(run_precision, threads))
        if run_precision == "bf16" and inference_precision(compiled) != "bf16":
            raise BackendUnavailable(f"OpenVINO resolved the bf16 hint to {inference_precision(compiled)} on this CPU ({cpu_model()}): it has no BF16 kernels here")
        return cls(compiled, chosen, threads, run_precision, core.get_property("CPU", "FULL_DEVICE_NAME"), cache)

    @property
    def max_batch_size(self) -> int | None:
        return None  # static activation scales: a vector does not depend on its batch-mates

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, normalized: bool = True) -> np.ndarray:
        output = "sentence_embedding" if normalized or "pooled_embedding" not in self._outputs else "pooled_embedding"
        self.request.infer({"input_ids": input_ids, "attention_mask": attention_mask}, share_inputs=True)
        return np.array(self.request.get_tensor(output).data, dtype=np.float32)

    def describe(self) -> dict:
        isa = cpu_isa()
        return {
            "backend": self.name,
            "engine": self.engine,
            "engine_version": _version(),
            "device": "CPU",
            "device_name": self.device_name,
            "artifact": self.artifact.name,
            "precision": self.precision,
            "inference_precision": inference_precision(self.compiled),
            "isa": [flag for flag, on in isa.items() if on],
            "threads": self.threads,
            "streams": int(self.compiled.get_property("NUM_STREAMS")),
            "cache_dir": str(self.cache),
        }


def _version() -> str:
    import openvino as ov

    return ov.get_version()
