"""The tokenizer.json normalisers XLM-R-family files use: Precompiled, Strip, Replace, Sequence."""

from __future__ import annotations

import re
from collections.abc import Callable

from .charsmap import PrecompiledCharsmap
from .errors import TokenizerConfigError

Normalizer = Callable[[str], str]

# Rust's char::is_whitespace (Unicode White_Space); Python's str.isspace also accepts U+001C..U+001F.
WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


def rstrip_whitespace(text: str) -> str:
    end = len(text)
    while end and text[end - 1] in WHITESPACE:
        end -= 1
    return text[:end]


def lstrip_whitespace(text: str) -> str:
    start = 0
    while start < len(text) and text[start] in WHITESPACE:
        start += 1
    return text[start:]


def _strip(spec: dict) -> Normalizer:
    left, right = bool(spec.get("strip_left")), bool(spec.get("strip_right"))

    def strip(text: str) -> str:
        if right:
            text = rstrip_whitespace(text)
        if left:
            text = lstrip_whitespace(text)
        return text

    return strip


def _replace(spec: dict) -> Normalizer:
    pattern, content = spec.get("pattern", {}), spec.get("content", "")
    if "String" in pattern:
        literal = pattern["String"]
        return lambda text: text.replace(literal, content)
    if "Regex" in pattern:
        # The patterns converters emit (" {2,}") mean the same in Rust's regex and Python's re.
        compiled = re.compile(pattern["Regex"])
        return lambda text: compiled.sub(lambda _m: content, text)
    raise TokenizerConfigError(f"Replace normaliser with unsupported pattern {pattern!r}")


def _precompiled(spec: dict) -> Normalizer:
    blob = spec.get("precompiled_charsmap")
    if not blob:
        return lambda text: text
    return PrecompiledCharsmap.from_base64(blob).normalize


def build_normalizer(spec: dict | None) -> Normalizer:
    if spec is None:
        return lambda text: text
    kind = spec.get("type")
    if kind == "Sequence":
        steps = [build_normalizer(s) for s in spec.get("normalizers", [])]

        def sequence(text: str) -> str:
            for step in steps:
                text = step(text)
            return text

        return sequence
    builders = {"Precompiled": _precompiled, "Strip": _strip, "Replace": _replace}
    if kind not in builders:
        raise TokenizerConfigError(
            f"tokenizer.json uses the {kind!r} normaliser, which seaembed's tokenizer does not implement "
            f"(supported: Sequence, {', '.join(builders)}); re-export the bundle from an XLM-R/E5 tokenizer"
        )
    return builders[kind](spec)
