"""Random-weight checkpoints in the exact sentence-transformers layout of the real model repo.

Nothing is downloaded here: tests, benchmarks and CI engine builds generate the models
they need. `tiny` is a 2-layer XLM-R for fast parity tests; `large` has
SEA-LION-E5-Embedding-600M's shape (XLM-R-large: 24 × 1024, 16 heads, FFN 4096, 250,002
rows) for benchmarks. The tokenizer is either trained here with SentencePiece on a
given corpus or copied from a directory holding tokenizer.json.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .tokenizer_files import convert_sentencepiece_model

SHAPES = {
    "tiny": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64),
    "small": dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096),
}
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}


def train_sentencepiece(corpus_lines: list[str], out_dir: Path, vocab_size: int = 600, seed: int = 0) -> Path:
    """A SentencePiece unigram model with XLM-R's special-token layout (<unk>=0, <s>=1, </s>=2)."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(corpus_lines) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(out_dir / "sentencepiece.bpe"),
            model_type="unigram",
            vocab_size=vocab_size,
            hard_vocab_limit=False,
            character_coverage=1.0,
            normalization_rule_name="nmt_nfkc",
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            minloglevel=2,
        )
    return out_dir / "sentencepiece.bpe.model"


def write_sentence_transformers_layout(model_dir: Path, hidden: int, max_seq_length: int, normalize: bool = True) -> None:
    """modules.json, pooling, Normalize, sentence_bert_config.json and prompts, as the real repo has them."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (model_dir / "2_Normalize").mkdir(exist_ok=True)
    (model_dir / "modules.json").write_text(json.dumps(modules, indent=2))
    (model_dir / "1_Pooling").mkdir(exist_ok=True)
    pooling = {
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": False,
        "include_prompt": True,
    }
    (model_dir / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=2))
    (model_dir / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": max_seq_length, "do_lower_case": False}))
    st_config = {
        "__version__": {"sentence_transformers": "3.2.1", "transformers": "4.44.2", "pytorch": "2.4.1"},
        "prompts": E5_PROMPTS,
        "default_prompt_name": None,
        "similarity_fn_name": "cosine",
    }
    (model_dir / "config_sentence_transformers.json").write_text(json.dumps(st_config, indent=2))


def make_random_xlmr_checkpoint(
    out_dir: str | Path,
    shape: str = "tiny",
    spm_model: Path | None = None,
    tokenizer_dir: Path | None = None,
    seed: int = 0,
    initializer_range: float = 0.02,
) -> Path:
    """A random XLM-R sentence-transformers checkpoint; the tokenizer from `spm_model` or `tokenizer_dir`."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel, XLMRobertaTokenizerFast

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is not None:
        for name in ("tokenizer.json", "sentencepiece.bpe.model", "tokenizer_config.json", "special_tokens_map.json"):
            if (Path(tokenizer_dir) / name).exists():
                shutil.copy(Path(tokenizer_dir) / name, out_dir / name)
        tokenizer = XLMRobertaTokenizerFast(tokenizer_file=str(out_dir / "tokenizer.json"))
    elif spm_model is not None:
        tokenizer = convert_sentencepiece_model(Path(spm_model), out_dir)
        shutil.copy(spm_model, out_dir / "sentencepiece.bpe.model")
    else:
        raise ValueError("give spm_model or tokenizer_dir")
    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        max_position_embeddings=514,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        layer_norm_eps=1e-5,
        initializer_range=initializer_range,
        hidden_act="gelu",
        **SHAPES[shape],
    )
    model = XLMRobertaModel(config, add_pooling_layer=False).eval()
    model.save_pretrained(str(out_dir), safe_serialization=True)
    write_sentence_transformers_layout(out_dir, config.hidden_size, max_seq_length=512)
    return out_dir
