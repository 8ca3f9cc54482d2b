"""Texts → vectors a chunk at a time, with per-input accounting: tokens, truncation, windows, refusals.

What `Embedder.encode` does (tokenize, then `embed_ids` length-sorted batches), plus what a job
over a file needs to report: how many tokens each input cost, which were cut to max_tokens,
which were refused, and the over-length policy:

- ``error``: an input over max_tokens is refused (reported, not embedded);
- ``truncate``: it is cut to its first max_tokens tokens, exactly as `Embedder.encode` cuts it;
- ``chunk``: its tokens are split into overlapping windows of max_tokens (each window carries
  the prompt and the special tokens), every window is mean-pooled by the model, and the window
  vectors are combined by a mean weighted by each window's token count, i.e. mean pooling over
  all the windows' tokens (overlapping tokens count twice), then L2-normalised as the model does.

Inputs that fit get exactly `Embedder.encode`'s ids under every policy.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from ..tokenizer import InputTooLongError, InvalidTextError, Tokenizer

OVER_LENGTH = ("error", "truncate", "chunk")
CHUNK_OVERLAP = 128  # tokens shared by neighbouring windows, so no sentence is only ever seen cut in half


@dataclass
class Encoded:
    """One chunk's results; positions index the texts given to `encode_chunk`."""

    positions: list[int]  # inputs that got a vector, in order; vectors[k] belongs to positions[k]
    vectors: np.ndarray  # float32 (len(positions), dim)
    tokens: list[int]  # tokens the model ran per embedded input (all windows' for a chunked one)
    truncated: set[int] = field(default_factory=set)
    windows: dict[int, int] = field(default_factory=dict)  # chunked position → number of windows
    refused: dict[int, str] = field(default_factory=dict)  # position → why it got no vector


def check_policy(over_length: str) -> str:
    if over_length not in OVER_LENGTH:
        raise ValueError(f"over-length policy {over_length!r} is not one of {', '.join(OVER_LENGTH)}")
    return over_length


