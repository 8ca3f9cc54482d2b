"""SentencePiece unigram model: Viterbi segmentation over the vocabulary's log-probabilities.

Mirrors `tokenizers`' Unigram exactly: f64 scores, ties kept by the first (shortest)
candidate, an unknown character scored min_score - 10 when no single-character piece
covers it, and runs of unknowns fused into one <unk>.
"""

from __future__ import annotations

from .errors import TokenizerConfigError

UNK_PENALTY = 10.0
CACHE_LIMIT = 100_000


class UnigramModel:
    def __init__(self, vocab: list[list], unk_id: int | None, byte_fallback: bool = False):
        if byte_fallback:
            raise TokenizerConfigError("Unigram byte_fallback=true is not implemented (XLM-R files have false)")
        if unk_id is None:
            raise TokenizerConfigError("Unigram model without unk_id is not supported")
        # Duplicate pieces resolve to the last id, as a HashMap insert would.
        self.pieces: dict[str, tuple[int, float]] = {piece: (i, score) for i, (piece, score) in enumerate(vocab)}
        min_score = min((score for _piece, score in vocab), default=0.0)
        self.vocab_size = len(vocab)
        self.unk_id = int(unk_id)
        self.unk_score = float(min_score) - UNK_PENALTY
        self.max_piece_len = max(map(len, self.pieces), default=1)
        self._cache: dict[str, list[int]] = {}

    def tokenize(self, word: str) -> list[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        ids = self._viterbi(word)
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[word] = ids
        return ids

    def clear_cache(self) -> None:
        self._cache.clear()

    def _viterbi(self, word: str) -> list[int]:
        n = len(word)
        if n == 0:
            return []
        pieces = self.pieces
        max_len = self.max_piece_len
        unk_id, unk_score = self.unk_id, self.unk_score
        score = [0.0] * (n + 1)
        start = [-1] * (n + 1)
        token = [0] * (n + 1)
        start[0] = 0
        for i in range(n):
            base = score[i]
            has_single = False
            for end in range(i + 1, min(n, i + max_len) + 1):
                entry = pieces.get(word[i:end])
                if entry is None:
                    continue
                candidate = base + entry[1]
                if start[end] < 0 or candidate > score[end]:
                    score[end] = candidate
                    start[end] = i
                    token[end] = entry[0]
                if end == i + 1:
                    has_single = True
            if not has_single:
                candidate = base + unk_score
                if start[i + 1] < 0 or candidate > score[i + 1]:
                    score[i + 1] = candidate
                    start[i + 1] = i
                    token[i + 1] = unk_id
        ids: list[int] = []
        pos = n
        while pos > 0:
            tok = token[pos]
            if not (tok == unk_id and ids and ids[-1] == unk_id):
                ids.append(tok)
            pos = start[pos]
        ids.reverse()
        return ids
