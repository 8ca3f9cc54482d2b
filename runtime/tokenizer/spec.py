"""tokenizer.json, read and checked once for both implementations.

Everything this runtime does not implement exactly raises TokenizerConfigError here, so the
compiled core and the Python reference refuse the same files with the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass

from .added_tokens import AddedToken
from .errors import TokenizerConfigError
from .normalizers import build_normalizer
from .pretokenizers import build_pre_tokenizer


def _special_ids(post_processor: dict | None, piece_id) -> tuple[list[int], list[int]]:
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
                    token_id = piece_id(name)
                    if token_id is None:
                        raise TokenizerConfigError(f"post-processor names unknown special token {name!r}")
                    ids = [token_id]
                (after if seen_sequence else before).extend(int(i) for i in ids)
        return before, after
    raise TokenizerConfigError(f"tokenizer.json uses the {kind!r} post-processor, which is not implemented")


@dataclass
class TokenizerSpec:
    vocab: list[list]  # [piece, score] in id order
    unk_id: int
    normalizer: dict | None
    pre_tokenizer: dict | None
    added_tokens: list[AddedToken]
    prefix_ids: list[int]
    suffix_ids: list[int]
    pad_id: int
    vocab_size: int

    @classmethod
    def parse(cls, spec: dict) -> TokenizerSpec:
        model = spec.get("model") or {}
        if model.get("type") != "Unigram":
            raise TokenizerConfigError(
                f"tokenizer.json model type is {model.get('type')!r}; seaembed implements SentencePiece Unigram only"
            )
        if model.get("byte_fallback", False):
            raise TokenizerConfigError("Unigram byte_fallback=true is not implemented (XLM-R files have false)")
        if model.get("unk_id") is None:
            raise TokenizerConfigError("Unigram model without unk_id is not supported")
        vocab = model["vocab"]
        build_normalizer(spec.get("normalizer"))  # raises for what is not implemented
        build_pre_tokenizer(spec.get("pre_tokenizer"))
        for t in spec.get("added_tokens", []):
            if t.get("single_word"):
                raise TokenizerConfigError(f"added token {t['content']!r} uses single_word, which is not implemented")
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
        for token in added:
            if not token.content:
                raise TokenizerConfigError(f"added token {token.id} has empty content")

        def piece_id(name: str) -> int | None:
            # the last id wins for a duplicate piece, as in the model's dict
            return next((i for i in range(len(vocab) - 1, -1, -1) if vocab[i][0] == name), None)

        prefix_ids, suffix_ids = _special_ids(spec.get("post_processor"), piece_id)
        return cls(
            vocab=vocab,
            unk_id=int(model["unk_id"]),
            normalizer=spec.get("normalizer"),
            pre_tokenizer=spec.get("pre_tokenizer"),
            added_tokens=added,
            prefix_ids=prefix_ids,
            suffix_ids=suffix_ids,
            pad_id=next((t.id for t in added if t.content == "<pad>"), 1),
            vocab_size=max(len(vocab), max((t.id + 1 for t in added), default=0)),
        )
