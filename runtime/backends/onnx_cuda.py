"""ONNX Runtime on an NVIDIA GPU (CUDA execution provider), FP16 graph, I/O binding.

Opt-in variants (built by `seaembed export --cuda-attention mha,packed`, picked by artifact name):
- onnx-fp16-mha: padded, MultiHeadAttention with a key-length mask;
- onnx-fp16-packed: padding-free. The backend is then `ragged`: the Embedder hands it token id
  lists, batched to a token budget, and it packs them (runtime/packing.py); batches of fewer than
  PACKED_MIN_BATCH inputs go to the bundle's padded FP16 graph, where packing gains nothing.
SEAEMBED_CUDA_GRAPHS=1 replays CUDA graphs for short padded batches (runtime/backends/cuda_graphs.py).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..batching import pad_batch
from ..integrity import verify_files
from ..manifest import Artifact, Manifest
from ..packing import pack, plan_packed_batches
from .base import BackendUnavailable
from .onnx_cpu import OnnxCpuBackend

log = logging.getLogger("seaembed")

# Below this many inputs the packed graph's bookkeeping outweighs the padding it saves
# (a guess until measured on a GPU: benchmarks/bench_gpu.py times both).
PACKED_MIN_BATCH = 4
_PADDED_COMPANIONS = ("onnx-fp16-mha", "onnx-fp16-ort", "onnx-fp16")


class OnnxCudaBackend(OnnxCpuBackend):
    name = "cuda"
    provider = "CUDAExecutionProvider"
    formats = ("onnx",)
    preference: dict[str | None, tuple[str, ...]] = {
        None: ("onnx-fp16-ort", "onnx-fp16", "onnx-fp32"),
        "fp16": ("onnx-fp16-ort", "onnx-fp16"),
        "fp32": ("onnx-fp32",),
    }
    # wide batches keep the tensor cores busy; the token budget bounds activation memory
    batch_hint = (128, 65536)

    def __init__(self, session, artifact: Artifact, threads: int, padded: OnnxCudaBackend | None = None, graphs=None, pad_id: int = 1):
        super().__init__(session, artifact, threads)
        self.ragged = bool(artifact.details.get("packed"))
        self._padded = padded
        self._graphs = graphs
        self._pad_id = pad_id

    @classmethod
    def unavailable_reason(cls) -> str | None:
        reason = super().unavailable_reason()
        if reason:
            return f"{reason} (the GPU build is the onnxruntime-gpu package)"
        return None

    @classmethod
    def _session(cls, path: Path, threads: int):
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), cls.session_options(threads), providers=[(cls.provider, {"device_id": 0}), "CPUExecutionProvider"])
        if session.get_providers()[0] != cls.provider:
            raise BackendUnavailable(f"onnxruntime could not start {cls.provider} (providers: {session.get_providers()}); is there a GPU and CUDA 12/13?")
        return session

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
        bundle_dir, threads = Path(bundle_dir), threads or 1
        selected = cls.select(manifest, precision, artifact)
        session = cls._session(bundle_dir / selected.file, threads)
        pad_id = int(manifest.architecture.get("pad_id", 1))
        padded_artifact = selected
        padded = None
        if selected.details.get("packed"):
            by_name = {a.name: a for a in manifest.artifacts}
            padded_artifact = next((by_name[n] for n in _PADDED_COMPANIONS if n in by_name), None)
            if padded_artifact is not None:
                verify_files(bundle_dir, padded_artifact.sha256)
                padded = cls(cls._session(bundle_dir / padded_artifact.file, threads), padded_artifact, threads, pad_id=pad_id)
        graphs = None
        if os.environ.get("SEAEMBED_CUDA_GRAPHS") == "1" and padded_artifact is not None:
            from .cuda_graphs import CudaGraphRunner

            try:
                graphs = CudaGraphRunner(str(bundle_dir / padded_artifact.file), manifest.embedding_dim, cls.session_options(threads))
            except Exception as err:  # noqa: BLE001 - e.g. a node ORT places on the CPU: no capture possible
                log.warning("SEAEMBED_CUDA_GRAPHS=1 but %s cannot be captured (%s); running without CUDA graphs", padded_artifact.file, err)
        return cls(session, selected, threads, padded=padded, graphs=graphs, pad_id=pad_id)

    def plan(self, lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None) -> list[list[int]]:
        """Batches for embed_ragged: a real-token budget, no padding to account for."""
        return plan_packed_batches(lengths, batch_size, max_batch_tokens or self.batch_hint[1])

    def embed_ragged(self, sequences: Sequence[Sequence[int]], normalized: bool = True) -> np.ndarray:
        """Token id lists (with <s>/</s>) → vectors, through the packed graph (or the padded one for tiny batches)."""
        if len(sequences) < PACKED_MIN_BATCH and self._padded is not None:
            return self._padded.embed(*pad_batch(sequences, self._pad_id), normalized=normalized)
        return self._run(pack(sequences), self._output_name(normalized))

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, normalized: bool = True) -> np.ndarray:
        output = self._output_name(normalized)
        batch, seq = input_ids.shape
        if self._graphs is not None and not self.ragged and self._graphs.covers(batch, seq):
            return self._graphs.embed(input_ids, attention_mask, output)
        if self.ragged:  # padded input to the packed graph: pack its real tokens
            rows = [ids[mask.astype(bool)].tolist() for ids, mask in zip(input_ids, attention_mask, strict=True)]
            return self.embed_ragged(rows, normalized)
        return self._run({"input_ids": np.ascontiguousarray(input_ids), "attention_mask": np.ascontiguousarray(attention_mask)}, output)

    def _run(self, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, array)
        binding.bind_output(output, "cuda")
        self.session.run_with_iobinding(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)

    def describe(self) -> dict:
        out = dict(super().describe(), engine="onnxruntime-gpu")
        if self.ragged:
            out.update(packed=True, padded_below=PACKED_MIN_BATCH, padded_artifact=self._padded.artifact.name if self._padded else None)
        if self._graphs is not None:
            out["cuda_graphs"] = True
        return out


__all__ = ["OnnxCudaBackend", "Artifact"]
