"""Special tokens written literally in the text (`<s>`, `</s>`, `<mask>`, …).

`tokenizers` extracts them before the model sees the text: tokens with normalized=false
are matched in the raw text, the rest in the normalised text; lstrip/rstrip swallow
neighbouring whitespace. Matching is leftmost-longest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import TokenizerConfigError
from .normalizers import WHITESPACE

Segment = str | int  # text still to tokenize, or the id of an extracted special token


@dataclass(frozen=True)
class AddedToken:
    content: str
    id: int
    lstrip: bool
    rstrip: bool
    normalized: bool


class AddedTokenSplitter:
    def __init__(self, tokens: list[AddedToken]):
        for token in tokens:
            if not token.content:
                raise TokenizerConfigError(f"added token {token.id} has empty content")
        self.raw = {t.content: t for t in tokens if not t.normalized}
        self.normalized = {t.content: t for t in tokens if t.normalized}
        self._raw_re = self._compile(self.raw)
        self._norm_re = self._compile(self.normalized)

    @staticmethod
    def _compile(tokens: dict[str, AddedToken]) -> re.Pattern | None:
        if not tokens:
            return None
        alternatives = sorted(tokens, key=len, reverse=True)  # re alternation is leftmost-first
        return re.compile("|".join(re.escape(t) for t in alternatives))

    @staticmethod
    def _split(text: str, pattern: re.Pattern | None, tokens: dict[str, AddedToken]) -> list[Segment]:
        if pattern is None or not text:
            return [text] if text else []
        out: list[Segment] = []
        cursor = 0
        for match in pattern.finditer(text):
            token = tokens[match.group(0)]
            start, end = match.start(), match.end()
            if start < cursor:
                continue
            if token.lstrip:
                while start > cursor and text[start - 1] in WHITESPACE:
                    start -= 1
            if token.rstrip:
                while end < len(text) and text[end] in WHITESPACE:
                    end += 1
            if start > cursor:
                out.append(text[cursor:start])
            out.append(token.id)
            cursor = end
        if cursor < len(text):
            out.append(text[cursor:])
        return out

    def split_raw(self, text: str) -> list[Segment]:
        return self._split(text, self._raw_re, self.raw)

    def split_normalized(self, text: str) -> list[Segment]:
        return self._split(text, self._norm_re, self.normalized)
