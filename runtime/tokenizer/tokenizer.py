"""XLM-R / E5 tokenizer read from tokenizer.json, without `tokenizers` or `sentencepiece`.

Pipeline (as `tokenizers` runs it): special tokens written in the text are extracted,
each remaining span is normalised (Precompiled charsmap, Strip, Replace), pre-tokenised
(Metaspace), segmented by the unigram model, and wrapped in <s> … </s>.

Two implementations run it: the compiled core (native_engine.py, used when the extension is
built) and the pure-Python reference (python_engine.py, the fallback; SEAEMBED_TOKENIZER=python
forces it). Both give the same ids; this class holds what they share: prompts, limits,
argument checks and the errors.
"""

from __future__ import annotations

import copy
import functools
import gc
import logging
import os
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..cpus import available_cpus
from ..integrity import sha256_file
from ..json_limits import JsonLimitError, read_json_file
from ..manifest_schema import MAX_TOKENIZER_BYTES
from .compiled_form import NativeUnsupported
from .errors import InputTooLongError, InvalidTextError, TokenizerConfigError
from .native_engine import NativeEngine, compile_engine, load_compiled, native_module
from .python_engine import PythonEngine
from .spec import TokenizerSpec

log = logging.getLogger("seaembed")
IMPLEMENTATIONS = ("auto", "native", "python")


@functools.cache
def _log_fallback(reason: str) -> None:
    log.warning("seaembed uses its pure-Python tokenizer (slower, same ids): %s", reason)


def _use_native(implementation: str | None):
    """The extension module when the compiled core should run, else None (after logging why, once)."""
    choice = implementation or os.environ.get("SEAEMBED_TOKENIZER") or "auto"
    if choice not in IMPLEMENTATIONS:
        raise ValueError(f"tokenizer implementation {choice!r} is not one of {', '.join(IMPLEMENTATIONS)} (SEAEMBED_TOKENIZER)")
    if choice == "python":
        return None
    native, reason = native_module()
    if native is None:
        if choice == "native":
            raise RuntimeError(f"the compiled tokenizer was requested but cannot be used: {reason}")
        _log_fallback(reason)
    return native