def _unbounded(tokenizer: Tokenizer) -> Tokenizer:
    """The same tokenizer without the length limit (shares the vocabulary, so it costs nothing)."""
    return tokenizer.with_max_tokens(sys.maxsize // 4)


def token_windows(tokenizer: Tokenizer, text: str, prompt_name: str | None, overlap: int = CHUNK_OVERLAP) -> list[list[int]]:
    """Overlapping max_tokens windows covering all of `text`, each with the prompt and special tokens."""
    prompt = tokenizer.prompts[prompt_name] if prompt_name else ""
    head = tokenizer.encode(prompt, add_special_tokens=False) if prompt else []
    body = _unbounded(tokenizer).encode(text, add_special_tokens=False)
    width = tokenizer.max_tokens - len(tokenizer.prefix_ids) - len(tokenizer.suffix_ids) - len(head)
    if width < 2:
        raise ValueError(f"the prompt {prompt_name!r} leaves {width} tokens per window; chunking needs at least 2")
    step = width - min(overlap, width // 2)
    windows = []
    start = 0
    while True:
        windows.append(tokenizer.prefix_ids + head + body[start : start + width] + tokenizer.suffix_ids)
        if start + width >= len(body):
            return windows
        start += step


def _tokenize(tokenizer: Tokenizer, texts: Sequence[str], prompt_name: str | None, over_length: str):
    """(ids per position or None, truncated, windows per chunked position, refused)."""
    refused: dict[int, str] = {}
    if over_length == "truncate":
        try:
            ids, cut = tokenizer.encode_batch_truncating(texts, prompt_name=prompt_name)
            return ids, set(cut), {}, refused
        except InvalidTextError:
            pass  # find every bad text one by one below
    ids_by_position: list[list[int] | None] = []
    truncated: set[int] = set()
    windows: dict[int, list[list[int]]] = {}
    for i, text in enumerate(texts):
        try:
            ids_by_position.append(tokenizer.encode(text, prompt_name=prompt_name, truncate=False, index=i))
        except InputTooLongError as err:
            if over_length == "truncate":
                ids_by_position.append(tokenizer.encode(text, prompt_name=prompt_name, truncate=True, index=i))
                truncated.add(i)
            elif over_length == "chunk":
                ids_by_position.append(None)
                windows[i] = token_windows(tokenizer, text, prompt_name)
            else:
                ids_by_position.append(None)
                given = err.n_tokens if err.exact else f"at least {err.n_tokens}"
                refused[i] = f"{given} tokens but the model accepts at most {err.limit}"
        except InvalidTextError as err:
            ids_by_position.append(None)
            refused[i] = str(err).replace(f"input {i} ", "", 1)
    return ids_by_position, truncated, windows, refused


def _embed(embedder, tokenized, batch_size: int, normalize: bool | None, max_batch_tokens: int | None) -> Encoded:
    ids_by_position, truncated, windows, refused = tokenized
    positions = [i for i, ids in enumerate(ids_by_position) if ids is not None or i in windows]
    plain = [i for i in positions if i not in windows]
    out = np.empty((len(positions), embedder.dim), dtype=np.float32)
    row_of = {p: k for k, p in enumerate(positions)}
    if plain:
        out[[row_of[p] for p in plain]] = embedder.embed_ids([ids_by_position[p] for p in plain], batch_size, normalize, max_batch_tokens)
    if windows:
        flat = [w for p in windows for w in windows[p]]
        raw = embedder.embed_ids(flat, batch_size, normalize=False, max_batch_tokens=max_batch_tokens)
        start = 0
        for p, group in windows.items():
            weights = np.array([len(w) for w in group], dtype=np.float64)
            mean = (raw[start : start + len(group)].astype(np.float64) * weights[:, None]).sum(0) / weights.sum()
            if normalize or (normalize is None and embedder.manifest.normalize):
                mean /= max(np.linalg.norm(mean), 1e-12)
            out[row_of[p]] = mean.astype(np.float32)
            start += len(group)
    tokens = [sum(len(w) for w in windows[p]) if p in windows else len(ids_by_position[p]) for p in positions]
    return Encoded(positions, out, tokens, truncated, {p: len(w) for p, w in windows.items()}, refused)


def _prompt(embedder, prompt_name: str | None) -> str | None:
    """The prompt to use (the model's default when None), refused early when the model lacks it."""
    prompt_name = embedder.manifest.default_prompt_name if prompt_name is None else prompt_name
    if prompt_name is not None and prompt_name not in embedder.prompts:
        known = ", ".join(sorted(embedder.prompts)) or "none"
        raise KeyError(f"prompt_name {prompt_name!r} is not defined by this model (known prompts: {known})")
    return prompt_name


def encode_chunk(
    embedder,
    texts: Sequence[str],
    prompt_name: str | None = None,
    over_length: str = "truncate",
    batch_size: int = 32,
    normalize: bool | None = None,
    max_batch_tokens: int | None = None,
) -> Encoded:
    check_policy(over_length)
    prompt_name = _prompt(embedder, prompt_name)
    return _embed(embedder, _tokenize(embedder.tokenizer, texts, prompt_name, over_length), batch_size, normalize, max_batch_tokens)


def encode_stream(
    embedder,
    texts: Sequence[str],
    prompt_name: str | None = None,
    over_length: str = "truncate",
    batch_size: int = 32,
    normalize: bool | None = None,
    chunk_size: int = 256,
    max_batch_tokens: int | None = None,
) -> Iterator[tuple[int, Encoded]]:
    """(offset of the chunk in texts, its Encoded) per chunk; the next chunk is tokenized while this one runs."""
    check_policy(over_length)
    prompt_name = _prompt(embedder, prompt_name)
    starts = range(0, len(texts), chunk_size)
    tokenizer = embedder.tokenizer

    def tokenize(start: int):
        return _tokenize(tokenizer, texts[start : start + chunk_size], prompt_name, over_length)

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(tokenize, starts[0]) if starts else None
        for n, start in enumerate(starts):
            tokenized = pending.result()
            pending = pool.submit(tokenize, starts[n + 1]) if n + 1 < len(starts) else None
            yield start, _embed(embedder, tokenized, batch_size, normalize, max_batch_tokens)
