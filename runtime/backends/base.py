"""The one interface every inference engine implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from ..manifest import Artifact, Manifest


class BackendUnavailable(RuntimeError):
    """The backend cannot run here (missing package, no GPU, no matching artifact); the message says why."""


class Backend(Protocol):
    name: str  # registry name, e.g. "cpu"
    artifact: Artifact

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when the backend can run on this machine, else why not."""

    @classmethod
    def load(cls, bundle_dir: Path, manifest: Manifest, precision: str | None, threads: int | None) -> Backend:
        """Open the bundle's artifact for this backend (the manifest's sha256 was already checked)."""

    @property
    def max_batch_size(self) -> int | None:
        """Largest batch the engine accepts (None: unbounded)."""

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, normalized: bool = True) -> np.ndarray:
        """int64 [batch, seq] ids and mask → float32 [batch, dim] (normalised per the model, or the raw mean)."""

    def describe(self) -> dict:
        """What /info and `seaembed info` report: engine, precision, providers, threads."""


def pick_artifact(manifest: Manifest, format: str, precision: str | None, preference: tuple[str, ...]) -> Artifact:
    """The artifact of `format` at `precision`, or the first of `preference` the bundle has."""
    if precision is not None:
        found = manifest.find(format=format, precision=precision)
        if not found:
            have = ", ".join(f"{a.format}/{a.precision}" for a in manifest.artifacts)
            raise BackendUnavailable(
                f"bundle has no {format} artifact at precision {precision!r} (it has: {have}); "
                f"re-export with `seaembed export … --precision {precision}`"
            )
        return found[0]
    for wanted in preference:
        found = manifest.find(format=format, precision=wanted)
        if found:
            return found[0]
    have = ", ".join(f"{a.format}/{a.precision}" for a in manifest.artifacts)
    raise BackendUnavailable(f"bundle has no {format} artifact this backend can run (it has: {have})")
