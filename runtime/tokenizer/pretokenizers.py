"""Pre-tokenisers: Metaspace (SentencePiece's '▁' word boundaries), WhitespaceSplit, Sequence."""

from __future__ import annotations

from collections.abc import Callable

from .errors import TokenizerConfigError
from .normalizers import WHITESPACE

# (pieces, is_first_section) -> pieces
PreTokenizer = Callable[[list[str], bool], list[str]]


def _metaspace(spec: dict) -> PreTokenizer:
    replacement = spec.get("replacement", "\u2581")
    if "prepend_scheme" in spec:
        scheme = spec["prepend_scheme"]
    else:  # files written before tokenizers 0.14
        scheme = "always" if spec.get("add_prefix_space", True) else "never"
    if scheme not in ("always", "first", "never"):
        raise TokenizerConfigError(f"Metaspace prepend_scheme {scheme!r} is not one of always/first/never")
    split = spec.get("split", True)

    def metaspace(pieces: list[str], first_section: bool) -> list[str]:
        out: list[str] = []
        for index, piece in enumerate(pieces):
            piece = piece.replace(" ", replacement)
            prepend = scheme == "always" or (scheme == "first" and first_section and index == 0)
            if prepend and piece and not piece.startswith(replacement):
                piece = replacement + piece
            if not split:
                if piece:
                    out.append(piece)
                continue
            # Split before every replacement char, keeping it with what follows.
            start = 0
            for pos in range(1, len(piece)):
                if piece[pos] == replacement:
                    out.append(piece[start:pos])
                    start = pos
            if piece:
                out.append(piece[start:])
        return out

    return metaspace


def _whitespace_split(_spec: dict) -> PreTokenizer:
    def whitespace_split(pieces: list[str], _first: bool) -> list[str]:
        out: list[str] = []
        for piece in pieces:
            word: list[str] = []
            for ch in piece:
                if ch in WHITESPACE:
                    if word:
                        out.append("".join(word))
                        word = []
                else:
                    word.append(ch)
            if word:
                out.append("".join(word))
        return out

    return whitespace_split


def build_pre_tokenizer(spec: dict | None) -> PreTokenizer:
    if spec is None:
        return lambda pieces, _first: [p for p in pieces if p]
    kind = spec.get("type")
    if kind == "Sequence":
        steps = [build_pre_tokenizer(s) for s in spec.get("pretokenizers", [])]

        def sequence(pieces: list[str], first_section: bool) -> list[str]:
            for step in steps:
                pieces = step(pieces, first_section)
            return pieces

        return sequence
    builders = {"Metaspace": _metaspace, "WhitespaceSplit": _whitespace_split}
    if kind not in builders:
        raise TokenizerConfigError(
            f"tokenizer.json uses the {kind!r} pre-tokenizer, which seaembed's tokenizer does not implement "
            f"(supported: Sequence, {', '.join(builders)})"
        )
    return builders[kind](spec)
