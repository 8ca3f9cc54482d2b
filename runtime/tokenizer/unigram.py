"""SentencePiece unigram model: Viterbi segmentation over the vocabulary's log-probabilities.

Mirrors `tokenizers`' Unigram exactly: f64 scores, ties kept by the first (shortest)
candidate, an unknown character scored min_score - 10 when no single-character piece
covers it, and runs of unknowns fused into one <unk>.
"""

from __future__ import annotations

from operator import itemgetter

from .errors import TokenizerConfigError

UNK_PENALTY = 10.0
CACHE_LIMIT = 100_000


class UnigramModel:
    def __init__(self, vocab: list[list], unk_id: int | None, byte_fallback: bool = False):
        if byte_fallback:
            raise TokenizerConfigError("Unigram byte_fallback=true is not implemented (XLM-R files have false)")
        if unk_id is None:
            raise TokenizerConfigError("Unigram model without unk_id is not supported")
        # Duplicate pieces resolve to the last id, as a HashMap insert would. Built with C-level
        # zip/itemgetter, not a comprehension: a third of the load time of the 250k vocabulary.
        self.piece_ids: dict[str, int] = dict(zip(map(itemgetter(0), vocab), range(len(vocab)), strict=True))
        self.scores: list[float] = list(map(itemgetter(1), vocab))
        self.vocab_size = len(vocab)
        self.unk_id = int(unk_id)
        self.unk_score = float(min(self.scores, default=0.0)) - UNK_PENALTY
        self.max_piece_len = max(map(len, self.piece_ids), default=1)
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
        piece_ids, scores = self.piece_ids, self.scores
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
                piece_id = piece_ids.get(word[i:end])
                if piece_id is None:
                    continue
                candidate = base + scores[piece_id]
                if start[end] < 0 or candidate > score[end]:
                    score[end] = candidate
                    start[end] = i
                    token[end] = piece_id
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
