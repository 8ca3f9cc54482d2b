"""XLM-R / E5 tokenizer read from tokenizer.json, without `tokenizers` or `sentencepiece`.

Pipeline (as `tokenizers` runs it): special tokens written in the text are extracted,
each remaining span is normalised (Precompiled charsmap, Strip, Replace), pre-tokenised
(Metaspace), segmented by the unigram model, and wrapped in <s> … </s>.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Sequence

from .added_tokens import AddedToken, AddedTokenSplitter
from .errors import InputTooLongError, InvalidTextError, TokenizerConfigError
from .normalizers import build_normalizer
from .pretokenizers import build_pre_tokenizer
from .unigram import UnigramModel

# Long inputs are tokenized a growing prefix at a time; tokens this far from the cut
# are settled, so truncated ids equal those of the whole text.
_CUT_MARGIN_TOKENS = 64
_EXACT_COUNT_CHARS = 20_000


def _special_ids(post_processor: dict | None, pieces: dict[str, tuple[int, float]]) -> tuple[list[int], list[int]]:
    """Ids the post-processor puts before and after a single sequence."""
    if post_processor is None:
        return [], []
    kind = post_processor.get("type")
    if kind == "RobertaProcessing" or kind == "BertProcessing":
        return [int(post_processor["cls"][1])], [int(post_processor["sep"][1])]
    if kind == "TemplateProcessing":
        specials = post_processor.get("special_tokens", {})
        before: list[int] = []
        after: list[int] = []
        seen_sequence = False
        for item in post_processor.get("single", []):
            if "Sequence" in item:
                seen_sequence = True
            elif "SpecialToken" in item:
                name = item["SpecialToken"]["id"]
                ids = specials.get(name, {}).get("ids")
                if ids is None:
                    if name not in pieces:
                        raise TokenizerConfigError(f"post-processor names unknown special token {name!r}")
                    ids = [pieces[name][0]]
                (after if seen_sequence else before).extend(int(i) for i in ids)
        return before, after
    raise TokenizerConfigError(f"tokenizer.json uses the {kind!r} post-processor, which is not implemented")


class Tokenizer:
    """Turns text into model input ids, identical to transformers' XLMRobertaTokenizerFast."""

    def __init__(self, spec: dict, max_tokens: int, prompts: dict[str, str] | None = None):
        model = spec.get("model") or {}
        if model.get("type") != "Unigram":
            raise TokenizerConfigError(
                f"tokenizer.json model type is {model.get('type')!r}; seaembed implements SentencePiece Unigram only"
            )
        self.model = UnigramModel(model["vocab"], model.get("unk_id"), bool(model.get("byte_fallback", False)))
        self._normalize = build_normalizer(spec.get("normalizer"))
        self._pre_tokenize = build_pre_tokenizer(spec.get("pre_tokenizer"))
        added = [
            AddedToken(
                content=t["content"],
                id=int(t["id"]),
                lstrip=bool(t.get("lstrip")),
                rstrip=bool(t.get("rstrip")),
                normalized=bool(t.get("normalized")),
            )
            for t in spec.get("added_tokens", [])
        ]
        for t in spec.get("added_tokens", []):
            if t.get("single_word"):
                raise TokenizerConfigError(f"added token {t['content']!r} uses single_word, which is not implemented")
        self._added = AddedTokenSplitter(added)
        self._added_tokens = added
        self._pieces_by_id: dict[int, str] | None = None
        self.prefix_ids, self.suffix_ids = _special_ids(spec.get("post_processor"), self.model.pieces)
        if max_tokens <= len(self.prefix_ids) + len(self.suffix_ids):
            raise TokenizerConfigError(f"max_tokens={max_tokens} leaves no room for text between the special tokens")
        self.max_tokens = int(max_tokens)
        self.prompts = dict(prompts or {})
        self.pad_id = next((t.id for t in added if t.content == "<pad>"), 1)
        self.vocab_size = max(self.model.vocab_size, max((t.id + 1 for t in added), default=0))

    @classmethod
    def from_file(cls, path: str | os.PathLike, max_tokens: int = 512, prompts: dict[str, str] | None = None) -> Tokenizer:
        # The 250k-piece vocabulary is ~1M small objects: the cyclic GC has nothing to find
        # in them but would walk them repeatedly while they are built.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            with open(path, "rb") as handle:
                spec = json.loads(handle.read())
            return cls(spec, max_tokens=max_tokens, prompts=prompts)
        finally:
            if gc_was_enabled:
                gc.enable()

    # -- text → ids ---------------------------------------------------------------------

    def _content_ids(self, text: str) -> list[int]:
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

    def _apply_prompt(self, text: str, prompt_name: str | None) -> str:
        if prompt_name is None:
            return text
        if prompt_name not in self.prompts:
            known = ", ".join(sorted(self.prompts)) or "none"
            raise KeyError(f"prompt_name {prompt_name!r} is not defined by this model (known prompts: {known})")
        return self.prompts[prompt_name] + text

    @staticmethod
    def _check_text(text: object, index: int | None = None) -> str:
        where = f"input {index}" if index is not None else "input"
        if not isinstance(text, str):
            raise InvalidTextError(f"{where} must be a str, got {type(text).__name__}", index)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise InvalidTextError(
                f"{where} is not valid Unicode: lone surrogate U+{ord(text[err.start]):04X} at character {err.start}",
                index,
            ) from None
        return text

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
        if direction not in ("right", "left"):
            raise ValueError(f"truncation direction must be 'right' or 'left', got {direction!r}")
        text = self._apply_prompt(self._check_text(text, index), prompt_name)
        budget = self.max_tokens - len(self.prefix_ids) - len(self.suffix_ids)
        # Left truncation needs the last tokens, so the whole text is tokenized.
        ids = self._bounded_content_ids(text, budget) if direction == "right" else self._content_ids(text)
        if len(ids) > budget:
            if not truncate:
                exact = len(text) <= _EXACT_COUNT_CHARS
                count = len(self._content_ids(text)) if exact else len(ids)
                raise InputTooLongError(
                    count + len(self.prefix_ids) + len(self.suffix_ids), self.max_tokens, exact=exact, index=index
                )
            ids = ids[:budget] if direction == "right" else ids[len(ids) - budget :]
        if not add_special_tokens:
            return ids
        return self.prefix_ids + ids + self.suffix_ids

    def _bounded_content_ids(self, text: str, budget: int) -> list[int]:
        """Content ids, tokenizing only as much of a long text as the budget needs.

        Returns all ids, or at least budget + margin leading ids that equal those of
        the whole text.
        """
        prefix_chars = max(4096, budget * 16)
        while prefix_chars < len(text):
            ids = self._content_ids(text[:prefix_chars])
            if len(ids) >= budget + _CUT_MARGIN_TOKENS:
                return ids[: budget + 1]
            prefix_chars *= 4
        return self._content_ids(text)

    def encode_batch(
        self,
        texts: Sequence[str],
        prompt_name: str | None = None,
        truncate: bool = True,
        direction: str = "right",
        add_special_tokens: bool = True,
    ) -> list[list[int]]:
        """encode() of every text, in order. The first bad input raises with its `index`
        (InvalidTextError; InputTooLongError when truncate is False)."""
        if isinstance(texts, str):
            raise TypeError("encode_batch takes a list of strings; use encode() for one string")
        return [
            self.encode(t, prompt_name=prompt_name, truncate=truncate, add_special_tokens=add_special_tokens, index=i, direction=direction)
            for i, t in enumerate(texts)
        ]

    def encode_batch_truncating(
        self, texts: Sequence[str], prompt_name: str | None = None, direction: str = "right"
    ) -> tuple[list[list[int]], list[int]]:
        """Ids of every text, over-long ones cut to max_tokens, and the indices of those that were cut."""
        if isinstance(texts, str):
            raise TypeError("encode_batch_truncating takes a list of strings")
        if direction not in ("right", "left"):
            raise ValueError(f"truncation direction must be 'right' or 'left', got {direction!r}")
        budget = self.max_tokens - len(self.prefix_ids) - len(self.suffix_ids)
        out: list[list[int]] = []
        truncated: list[int] = []
        for i, text in enumerate(texts):
            text = self._apply_prompt(self._check_text(text, i), prompt_name)
            ids = self._bounded_content_ids(text, budget) if direction == "right" else self._content_ids(text)
            if len(ids) > budget:
                truncated.append(i)
                ids = ids[:budget] if direction == "right" else ids[len(ids) - budget :]
            out.append(self.prefix_ids + ids + self.suffix_ids)
        return out, truncated

    def id_to_piece(self, token_id: int) -> str:
        if self._pieces_by_id is None:
            self._pieces_by_id = {i: piece for piece, (i, _s) in self.model.pieces.items()}
            self._pieces_by_id.update({t.id: t.content for t in self._added_tokens})
        return self._pieces_by_id.get(token_id, "")

    def count_tokens(self, text: str, prompt_name: str | None = None) -> int:
        """Tokens the model would see for `text` without truncation (special tokens included)."""
        text = self._apply_prompt(self._check_text(text), prompt_name)
        return len(self._content_ids(text)) + len(self.prefix_ids) + len(self.suffix_ids)
