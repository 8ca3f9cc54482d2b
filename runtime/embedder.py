"""Embedder: bundle → tokenizer + backend → pooled, normalised vectors in input order."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .backends import Backend, BackendUnavailable, backend_candidates, backend_class
from .batching import pad_batch, plan_batches
from .integrity import verify_files
from .manifest import Manifest, load_manifest
from .tokenizer import InvalidTextError, Tokenizer

log = logging.getLogger("seaembed")

# Tokenize this many texts ahead while the engine works on the previous chunk.
_CHUNK_TEXTS = 1024


def reject_empty(texts: list) -> None:
    """The Python API's side of the empty-input policy: InvalidTextError naming the first empty string."""
    for i, text in enumerate(texts):
        if isinstance(text, str) and text == "":
            raise InvalidTextError(f"input {i} is an empty string; an empty string has no embedding", i)


class Embedder:
    def __init__(self, bundle_dir: Path, manifest: Manifest, tokenizer: Tokenizer, backend: Backend):
        self.bundle_dir = bundle_dir
        self.manifest = manifest
        self.tokenizer = tokenizer
        self.backend = backend

    @classmethod
    def load(
        cls,
        bundle_dir: str | Path,
        backend: str = "cpu",
        threads: int | None = None,
        precision: str | None = None,
        verify: bool = True,
        artifact: str | None = None,
    ) -> Embedder:
        """Open a bundle. backend: "cpu", another registered backend, or "auto" (fastest available).

        precision picks among the bundle's graphs ("fp32", "fp16", "int8"; default: the fastest
        exact one); artifact names one exactly (see `seaembed info`).
        """
        bundle_dir = Path(bundle_dir)
        manifest = load_manifest(bundle_dir)
        if verify:
            verify_files(bundle_dir, {manifest.tokenizer["file"]: manifest.tokenizer["sha256"]})
        tokenizer = Tokenizer.from_file(
            bundle_dir / manifest.tokenizer["file"],
            max_tokens=manifest.max_tokens,
            prompts=manifest.prompts,
            sha256=manifest.tokenizer["sha256"] if verify else None,  # just checked: no need to hash it again
        )
        engine = _load_backend(bundle_dir, manifest, backend, precision, threads, verify, artifact)
        return cls(bundle_dir, manifest, tokenizer, engine)

    def close(self) -> None:
        """Free the backend's device resources (GPU buffers, streams); servers call this at shutdown."""
        close = getattr(self.backend, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- facts -------------------------------------------------------------------------

    @property
    def dim(self) -> int:
        return self.manifest.embedding_dim

    @property
    def max_tokens(self) -> int:
        return self.manifest.max_tokens

    @property
    def prompts(self) -> dict[str, str]:
        return self.manifest.prompts

    def describe(self) -> dict:
        return {"model": self.manifest.model_name, "dim": self.dim, "max_tokens": self.max_tokens, **self.backend.describe()}

    # -- embedding -----------------------------------------------------------------------

    def encode(
        self,
        texts: str | Sequence[str],
        prompt_name: str | None = None,
        batch_size: int = 32,
        normalize: bool | None = None,
        truncate: bool = True,
        max_batch_tokens: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> np.ndarray:
        """Embed text(s): (dim,) for one string, (n, dim) float32 for a list, in input order.

        normalize None follows the model (E5: L2-normalised); False gives the raw mean.
        truncate False raises InputTooLongError instead of cutting an input to max_tokens.
        An empty string raises InvalidTextError: it has no embedding (the server and CLI refuse it too).
        """
        single = isinstance(texts, str)
        items = [texts] if single else list(texts)
        reject_empty(items)
        if prompt_name is None:
            prompt_name = self.manifest.default_prompt_name
        out = np.empty((len(items), self.dim), dtype=np.float32)
        chunks = [range(s, min(s + _CHUNK_TEXTS, len(items))) for s in range(0, len(items), _CHUNK_TEXTS)]

        def tokenize(chunk: range) -> list[list[int]]:
            texts = items[chunk.start : chunk.stop]
            return self.tokenizer.encode_batch(texts, prompt_name=prompt_name, truncate=truncate, first_index=chunk.start)

        if len(chunks) == 1:  # one chunk: nothing to overlap, so no thread on the latency path
            out[:] = self.embed_ids(tokenize(chunks[0]), batch_size, normalize, max_batch_tokens)
            if progress:
                progress(len(items), len(items))
            return out[0] if single else out
        done = 0
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(tokenize, chunks[0]) if chunks else None
            for n, chunk in enumerate(chunks):
                ids = pending.result()
                pending = pool.submit(tokenize, chunks[n + 1]) if n + 1 < len(chunks) else None
                out[chunk.start : chunk.stop] = self.embed_ids(ids, batch_size, normalize, max_batch_tokens)
                done += len(chunk)
                if progress:
                    progress(done, len(items))
        return out[0] if single else out

    def embed_ids(
        self,
        sequences: Sequence[Sequence[int]],
        batch_size: int = 32,
        normalize: bool | None = None,
        max_batch_tokens: int | None = None,
    ) -> np.ndarray:
        """Embed already-tokenized inputs (with <s>/</s>), in the given order."""
        out = np.empty((len(sequences), self.dim), dtype=np.float32)
        if not sequences:
            return out
        limit = self.backend.max_batch_size
        batch_size = min(batch_size, limit) if limit else batch_size
        lengths = [len(s) for s in sequences]
        use_model_norm = normalize is None or normalize == self.manifest.normalize
        # a ragged backend (the packed CUDA graph) takes token lists: no padding is ever made
        ragged = getattr(self.backend, "ragged", False)
        plan = self.backend.plan(lengths, batch_size, max_batch_tokens) if ragged else plan_batches(lengths, batch_size, max_batch_tokens)
        for batch in plan:
            if ragged:
                vectors = self.backend.embed_ragged([sequences[i] for i in batch], normalized=use_model_norm)
            else:
                input_ids, attention_mask = pad_batch([sequences[i] for i in batch], self.tokenizer.pad_id)
                vectors = self.backend.embed(input_ids, attention_mask, normalized=use_model_norm)
            if not use_model_norm and normalize:
                vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            if not np.all(np.isfinite(vectors)):
                raise FloatingPointError(
                    f"the {self.backend.name} backend produced NaN/Inf for a batch of {len(batch)} inputs"
                )
            out[batch] = vectors
        return out

    def encode_query(self, texts: str | Sequence[str], **kwargs) -> np.ndarray:
        return self.encode(texts, prompt_name=self._prompt_for("query"), **kwargs)

    def encode_document(self, texts: str | Sequence[str], **kwargs) -> np.ndarray:
        return self.encode(texts, prompt_name=self._prompt_for("document", "passage"), **kwargs)

    def _prompt_for(self, *names: str) -> str | None:
        for name in names:
            if name in self.prompts:
                return name
        return None


def _load_backend(
    bundle_dir: Path, manifest: Manifest, name: str, precision: str | None, threads: int | None, verify: bool, artifact: str | None
) -> Backend:
    candidates = backend_candidates(name, manifest, precision, artifact)
    reasons = []
    for candidate in candidates:
        cls = backend_class(candidate)
        reason = cls.unavailable_reason()
        if reason:
            reasons.append(f"{candidate}: {reason}")
            continue
        try:
            started = time.perf_counter()
            if verify:
                verify_files(bundle_dir, cls.select(manifest, precision, artifact).sha256)
            backend = cls.load(bundle_dir, manifest, precision, threads, artifact)
        except BackendUnavailable as err:
            reasons.append(f"{candidate}: {err}")
            continue
        if candidate != name:
            log.info("backend %s → %s (%s) in %.2fs", name, candidate, backend.artifact.name, time.perf_counter() - started)
        return backend
    raise BackendUnavailable("no backend could be loaded: " + "; ".join(reasons))