@contextmanager
def _gc_paused():
    """The 250k-piece vocabulary is ~1M small objects: the cyclic GC has nothing to find in them
    but would walk them repeatedly while they are built."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if gc_was_enabled:
            gc.enable()


def _read_spec(path: Path) -> TokenizerSpec:
    try:
        data = read_json_file(path, MAX_TOKENIZER_BYTES)
    except JsonLimitError as err:
        raise TokenizerConfigError(f"{path} {err}") from None
    if not isinstance(data, dict):
        raise TokenizerConfigError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return TokenizerSpec.parse(data)


def _engine_from_spec(spec: TokenizerSpec, native, sha256: str | None, max_tokens: int, threads: int | None):
    if native is not None:
        try:
            return compile_engine(native, spec, sha256, max_tokens, threads or available_cpus())
        except NativeUnsupported as err:
            _log_fallback(f"the compiled core does not implement {err}")
    return PythonEngine(spec, max_tokens)


class Tokenizer:
    """Turns text into model input ids, identical to transformers' XLMRobertaTokenizerFast."""

    def __init__(
        self,
        spec: dict,
        max_tokens: int,
        prompts: dict[str, str] | None = None,
        implementation: str | None = None,
        threads: int | None = None,
    ):
        with _gc_paused():
            engine = _engine_from_spec(TokenizerSpec.parse(spec), _use_native(implementation), None, max_tokens, threads)
        self._setup(engine, max_tokens, prompts)

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        max_tokens: int = 512,
        prompts: dict[str, str] | None = None,
        *,
        sha256: str | None = None,
        implementation: str | None = None,
        threads: int | None = None,
    ) -> Tokenizer:
        """Load tokenizer.json. sha256 (hex), when the caller has verified it, saves hashing the file.

        implementation: "auto" (compiled core when built), "native" or "python"; default from
        SEAEMBED_TOKENIZER. threads: batch threads (default available_cpus()).
        """
        path = Path(path)
        native = _use_native(implementation)
        engine = None
        if native is not None:
            sha256 = sha256 or sha256_file(path)
            engine = load_compiled(native, path, sha256, max_tokens, threads or available_cpus())
        if engine is None:
            with _gc_paused():
                engine = _engine_from_spec(_read_spec(path), native, sha256, max_tokens, threads)
        tokenizer = cls.__new__(cls)
        tokenizer._setup(engine, max_tokens, prompts)
        return tokenizer

    def _setup(self, engine: NativeEngine | PythonEngine, max_tokens: int, prompts: dict[str, str] | None) -> None:
        if max_tokens <= len(engine.prefix_ids) + len(engine.suffix_ids):
            raise TokenizerConfigError(f"max_tokens={max_tokens} leaves no room for text between the special tokens")
        self._engine = engine
        self.implementation: str = engine.name
        self.max_tokens = int(max_tokens)
        self.prompts = dict(prompts or {})
        self.prefix_ids: list[int] = list(engine.prefix_ids)
        self.suffix_ids: list[int] = list(engine.suffix_ids)
        self.pad_id: int = engine.pad_id
        self.vocab_size: int = engine.vocab_size

    @property
    def threads(self) -> int:
        """Threads a batch call may use (the compiled core; the Python reference uses one)."""
        return self._engine.threads

    @threads.setter
    def threads(self, value: int) -> None:
        if self.implementation == "native":
            self._engine.threads = value

    # -- arguments and errors shared by every method ------------------------------------

    def _prompt(self, prompt_name: str | None) -> str:
        if prompt_name is None:
            return ""
        if prompt_name not in self.prompts:
            known = ", ".join(sorted(self.prompts)) or "none"
            raise KeyError(f"prompt_name {prompt_name!r} is not defined by this model (known prompts: {known})")
        return self.prompts[prompt_name]

    @staticmethod
    def _keep_end(direction: str) -> bool:
        if direction not in ("right", "left"):
            raise ValueError(f"truncation direction must be 'right' or 'left', got {direction!r}")
        return direction == "left"

    def _raise(self, error: tuple, index: int | None) -> None:
        _position, kind, detail, more = error
        where = f"input {index}" if index is not None else "input"
        if kind == "type":
            raise InvalidTextError(f"{where} must be a str, got {detail}", index)
        if kind == "surrogate":
            raise InvalidTextError(f"{where} is not valid Unicode: lone surrogate U+{detail:04X} at character {more}", index)
        raise InputTooLongError(detail, self.max_tokens, exact=bool(more), index=index)

    def _run(self, texts, prompt_name, truncate, direction, add_special_tokens, first_index, padded=False):
        if isinstance(texts, str):
            raise TypeError("pass a list of strings; use encode() for one string")
        texts = texts if isinstance(texts, (list, tuple)) else list(texts)
        keep_end = self._keep_end(direction)
        prompt = self._prompt(prompt_name)
        if padded and self.implementation == "native":
            ids, truncated, error = self._engine.encode(texts, prompt, truncate, keep_end, add_special_tokens, True)
        else:
            ids, truncated, error = self._engine.encode(texts, prompt, truncate, keep_end, add_special_tokens)
        if error is not None:
            if error[1] == "type":  # the type's Python name, whichever engine saw it
                error = (error[0], "type", type(texts[error[0]]).__name__, None)
            self._raise(error, first_index + error[0])
        return ids, truncated

    def with_max_tokens(self, max_tokens: int) -> Tokenizer:
        """The same tokenizer with another length limit; it shares the vocabulary, so it costs nothing.

        The limit lives in the engine (both engines truncate there), so the view gets its own engine copy.
        """
        if max_tokens <= len(self.prefix_ids) + len(self.suffix_ids):
            raise TokenizerConfigError(f"max_tokens={max_tokens} leaves no room for text between the special tokens")
        view = copy.copy(self)
        view._engine = copy.copy(self._engine)
        view._engine.max_tokens = view.max_tokens = int(max_tokens)
        return view

    # -- text → ids ---------------------------------------------------------------------

    def encode(
        self,
        text: str,
        prompt_name: str | None = None,
        truncate: bool = True,
        add_special_tokens: bool = True,
        index: int | None = None,
        direction: str = "right",
    ) -> list[int]:
        """Ids with <s>/</s>; longer inputs are truncated to max_tokens (keeping </s>) or rejected.

        direction "left" keeps the end of the text instead of its beginning.
        """
        keep_end = self._keep_end(direction)
        ids, _truncated, error = self._engine.encode([text], self._prompt(prompt_name), truncate, keep_end, add_special_tokens)
        if error is not None:
            if error[1] == "type":
                error = (0, "type", type(text).__name__, None)
            self._raise(error, index)
        return ids[0]

    def encode_batch(
        self,
        texts: Sequence[str],
        prompt_name: str | None = None,
        truncate: bool = True,
        direction: str = "right",
        add_special_tokens: bool = True,
        *,
        first_index: int = 0,
    ) -> list[list[int]]:
        """encode() of every text, in order, on up to `threads` threads with the GIL released.

        The first bad input raises with its `index` (InvalidTextError; InputTooLongError when
        truncate is False); indices count from first_index (for callers encoding a slice).
        """
        return self._run(texts, prompt_name, truncate, direction, add_special_tokens, first_index)[0]

    def encode_batch_truncating(
        self, texts: Sequence[str], prompt_name: str | None = None, direction: str = "right", *, first_index: int = 0
    ) -> tuple[list[list[int]], list[int]]:
        """Ids of every text, over-long ones cut to max_tokens, and the indices of those that were cut."""
        ids, truncated = self._run(texts, prompt_name, True, direction, True, first_index)
        return ids, [first_index + i for i in truncated]

    def encode_batch_padded(
        self,
        texts: Sequence[str],
        prompt_name: str | None = None,
        truncate: bool = True,
        direction: str = "right",
        *,
        first_index: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(input_ids, attention_mask): int64 arrays of shape (len(texts), longest), right-padded, ready for an engine."""
        ids, _truncated = self._run(texts, prompt_name, truncate, direction, True, first_index, padded=True)
        if isinstance(ids, tuple):  # the compiled core filled the arrays itself
            ids_buffer, mask_buffer, rows, width = ids
            return (
                np.frombuffer(ids_buffer, dtype=np.int64).reshape(rows, width),
                np.frombuffer(mask_buffer, dtype=np.int64).reshape(rows, width),
            )
        width = max((len(row) for row in ids), default=0)
        input_ids = np.full((len(ids), width), self.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(ids), width), dtype=np.int64)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = seq
            attention_mask[row, : len(seq)] = 1
        return input_ids, attention_mask

    def count_tokens(self, text: str, prompt_name: str | None = None) -> int:
        """Tokens the model would see for `text` without truncation (special tokens included)."""
        prompt = self._prompt(prompt_name)
        if not isinstance(text, str):
            self._raise((0, "type", type(text).__name__, None), None)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            self._raise((0, "surrogate", ord(text[err.start]), err.start), None)
        return self._engine.count(prompt + text) + len(self.prefix_ids) + len(self.suffix_ids)

    def id_to_piece(self, token_id: int) -> str:
        added = self._engine.added_contents.get(token_id)
        if added is not None:
            return added
        return self._engine.piece(token_id) or ""

    def clear_cache(self) -> None:
        """Forget segmented words (the Python reference's word cache; benchmarks of cold runs)."""
        self._engine.clear_cache()
