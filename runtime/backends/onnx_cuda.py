"""ONNX Runtime on an NVIDIA GPU (CUDA execution provider), FP16 graph, I/O binding."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..manifest import Artifact, Manifest
from .base import BackendUnavailable
from .onnx_cpu import OnnxCpuBackend


class OnnxCudaBackend(OnnxCpuBackend):
    name = "cuda"
    provider = "CUDAExecutionProvider"
    preference: dict[str | None, tuple[str, ...]] = {
        None: ("onnx-fp16-ort", "onnx-fp16", "onnx-fp32"),
        "fp16": ("onnx-fp16-ort", "onnx-fp16"),
        "fp32": ("onnx-fp32",),
    }
    # wide batches keep the tensor cores busy; the token budget bounds activation memory
    batch_hint = (128, 65536)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        reason = super().unavailable_reason()
        if reason:
            return f"{reason} (the GPU build is the onnxruntime-gpu package)"
        return None

    @classmethod
    def load(cls, bundle_dir: Path, manifest: Manifest, precision: str | None, threads: int | None, artifact: str | None = None) -> OnnxCudaBackend:
        reason = cls.unavailable_reason()
        if reason:
            raise BackendUnavailable(reason)
        import onnxruntime as ort

        if hasattr(ort, "preload_dlls"):  # CUDA/cuDNN from the nvidia-* wheels, when present
            try:
                ort.preload_dlls()
            except Exception:  # noqa: BLE001 - system libraries may serve instead
                pass
        selected = cls.select(manifest, precision, artifact)
        session = ort.InferenceSession(
            str(Path(bundle_dir) / selected.file),
            cls.session_options(threads or 1),
            providers=[(cls.provider, {"device_id": 0}), "CPUExecutionProvider"],
        )
        if session.get_providers()[0] != cls.provider:
            raise BackendUnavailable(f"onnxruntime could not start {cls.provider} (providers: {session.get_providers()}); is there a GPU and CUDA 12/13?")
        return cls(session, selected, threads or 1)

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, normalized: bool = True) -> np.ndarray:
        output = self._output_name(normalized)
        binding = self.session.io_binding()
        binding.bind_cpu_input("input_ids", np.ascontiguousarray(input_ids))
        binding.bind_cpu_input("attention_mask", np.ascontiguousarray(attention_mask))
        binding.bind_output(output, "cuda")
        self.session.run_with_iobinding(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)

    def describe(self) -> dict:
        return dict(super().describe(), engine="onnxruntime-gpu")


__all__ = ["OnnxCudaBackend", "Artifact"]
