"""ONNX Runtime on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..cpus import available_cpus
from ..manifest import Artifact, Manifest
from .base import BackendUnavailable, pick_artifact

# What ONNX Runtime computes a fused 8-bit MatMulNBits in (see session_options): 4, its default, quantises
# the activations per block. Level 1 (FP32) ran 16 x 128 batches at 0.98x the float graph against 0.84x, but
# on trained e5-small it moved one near-tie retrieval pair past the dynamic INT8 gate (recall 0.9091 < 0.9318).
MATMULNBITS_ACCURACY_LEVEL = 4


class OnnxCpuBackend:
    name = "cpu"
    provider = "CPUExecutionProvider"
    formats = ("onnx",)
    # Default: the fastest graph that is exact (fp32 within 1e-4 of PyTorch); lossy graphs only when asked for.
    preference: dict[str | None, tuple[str, ...]] = {
        None: ("onnx-fp32-ort", "onnx-fp32"),
        "fp32": ("onnx-fp32-ort", "onnx-fp32"),
        "int8": ("onnx-int8-dynamic", "onnx-int8-qdq"),
        "fp16": ("onnx-fp16",),
    }

    # (max_batch_size, max_batch_tokens) for servers: measured on a 2-core Sapphire Rapids,
    # batches of 8-16 similar-length inputs beat wide ones by 10-40% per token.
    batch_hint = (16, 4096)

    def __init__(self, session, artifact: Artifact, threads: int):
        self.session = session
        self.artifact = artifact
        self.threads = threads
        self._outputs = {o.name for o in session.get_outputs()}

    @classmethod
    def unavailable_reason(cls) -> str | None:
        try:
            import onnxruntime as ort
        except ModuleNotFoundError:
            return "onnxruntime is not installed: pip install onnxruntime"
        if cls.provider not in ort.get_available_providers():
            return f"onnxruntime here has no {cls.provider} (providers: {ort.get_available_providers()})"
        return None

    @classmethod
    def session_options(cls, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Int8-stored float weights (DequantizeLinear → MatMul) fuse into MatMulNBits: pinned to the level the
        # export gate measured, whatever a later ONNX Runtime's default becomes.
        options.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", str(MATMULNBITS_ACCURACY_LEVEL))
        return options

    @classmethod
    def select(cls, manifest: Manifest, precision: str | None, artifact: str | None = None) -> Artifact:
        return pick_artifact(manifest, cls.preference, precision, artifact, cls.formats)

    @classmethod
    def load(cls, bundle_dir: Path, manifest: Manifest, precision: str | None, threads: int | None, artifact: str | None = None) -> OnnxCpuBackend:
        reason = cls.unavailable_reason()
        if reason:
            raise BackendUnavailable(reason)
        import onnxruntime as ort

        artifact = cls.select(manifest, precision, artifact)
        threads = threads or available_cpus()
        session = ort.InferenceSession(
            str(Path(bundle_dir) / artifact.file), cls.session_options(threads), providers=[cls.provider]
        )
        return cls(session, artifact, threads)

    @property
    def max_batch_size(self) -> int | None:
        # dynamic int8 vectors depend on their batch-mates: stay within what the export gate measured
        return self.artifact.details.get("max_batch")

    def _output_name(self, normalized: bool) -> str:
        """sentence_embedding (as the model defines it), or the mean before Normalize when asked and present."""
        return "sentence_embedding" if normalized or "pooled_embedding" not in self._outputs else "pooled_embedding"

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, normalized: bool = True) -> np.ndarray:
        output = self._output_name(normalized)
        (result,) = self.session.run([output], {"input_ids": input_ids, "attention_mask": attention_mask})
        return np.asarray(result, dtype=np.float32)

    def close(self) -> None:
        """Nothing to free by hand: the session's memory goes with the object."""

    def describe(self) -> dict:
        return {
            "backend": self.name,
            "engine": "onnxruntime",
            "provider": self.provider,
            "artifact": self.artifact.name,
            "precision": self.artifact.precision,
            "threads": self.threads,
        }
