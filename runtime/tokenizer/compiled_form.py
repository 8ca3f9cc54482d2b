"""The compact binary form of a tokenizer.json, for the compiled core.

Parsing 17 MB of JSON and building a trie over 250k pieces takes most of a second; the
binary form (header with the source's sha256, then arrays used in place) loads in a few
milliseconds through a memory map, shared by every process on the machine. It is looked up
beside tokenizer.json (`tokenizer.seatok`, which an export may write) and in the seaembed
cache directory keyed by the tokenizer's sha256; on a miss it is compiled from the JSON
and stored in the cache (best effort: a read-only cache only costs the compile next time).
"""

from __future__ import annotations

import base64
import logging
import mmap
import os
import re
from pathlib import Path
from types import ModuleType

from ..integrity import cache_dir
from .spec import TokenizerSpec

log = logging.getLogger("seaembed")

SCHEMES = {"always": 0, "first": 1, "never": 2}
# One literal character (escaped or not) repeated: " {2,}", "a+", "\\.{3}".
_RUN = re.compile(r"(\\[^0-9A-Za-z]|[^\\.^$*+?{}\[\]|()])(?:\{(\d+),(\d*)\}|\{(\d+)\}|(\+))")
_LITERAL = re.compile(r"(?:\\[^0-9A-Za-z]|[^\\.^$*+?{}\[\]|()])+")


class NativeUnsupported(Exception):
    """A tokenizer.json feature the Python reference implements but the compiled core does not."""


def _unescape(pattern: str) -> str:
    return re.sub(r"\\(.)", r"\1", pattern)


def _replace_step(spec: dict) -> tuple:
    pattern, content = spec.get("pattern", {}), spec.get("content", "")
    if "String" in pattern:
        if not pattern["String"]:
            raise NativeUnsupported("Replace with an empty string pattern")
        return ("replace_literal", pattern["String"], content)
    regex = pattern["Regex"]
    if _LITERAL.fullmatch(regex):
        return ("replace_literal", _unescape(regex), content)
    run = _RUN.fullmatch(regex)
    if run is None:
        raise NativeUnsupported(f"Replace regex {regex!r} (the compiled core handles a literal or one character repeated)")
    char, low, high, exact, plus = run.groups()
    low, high = (1, 0) if plus else (int(exact), int(exact)) if exact else (int(low), int(high) if high else 0)
    if low < 1 or (high and high < low):
        raise NativeUnsupported(f"Replace regex {regex!r} can match the empty string")
    return ("replace_run", _unescape(char), low, high, content)


def normalizer_steps(spec: dict | None) -> list[tuple]:
    if spec is None:
        return []
    kind = spec.get("type")
    if kind == "Sequence":
        return [step for inner in spec.get("normalizers", []) for step in normalizer_steps(inner)]
    if kind == "Precompiled":
        blob = spec.get("precompiled_charsmap")
        return [("precompiled", base64.b64decode(blob))] if blob else []
    if kind == "Strip":
        return [("strip", bool(spec.get("strip_left")), bool(spec.get("strip_right")))]
    if kind == "Replace":
        return [_replace_step(spec)]
    raise NativeUnsupported(f"the {kind!r} normaliser")


def pre_tokenizer_steps(spec: dict | None) -> list[tuple]:
    if spec is None:
        return []
    kind = spec.get("type")
    if kind == "Sequence":
        return [step for inner in spec.get("pretokenizers", []) for step in pre_tokenizer_steps(inner)]
    if kind == "WhitespaceSplit":
        return [("whitespace_split",)]
    if kind == "Metaspace":
        if "prepend_scheme" in spec:
            scheme = spec["prepend_scheme"]
        else:  # files written before tokenizers 0.14
            scheme = "always" if spec.get("add_prefix_space", True) else "never"
        return [("metaspace", spec.get("replacement", "\u2581"), SCHEMES[scheme], bool(spec.get("split", True)))]
    raise NativeUnsupported(f"the {kind!r} pre-tokenizer")


def compile_spec(native: ModuleType, spec: TokenizerSpec, sha256: str) -> bytes:
    """The binary form of a validated spec (raises NativeUnsupported)."""
    return native.compile(
        [piece for piece, _score in spec.vocab],
        [float(score) for _piece, score in spec.vocab],
        spec.unk_id,
        normalizer_steps(spec.normalizer),
        pre_tokenizer_steps(spec.pre_tokenizer),
        [(t.content, t.id, t.lstrip, t.rstrip, t.normalized) for t in spec.added_tokens],
        spec.prefix_ids,
        spec.suffix_ids,
        spec.pad_id,
        spec.vocab_size,
        bytes.fromhex(sha256),
    )


def beside(tokenizer_file: Path) -> Path:
    return tokenizer_file.with_suffix(".seatok")


def cached(native: ModuleType, sha256: str) -> Path:
    # The source hash is in the name too, so a rebuilt core never reads an older build's output. The machine
    # is not: the form is the same bytes on x86-64 and aarch64 (compiled_format.cc; `make test-arm64` compares
    # them), so a cache or a bundle's tokenizer.seatok made on one serves the other.
    return cache_dir() / "tokenizers" / f"{sha256}.v{native.FORMAT_VERSION}.{native.SOURCE_HASH}.seatok"


def map_file(path: Path) -> mmap.mmap:
    with open(path, "rb") as handle:
        return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)


def in_memory(blob: bytes) -> mmap.mmap:
    """An anonymous map holding `blob`: page-aligned, as the core requires."""
    mapped = mmap.mmap(-1, len(blob))
    mapped.write(blob)
    return mapped


def candidates(native: ModuleType, tokenizer_file: Path, sha256: str) -> list[Path]:
    return [p for p in (beside(tokenizer_file), cached(native, sha256)) if p.is_file()]


def store(native: ModuleType, sha256: str, blob: bytes) -> mmap.mmap:
    """Keep `blob` in the cache and map it from there (shared between processes), or from memory."""
    target = cached(native, sha256)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(blob)
        os.replace(tmp, target)
        for stale in target.parent.glob(f"{sha256}.v*.seatok"):  # left by older builds of the core
            if stale != target:
                stale.unlink(missing_ok=True)
        return map_file(target)
    except OSError as err:
        log.info("compiled tokenizer not cached (%s): the next load compiles it again", err)
        return in_memory(blob)


def write_beside(native: ModuleType, tokenizer_file: Path, spec: TokenizerSpec, sha256: str) -> Path:
    """Write the binary form next to tokenizer.json (for bundles deployed read-only)."""
    target = beside(tokenizer_file)
    target.write_bytes(compile_spec(native, spec, sha256))
    return target
