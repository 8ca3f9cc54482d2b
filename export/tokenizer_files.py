"""tokenizer.json for a bundle, converted from sentencepiece.bpe.model when a checkpoint lacks one."""

from __future__ import annotations

from pathlib import Path

XLMR_SPECIALS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}


class _SentencePieceFile:
    """The two things transformers' XLMRobertaConverter reads from a slow tokenizer."""

    def __init__(self, path: Path):
        self.vocab_file = str(path)

    def convert_tokens_to_ids(self, token: str) -> int:
        return XLMR_SPECIALS[token]


def convert_sentencepiece_model(spm_model: Path, out_dir: Path, model_max_length: int = 512):
    """Write tokenizer.json (+ config files) for an XLM-R-style SentencePiece model; returns the fast tokenizer."""
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
        mask_token="<mask>",
        model_max_length=model_max_length,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(out_dir))
    return tokenizer
