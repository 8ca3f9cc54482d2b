"""tokenizer.json for a bundle, converted from sentencepiece.bpe.model when a checkpoint lacks one."""

from __future__ import annotations

import json
from pathlib import Path

XLMR_SPECIALS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}


class _SentencePieceFile:
    """The two things transformers' XLMRobertaConverter reads from a slow tokenizer."""

    def __init__(self, path: Path):
        self.vocab_file = str(path)

    def convert_tokens_to_ids(self, token: str) -> int:
        return XLMR_SPECIALS[token]


def convert_sentencepiece_model(spm_model: Path, out_dir: Path, model_max_length: int = 512, exact_scores=None):
    """Write tokenizer.json (+ config files) for an XLM-R-style SentencePiece model; returns the fast tokenizer.

    exact_scores: the unigram scores in fairseq id order, when the caller has them as
    float32: protobuf hands scores over rounded, and Viterbi near-ties need the exact values.
    """
    from tokenizers import AddedToken
    from transformers import XLMRobertaTokenizerFast
    from transformers.convert_slow_tokenizer import XLMRobertaConverter

    backend = XLMRobertaConverter(_SentencePieceFile(spm_model)).converted()
    tokenizer = XLMRobertaTokenizerFast(
        tokenizer_object=backend,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        # as in xlm-roberta's own files: <mask> swallows the space before it
        mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, normalized=True, special=True),
        model_max_length=model_max_length,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))
    if exact_scores is not None:
        path = out_dir / "tokenizer.json"
        spec = json.loads(path.read_text(encoding="utf-8"))
        vocab = spec["model"]["vocab"]
        if len(vocab) != len(exact_scores):
            raise ValueError(f"{len(exact_scores)} exact scores for a {len(vocab)}-piece vocabulary")
        for entry, score in zip(vocab, exact_scores, strict=True):
            entry[1] = float(score)
        path.write_text(json.dumps(spec, ensure_ascii=False, indent=2), encoding="utf-8")
    return tokenizer
