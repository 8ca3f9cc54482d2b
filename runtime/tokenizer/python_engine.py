"""The pure-Python tokenizer: the readable reference, and the fallback where the compiled core
is not built. Same stages as `tokenizers` (see tokenizer.py) in plain Python.
"""

from __future__ import annotations

from collections.abc import Sequence

from .added_tokens import AddedTokenSplitter
from .normalizers import build_normalizer
from .pretokenizers import build_pre_tokenizer
from .spec import TokenizerSpec
from .unigram import UnigramModel

# Long inputs are tokenized a growing prefix at a time; tokens this far from the cut
# are settled, so truncated ids equal those of the whole text.
CUT_MARGIN_TOKENS = 64
EXACT_COUNT_CHARS = 20_000

# (index, kind, detail, detail) of the first input that cannot be encoded
EncodeError = tuple[int, str, object, object]


class PythonEngine:
    name = "python"

    def __init__(self, spec: TokenizerSpec, max_tokens: int):
        self.model = UnigramModel(spec.vocab, spec.unk_id)
        self._normalize = build_normalizer(spec.normalizer)
        self._pre_tokenize = build_pre_tokenizer(spec.pre_tokenizer)
        self._added = AddedTokenSplitter(spec.added_tokens)
        self._added_contents = {t.id: t.content for t in spec.added_tokens}
        self._pieces_by_id: dict[int, str] | None = None
        self.prefix_ids, self.suffix_ids = spec.prefix_ids, spec.suffix_ids
        self.pad_id, self.vocab_size = spec.pad_id, spec.vocab_size
        self.max_tokens = max_tokens
        self.threads = 1

    def content_ids(self, text: str) -> list[int]:
        """Ids of `text` without the surrounding special tokens."""
        ids: list[int] = []
        first = True
        for raw_segment in self._added.split_raw(text):
            if isinstance(raw_segment, int):
                ids.append(raw_segment)
                first = False
                continue
            for segment in self._added.split_normalized(self._normalize(raw_segment)):
                if isinstance(segment, int):
                    ids.append(segment)
                else:
                    for word in self._pre_tokenize([segment], first):
                        ids.extend(self.model.tokenize(word))
                first = False
        return ids

    def _bounded_content_ids(self, text: str, budget: int) -> list[int]:
        """All content ids, or at least budget + 1 leading ids that equal those of the whole text."""
        prefix_chars = max(4096, budget * 16)
        while prefix_chars < len(text):
            ids = self.content_ids(text[:prefix_chars])
            if len(ids) >= budget + CUT_MARGIN_TOKENS:
                return ids[: budget + 1]
            prefix_chars *= 4
        return self.content_ids(text)

    def encode(
        self, texts: Sequence[object], prompt: str, truncate: bool, keep_end: bool, add_special_tokens: bool
    ) -> tuple[list[list[int]] | None, list[int] | None, EncodeError | None]:
        """(ids of every text, indices of those truncated, None), or (None, None, error) at the first bad input."""
        budget = self.max_tokens - len(self.prefix_ids) - len(self.suffix_ids)
        out: list[list[int]] = []
        truncated: list[int] = []
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                return None, None, (index, "type", type(text).__name__, None)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                return None, None, (index, "surrogate", ord(text[err.start]), err.start)
            text = prompt + text
            # Keeping the end needs the last tokens, so the whole text is tokenized.
            ids = self.content_ids(text) if keep_end else self._bounded_content_ids(text, budget)
            if len(ids) > budget:
                if not truncate:
                    exact = len(text) <= EXACT_COUNT_CHARS
                    count = len(self.content_ids(text)) if exact else len(ids)
                    return None, None, (index, "too_long", count + len(self.prefix_ids) + len(self.suffix_ids), exact)
                truncated.append(index)
                ids = ids[len(ids) - budget :] if keep_end else ids[:budget]
            out.append(self.prefix_ids + ids + self.suffix_ids if add_special_tokens else ids)
        return out, truncated, None

    def count(self, text: str) -> int:
        return len(self.content_ids(text))

    def piece(self, token_id: int) -> str | None:
        if self._pieces_by_id is None:
            self._pieces_by_id = {i: piece for piece, i in self.model.piece_ids.items()}
        return self._pieces_by_id.get(token_id)

    @property
    def added_contents(self) -> dict[int, str]:
        return self._added_contents

    def clear_cache(self) -> None:
        self.model.clear_cache()
