"""SentencePiece's precompiled charsmap (the `Precompiled` normaliser of tokenizer.json).

The blob is a little-endian u32 trie size, a Darts double-array trie over UTF-8 keys, and
a pool of NUL-terminated replacement strings the trie's values point into. `normalize`
reproduces `tokenizers`' use of it exactly, quirks included: a grapheme cluster shorter
than 6 UTF-8 bytes whose *prefix* is a key is replaced whole by the first (shortest)
match; longer clusters are mapped character by character.
"""

from __future__ import annotations

import base64
import struct

from .graphemes import grapheme_clusters


class PrecompiledCharsmap:
    def __init__(self, blob: bytes):
        if len(blob) < 4:
            raise ValueError("precompiled_charsmap is truncated: fewer than 4 bytes")
        (trie_size,) = struct.unpack_from("<I", blob, 0)
        if trie_size % 4 or 4 + trie_size > len(blob):
            raise ValueError(f"precompiled_charsmap is malformed: trie size {trie_size} for a {len(blob)}-byte blob")
        self._units = struct.unpack_from(f"<{trie_size // 4}I", blob, 4)
        self._pool = blob[4 + trie_size :]
        self._char_cache: dict[str, str] = {}

    @classmethod
    def from_base64(cls, text: str) -> PrecompiledCharsmap:
        return cls(base64.b64decode(text))

    def _first_match(self, key: bytes) -> int | None:
        """Pool offset of the shortest trie key that is a prefix of `key` (Darts common-prefix search)."""
        units = self._units
        unit = units[0]
        node = (unit >> 10) << ((unit & (1 << 9)) >> 6)
        for byte in key:
            if byte == 0:
                return None
            node ^= byte
            unit = units[node]
            if (unit & ((1 << 31) | 0xFF)) != byte:
                return None
            node ^= (unit >> 10) << ((unit & (1 << 9)) >> 6)
            if (unit >> 8) & 1:
                return units[node] & ((1 << 31) - 1)
        return None

    def transform(self, chunk: str) -> str | None:
        """Replacement for `chunk` if a prefix of it is in the charsmap, else None."""
        offset = self._first_match(chunk.encode("utf-8"))
        if offset is None:
            return None
        end = self._pool.find(b"\0", offset)
        return self._pool[offset : end if end >= 0 else len(self._pool)].decode("utf-8")

    def _char(self, ch: str) -> str:
        mapped = self._char_cache.get(ch)
        if mapped is None:
            replacement = self.transform(ch)
            mapped = ch if replacement is None else replacement
            self._char_cache[ch] = mapped
        return mapped

    def normalize(self, text: str) -> str:
        out: list[str] = []
        char = self._char
        for cluster in grapheme_clusters(text):
            if len(cluster) == 1:
                out.append(char(cluster))
                continue
            if len(cluster.encode("utf-8")) < 6:
                replacement = self.transform(cluster)
                if replacement is not None:
                    out.append(replacement)
                    continue
            out.extend(char(c) for c in cluster)
        return "".join(out)
