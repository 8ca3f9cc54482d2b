"""The artifact builders' contract: the settings they plan from, and the context they build in.

A builder is a module with three functions:
- names(settings) -> list[str]: the artifacts it would build for these settings, in build order
  (`seaembed export --keep` is checked against these before any work);
- check(settings) -> None: refuse settings it cannot build, before the long export starts;
- build(context) -> list[Artifact]: build, gate and describe them; a missed gate raises ParityError
  (or is recorded in the artifact, for extras the bundle can ship without).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from seaembed.runtime.manifest import Artifact

from .. import openvino_export
from ..checkpoint import Checkpoint
from ..providers import has_cuda_provider


@dataclass(frozen=True)
class ExportSettings:
    """What an export is asked to build, and what this machine can gate."""

    precisions: tuple[str, ...] = ("fp32",)
    target: str = "onnx"  # or "tensorrt": engines too
    ort_fused: bool = True  # the ORT-fused FP32 graph (always built when int8 is asked: its source)
    cuda: bool = False  # onnxruntime has CUDA here: the CUDA-only fused fp16 graph is built and gated
    cuda_attention: tuple[str, ...] = ()  # opt-in CUDA attention variants (mha, packed)
    openvino: bool = False  # OpenVINO and NNCF are installed: the INT8 IR is built beside the ORT graphs

    @classmethod
    def probe(cls, precisions: Sequence[str], target: str = "onnx", ort_fused: bool = True, cuda_attention: Sequence[str] = ()) -> ExportSettings:
        """These settings on this machine: CUDA and OpenVINO availability read here."""
        return cls(tuple(precisions), target, ort_fused, has_cuda_provider(), tuple(cuda_attention), openvino_export.unavailable_reason() is None)


@dataclass(frozen=True)
class EngineOptions:
    """How TensorRT engines are built (`--target tensorrt`): see export/tensorrt_build.py."""

    profile: Any = None  # tensorrt_build.EngineProfile; None: its defaults
    optimization_level: int = 3
    timing_cache: Path | None = None
    compatibility: dict | None = None  # hardware_compatibility, version_compatible


@dataclass
class BuildContext:
    """Everything a builder reads: the checkpoint, its PyTorch reference, the staged bundle, what is built so far."""

    settings: ExportSettings
    checkpoint: Checkpoint
    out_dir: Path  # the staged bundle: every file a builder writes goes here
    torch_model: Any  # parity.TorchReference: the checkpoint in sentence-transformers
    reference: list  # parity probes: (input_ids, attention_mask, PyTorch's embeddings) batches
    tokenizer_file: Path
    accuracy_gates: bool = True  # False (random-weight benchmarks): INT8 accuracy measured, recorded, not enforced
    engines: EngineOptions = field(default_factory=EngineOptions)
    built: list[Artifact] = field(default_factory=list)  # every artifact so far, in build order

    def artifact(self, name: str) -> Artifact:
        """An artifact an earlier builder made (the source of a derived one)."""
        for artifact in self.built:
            if artifact.name == name:
                return artifact
        raise KeyError(f"{name} has not been built; it builds: {', '.join(a.name for a in self.built)}")

    @cached_property
    def tokenizer(self):
        """The runtime's tokenizer on the bundle's tokenizer.json (calibration and held-out gates tokenize as the runtime does)."""
        from seaembed.runtime.tokenizer import Tokenizer

        return Tokenizer.from_file(self.tokenizer_file, max_tokens=self.checkpoint.max_tokens, prompts=self.checkpoint.prompts)

    @cached_property
    def accuracy_reference(self):
        """The held-out set's PyTorch embeddings and rankings, shared by every INT8/BF16 gate."""
        from ..accuracy import AccuracyReference

        return AccuracyReference(self.torch_model, self.checkpoint.prompts)


class ArtifactBuilder(Protocol):
    """One artifact family (a module in export/builders/ satisfies this)."""

    def names(self, settings: ExportSettings) -> list[str]: ...

    def check(self, settings: ExportSettings) -> None: ...

    def build(self, context: BuildContext) -> list[Artifact]: ...
