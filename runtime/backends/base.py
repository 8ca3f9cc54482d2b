"""The one interface every inference engine implements."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from ..bundle import missing_artifact_hint, pruned_record
from ..manifest import Artifact, Manifest

log = logging.getLogger("seaembed")


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (missing package, no GPU, no matching artifact); the message says why."""


class Backend(Protocol):
    name: str  # registry name, e.g. "cpu"
    artifact: Artifact
    batch_hint: tuple[int, int]  # (max_batch_size, max_batch_tokens) a server should use by default
    formats: tuple[str, ...]  # the artifact formats it opens ("onnx", "openvino", "tensorrt")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when the backend can run on this machine, else why not."""

    @classmethod
    def select(cls, manifest: Manifest, precision: str | None, artifact: str | None) -> Artifact:
        """The artifact load() will open (so its files can be verified first)."""

    @classmethod
    def load(cls, bundle_dir: Path, manifest: Manifest, precision: str | None, threads: int | None, artifact: str | None = None) -> Backend:
        """Open the bundle's artifact for this backend (the manifest's sha256 was already checked)."""

    @property
    def max_batch_size(self) -> int | None:
        """Largest batch the engine accepts (None: unbounded)."""

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, normalized: bool = True) -> np.ndarray:
        """int64 [batch, seq] ids and mask → float32 [batch, dim] (normalised per the model, or the raw mean)."""

    def describe(self) -> dict:
        """What /info and `seaembed info` report: engine, precision, providers, threads."""

    def close(self) -> None:
        """Release what the engine holds outside Python's heap (GPU buffers, streams); idempotent.

        Backends that hold nothing such implement it as a no-op (see OnnxCpuBackend);
        Embedder.close() calls it and tolerates backends written before it existed.
        """


def _gated(artifact: Artifact) -> Artifact:
    """The artifact, unless it missed its accuracy gate at export (recorded with its numbers, shipped without files)."""
    if artifact.parity.get("passed") is False:
        raise BackendUnavailable(
            f"{artifact.name} missed its accuracy gate at export, so the bundle has no files for it "
            f"({artifact.parity.get('reason', 'see the manifest')}); choose another precision or artifact (`seaembed info` lists them)"
        )
    return artifact


def pick_artifact(
    manifest: Manifest,
    preference: dict[str | None, tuple[str, ...]],
    precision: str | None,
    artifact: str | None = None,
    formats: tuple[str, ...] = ("onnx",),
) -> Artifact:
    """The artifact a backend should run.

    artifact: an exact artifact name, refused when it is not one of `formats` (the backend's).
    Otherwise the first name in preference[precision] (precision None: the backend's default) that
    the bundle has. Either way, one that missed its accuracy gate at export is refused.
    """
    have = ", ".join(a.name for a in manifest.artifacts)
    if artifact is not None:
        for candidate in manifest.artifacts:
            if candidate.name == artifact:
                if candidate.format not in formats:
                    raise BackendUnavailable(f"artifact {artifact!r} is in format {candidate.format!r}; this backend runs {' and '.join(formats)} artifacts")
                if precision is not None and candidate.precision != precision:
                    raise BackendUnavailable(f"artifact {artifact!r} has precision {candidate.precision!r}, not {precision!r}")
                return _gated(candidate)
        hint = f"; {missing_artifact_hint(manifest, [artifact])}" if pruned_record(manifest, artifact) else ""
        raise BackendUnavailable(f"bundle has no artifact named {artifact!r} (it has: {have}){hint}")
    if precision not in preference:
        runnable = sorted(p for p in preference if p)
        raise BackendUnavailable(f"this backend runs precisions {runnable}, not {precision!r}")
    by_name = {a.name: a for a in manifest.artifacts}
    for name in preference[precision]:
        if name in by_name:
            return _gated(by_name[name])
    if precision is None:
        # A pruned bundle (`seaembed bundle prune --keep onnx-int8-dynamic`) holds only what its owner chose to ship.
        for name in dict.fromkeys(n for names in preference.values() for n in names):
            if name in by_name:
                log.info("bundle has none of %s; running %s, the graph it was pruned to", ", ".join(preference[None]), name)
                return _gated(by_name[name])
    wanted = "any of " + ", ".join(preference[precision])
    raise BackendUnavailable(
        f"bundle has no artifact this backend can run at precision {precision or 'default'!r} ({wanted}; it has: {have}); "
        f"{missing_artifact_hint(manifest, preference[precision], precision)}"
    )
