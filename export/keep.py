"""`seaembed export --keep`: check the names before hours of export, prune the bundle after.

Every artifact is still built and gated (the INT8 graphs are made from the FP32 ones); only
the named ones, the tokenizer and the manifest end up in the bundle.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from seaembed.runtime.bundle import parse_names, prune_bundle
from seaembed.runtime.manifest import Manifest, load_manifest

from . import builders
from .builders import ExportSettings


def planned_artifacts(precisions: Sequence[str], target: str, ort_fused: bool, cuda: bool, cuda_attention: Sequence[str] = (), openvino: bool = False) -> list[str]:
    """Names of the artifacts export_bundle builds for these settings, in build order (the builders' own lists)."""
    return builders.planned_artifacts(ExportSettings(tuple(precisions), target, ort_fused, cuda, tuple(cuda_attention), openvino))


def check_keep(keep: str | Sequence[str] | None, planned: Sequence[str]) -> list[str] | None:
    """The names to keep, or ValueError naming any this export would not build and what it builds."""
    if keep is None:
        return None
    names = parse_names(keep)
    if not names:
        raise ValueError(f"--keep names no artifact; this export builds: {', '.join(planned)}")
    unknown = [n for n in names if n not in planned]
    if unknown:
        hints = {"onnx-fp16-ort": "it is built only where onnxruntime has CUDA", "tensorrt-": "add --target tensorrt"}
        hint = next((h for prefix, h in hints.items() if any(n.startswith(prefix) for n in unknown)), "add the --precision that builds it")
        raise ValueError(f"--keep {', '.join(unknown)}: this export does not build it ({hint}); it builds: {', '.join(planned)}")
    return names


def check_export_keep(keep: Sequence[str] | None, precisions: Sequence[str], target: str, cuda_attention: Sequence[str] = ()) -> None:
    """The CLI's check before an export starts: ValueError for a --keep name this export would not build
    (the command line reports it as a usage error, exit 2)."""
    if keep is None:
        return
    check_keep(keep, builders.planned_artifacts(ExportSettings.probe(precisions, target, True, cuda_attention)))


def apply_keep(staging: Path, keep: list[str] | None, manifest: Manifest) -> Manifest:
    """Remove from the finished (staged) bundle every artifact not kept; its files were hashed moments ago."""
    if not keep:
        return manifest
    prune_bundle(staging, keep, verify=False)
    return load_manifest(staging)
