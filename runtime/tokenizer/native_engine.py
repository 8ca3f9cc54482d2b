"""The compiled tokenizer core (native/, built by `pip install` where a C++17 compiler exists).

It runs the same stages as the Python reference, from a compact binary form of tokenizer.json
(compiled_form.py), and encodes batches with the GIL released on threads it owns.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from . import compiled_form
from .spec import TokenizerSpec

log = logging.getLogger("seaembed")

SOURCES = Path(__file__).resolve().with_name("native")


def source_hash(folder: Path) -> str:
    """Hash of the C++ sources; setup.py compiles the same value into the extension."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.suffix in (".cc", ".h"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


@functools.cache
def native_module() -> tuple[ModuleType | None, str]:
    """The extension module, or None and why it cannot be used."""
    try:
        from . import _native
    except ImportError as err:
        return None, f"the compiled tokenizer is not built ({err}); reinstall seaembed where a C++17 compiler exists"
    # An editable install keeps its sources beside it: a build older than them is not trusted.
    if SOURCES.is_dir() and source_hash(SOURCES) != _native.SOURCE_HASH:
        return None, "the compiled tokenizer is older than its C++ sources; rebuild it with `pip install -e .` (or `make install`)"
    return _native, ""


class NativeEngine:
    name = "native"

    def __init__(self, core, max_tokens: int):
        self._core = core
        info = core.info()
        self.prefix_ids: list[int] = info["prefix_ids"]
        self.suffix_ids: list[int] = info["suffix_ids"]
        self.pad_id: int = info["pad_id"]
        self.vocab_size: int = info["vocab_size"]
        self.added_contents: dict[int, str] = {token_id: content for content, token_id in info["added_tokens"]}
        self.max_tokens = max_tokens

    @property
    def threads(self) -> int:
        return self._core.threads

    @threads.setter
    def threads(self, value: int) -> None:
        self._core.threads = value

    def encode(
        self, texts: Sequence[object], prompt: str, truncate: bool, keep_end: bool, add_special_tokens: bool, padded: bool = False
    ):
        """As PythonEngine.encode; padded=True gives (ids bytes, mask bytes, rows, width) instead of lists."""
        return self._core.encode(texts, prompt, self.max_tokens, truncate, keep_end, add_special_tokens, padded)

    def count(self, text: str) -> int:
        return self._core.count(text)

    def piece(self, token_id: int) -> str | None:
        return self._core.piece(token_id)

    def clear_cache(self) -> None:
        """The compiled core keeps no word cache: every call segments afresh."""


def load_compiled(native: ModuleType, path: Path, sha256: str, max_tokens: int, threads: int) -> NativeEngine | None:
    """The engine from a binary form of `path` (beside it, or in the cache), or None if there is none."""
    for candidate in compiled_form.candidates(native, path, sha256):
        try:
            core = native.Core(compiled_form.map_file(candidate), threads, bytes.fromhex(sha256))
        except (OSError, ValueError) as err:  # truncated, corrupt, or compiled from another file
            log.info("ignoring compiled tokenizer %s: %s", candidate, err)
            continue
        return NativeEngine(core, max_tokens)
    return None


def compile_engine(native: ModuleType, spec: TokenizerSpec, sha256: str | None, max_tokens: int, threads: int) -> NativeEngine:
    """The engine compiled from a parsed tokenizer.json, kept in the cache when its sha256 is known.

    Raises compiled_form.NativeUnsupported for what only the Python reference implements.
    """
    blob = compiled_form.compile_spec(native, spec, sha256 or "0" * 64)
    buffer = compiled_form.store(native, sha256, blob) if sha256 else compiled_form.in_memory(blob)
    return NativeEngine(native.Core(buffer, threads), max_tokens)
