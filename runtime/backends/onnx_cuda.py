"""ONNX Runtime on an NVIDIA GPU (CUDA execution provider), FP16 graphs, I/O binding.

Default graphs (runtime/backends/cuda_choice.py has the pure choice and the measurements behind it):
- padded batches: onnx-fp16-mha (MultiHeadAttention, key-length mask), else what older bundles have
  (onnx-fp16-ort, onnx-fp16);
- onnx-fp16-packed (padding-free), where the bundle has it: the backend is then `ragged` (the Embedder
  hands it token id lists, batched to a token budget) and a batch goes to the packed graph when
  padding would be more than PACKED_WASTE_THRESHOLD of it (SEAEMBED_CUDA_PACKED_WASTE overrides);
- CUDA graphs replay padded batches up to 8 × 128 tokens (runtime/backends/cuda_graphs.py);
  SEAEMBED_CUDA_GRAPHS=0 turns them off.
artifact="..." runs that graph alone (a named packed graph still sends tiny batches to a padded one).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..batching import pad_batch
from ..integrity import verify_files
from ..manifest import Artifact, Manifest
from ..packing import pack, plan_packed_batches
from .base import BackendUnavailable
from .cuda_choice import (
    PACKED_MIN_BATCH,
    PADDED_FP16,
    CudaChoice,
    choose,
    cuda_graphs_enabled,
    graph_candidates,
    packed_waste_threshold,
    takes_packed,
)
from .onnx_cpu import OnnxCpuBackend

log = logging.getLogger("seaembed")


class OnnxCudaBackend(OnnxCpuBackend):
    name = "cuda"
    provider = "CUDAExecutionProvider"
    formats = ("onnx",)
    preference: dict[str | None, tuple[str, ...]] = {
        None: (*PADDED_FP16, "onnx-fp32"),
        "fp16": PADDED_FP16,
        "fp32": ("onnx-fp32",),
    }
    # wide batches keep the tensor cores busy; the token budget bounds activation memory
    batch_hint = (128, 65536)

    def __init__(
        self,
        session,
        artifact: Artifact,
        threads: int,
        padded: OnnxCudaBackend | None = None,
        graphs=None,
        pad_id: int = 1,
        packed: OnnxCudaBackend | None = None,
        choice: CudaChoice | None = None,
    ):
        """session/artifact: the graph the choice named first (the packed one when it was named).

        padded: the padded companion of a packed graph; packed: the packed companion of a padded one.
        """
        super().__init__(session, artifact, threads)
        self._is_packed = bool(artifact.details.get("packed"))
        self._padded = padded if self._is_packed else self
        self._packed = self if self._is_packed else packed
        self.ragged = self._packed is not None
        self._graphs = graphs
        self._pad_id = pad_id
        self.choice = choice or CudaChoice(padded=None if self._is_packed else artifact.name, packed=artifact.name if self._is_packed else None)

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
        runnable = [a.name for a in manifest.artifacts if a.format == "onnx" and a.parity.get("passed") is not False]
        try:
            choice = choose(runnable, selected.name, explicit=artifact is not None, packed_waste=packed_waste_threshold())
            want_graphs = cuda_graphs_enabled() and not (artifact is not None and selected.details.get("packed"))
        except ValueError as err:  # a malformed SEAEMBED_CUDA_* setting
            raise BackendUnavailable(str(err)) from err
        by_name = {a.name: a for a in manifest.artifacts}
        pad_id = int(manifest.architecture.get("pad_id", 1))

        def companion(name: str | None) -> OnnxCudaBackend | None:
            if name is None or name == selected.name:
                return None
            verify_files(bundle_dir, by_name[name].sha256)  # select()'s artifact was verified by the caller
            return cls(cls._session(bundle_dir / by_name[name].file, threads), by_name[name], threads, pad_id=pad_id)

        session = cls._session(bundle_dir / selected.file, threads)
        other = companion(choice.packed if choice.padded == selected.name else choice.padded)
        graphs = None
        if want_graphs:
            candidates = graph_candidates(choice, runnable)
            for name in candidates[:1] if artifact is not None else candidates:  # a named graph is captured as itself or not at all
                if name not in (selected.name, other.artifact.name if other else None):  # a fallback graph: not verified yet
                    verify_files(bundle_dir, by_name[name].sha256)
                graphs = cls._graph_runner(bundle_dir, by_name[name], manifest.embedding_dim, threads)
                if graphs is not None:
                    break
        if selected.details.get("packed"):
            if other is not None:
                other._graphs = graphs
            backend = cls(session, selected, threads, padded=other, pad_id=pad_id, choice=choice)
        else:
            backend = cls(session, selected, threads, graphs=graphs, pad_id=pad_id, packed=other, choice=choice)
        log.info("cuda backend: %s", ", ".join(f"{k}={v}" for k, v in backend.selection().items()))
        return backend

    @classmethod
    def _graph_runner(cls, bundle_dir: Path, artifact: Artifact, hidden: int, threads: int):
        """A CudaGraphRunner on this padded graph, or None (logged) when ORT cannot capture it."""
        from .cuda_graphs import CudaGraphRunner

        try:
            return CudaGraphRunner(str(bundle_dir / artifact.file), hidden, cls.session_options(threads), artifact=artifact.name)
        except Exception as err:  # noqa: BLE001 - e.g. a node ORT places on the CPU: no capture possible
            log.warning("CUDA graphs: %s cannot be captured (%s)", artifact.name, err)
            return None

    def selection(self) -> dict:
        """Which graph runs what: the choice, and the CUDA graph's artifact (None: no CUDA graphs)."""
        graphs = self._padded._graphs if self._padded is not None else None
        return dict(self.choice.describe(), cuda_graphs=graphs.artifact if graphs is not None else None)

    def plan(self, lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None) -> list[list[int]]:
        """Batches for embed_ragged: a real-token budget, no padding to account for."""
        return plan_packed_batches(lengths, batch_size, max_batch_tokens or self.batch_hint[1])

    def embed_ragged(self, sequences: Sequence[Sequence[int]], normalized: bool = True) -> np.ndarray:
        """Token id lists (with <s>/</s>) → vectors, on the packed or the padded graph (cuda_choice.takes_packed)."""
        if self._packed is None:
            return self.embed(*pad_batch(sequences, self._pad_id), normalized=normalized)
        if self._padded is not None:
            lengths = [len(s) for s in sequences]
            covers = self._padded._graphs is not None and self._padded._graphs.covers(len(lengths), max(lengths, default=0))
            if not takes_packed(lengths, self.choice.packed_waste, graph_covers=covers):
                return self._padded._embed_padded(*pad_batch(sequences, self._pad_id), normalized=normalized)
        return self._packed._run(pack(sequences), self._packed._output_name(normalized))

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, normalized: bool = True) -> np.ndarray:
        if self._is_packed:  # padded input to the packed graph: pack its real tokens
            rows = [ids[mask.astype(bool)].tolist() for ids, mask in zip(input_ids, attention_mask, strict=True)]
            return self.embed_ragged(rows, normalized)
        return self._embed_padded(input_ids, attention_mask, normalized)

    def _embed_padded(self, input_ids: np.ndarray, attention_mask: np.ndarray, normalized: bool) -> np.ndarray:
        output = self._output_name(normalized)
        batch, seq = input_ids.shape
        if self._graphs is not None and self._graphs.covers(batch, seq):
            try:
                return self._graphs.embed(input_ids, attention_mask, output)
            except Exception as err:  # noqa: BLE001 - capture fails at the first run of a bucket: run uncaptured from now on
                log.warning("CUDA graphs: replaying %s failed (%s); running without CUDA graphs", self._graphs.artifact, err)
                self._graphs = None
        return self._run({"input_ids": np.ascontiguousarray(input_ids), "attention_mask": np.ascontiguousarray(attention_mask)}, output)

    def _run(self, feeds: dict[str, np.ndarray], output: str) -> np.ndarray:
        binding = self.session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, array)
        binding.bind_output(output, "cuda")
        self.session.run_with_iobinding(binding)
        return np.asarray(binding.copy_outputs_to_cpu()[0], dtype=np.float32)

    def describe(self) -> dict:
        out = dict(super().describe(), engine="onnxruntime-gpu", **self.selection())
        if self.ragged:
            out.update(packed=True, padded_below=PACKED_MIN_BATCH)
        return out


__all__ = ["OnnxCudaBackend", "Artifact"]
