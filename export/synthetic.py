"""Random-weight checkpoints, generated rather than downloaded.

Tests, benchmarks and CI engine builds make the models they need: a random XLM-R or BERT
encoder (save_pretrained) wrapped either by the installed sentence-transformers' own save()
(`save_with_sentence_transformers`: the layout users' fine-tuned models have) or by the
hand-written layout of the real model repo (`write_sentence_transformers_layout`, the
sentence-transformers 3.x format every later version still loads). `tiny` is a 2-layer model
for fast parity tests; `large` has SEA-LION-E5-Embedding-600M's shape (XLM-R-large: 24 × 1024,
16 heads, FFN 4096, 250,002 rows) for benchmarks. The tokenizer is either trained here with
SentencePiece on a given corpus or copied from a directory holding tokenizer.json.
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


def _tokenizer_for(out_dir: Path, spm_model: Path | None, tokenizer_dir: Path | None):
    from transformers import XLMRobertaTokenizerFast

    if tokenizer_dir is not None:
        for name in ("tokenizer.json", "sentencepiece.bpe.model", "tokenizer_config.json", "special_tokens_map.json"):
            if (Path(tokenizer_dir) / name).exists():
                shutil.copy(Path(tokenizer_dir) / name, out_dir / name)
        return XLMRobertaTokenizerFast(tokenizer_file=str(out_dir / "tokenizer.json"))
    if spm_model is not None:
        tokenizer = convert_sentencepiece_model(Path(spm_model), out_dir)
        shutil.copy(spm_model, out_dir / "sentencepiece.bpe.model")
        return tokenizer
    raise ValueError("give spm_model or tokenizer_dir")


def make_random_encoder(
    out_dir: str | Path,
    family: str = "xlm-roberta",
    shape: str = "tiny",
    spm_model: Path | None = None,
    tokenizer_dir: Path | None = None,
    seed: int = 0,
    initializer_range: float = 0.02,
) -> Path:
    """A random XLMRobertaModel or BertModel (e5-small's shape of config) saved by save_pretrained, with an XLM-R tokenizer."""
    import torch
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer_for(out_dir, spm_model, tokenizer_dir)
    torch.manual_seed(seed)
    common = dict(vocab_size=len(tokenizer), initializer_range=initializer_range, hidden_act="gelu", **SHAPES[shape])
    if family == "xlm-roberta":
        config = XLMRobertaConfig(
            max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2, layer_norm_eps=1e-5, **common
        )
        model = XLMRobertaModel(config, add_pooling_layer=False)
    elif family == "bert":
        config = BertConfig(max_position_embeddings=512, type_vocab_size=2, pad_token_id=0, layer_norm_eps=1e-12, **common)
        model = BertModel(config, add_pooling_layer=False)
    else:
        raise ValueError(f"family {family!r}: choose xlm-roberta or bert")
    model.eval().save_pretrained(str(out_dir), safe_serialization=True)
    return out_dir


def make_random_xlmr_checkpoint(
    out_dir: str | Path,
    shape: str = "tiny",
    spm_model: Path | None = None,
    tokenizer_dir: Path | None = None,
    seed: int = 0,
    initializer_range: float = 0.02,
) -> Path:
    """A random XLM-R checkpoint in the hand-written layout above; the tokenizer from `spm_model` or `tokenizer_dir`."""
    out_dir = make_random_encoder(out_dir, "xlm-roberta", shape, spm_model, tokenizer_dir, seed, initializer_range)
    write_sentence_transformers_layout(out_dir, SHAPES[shape]["hidden_size"], max_seq_length=512)
    return out_dir


def _st_modules():
    """Transformer, Pooling, Normalize from where the installed sentence-transformers keeps them (5.4 moved them)."""
    try:
        from sentence_transformers.base.modules import Normalize, Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:
        from sentence_transformers.models import Normalize, Pooling, Transformer
    return Transformer, Pooling, Normalize


def save_with_sentence_transformers(
    encoder_dir: str | Path,
    out_dir: str | Path,
    normalize: bool = True,
    prompts: dict[str, str] | None = None,
    default_prompt_name: str | None = None,
    max_seq_length: int | None = 512,
) -> Path:
    """Wrap a save_pretrained encoder in Transformer → mean Pooling (→ Normalize) and save it as the installed
    sentence-transformers does, so tests see exactly the layout users' fine-tuned models have."""
    from sentence_transformers import SentenceTransformer

    Transformer, Pooling, Normalize = _st_modules()
    encoder_dir, out_dir = Path(encoder_dir), Path(out_dir)
    transformer = Transformer(str(encoder_dir), max_seq_length=max_seq_length)
    hidden = transformer.auto_model.config.hidden_size
    modules = [transformer, Pooling(hidden, pooling_mode="mean")] + ([Normalize()] if normalize else [])
    model = SentenceTransformer(modules=modules, prompts=prompts, default_prompt_name=default_prompt_name, device="cpu")
    model.save(str(out_dir))
    # Hub repos of this family carry sentencepiece.bpe.model; transformers >= 5 no longer writes it.
    if (encoder_dir / "sentencepiece.bpe.model").exists() and not (out_dir / "sentencepiece.bpe.model").exists():
        shutil.copy(encoder_dir / "sentencepiece.bpe.model", out_dir / "sentencepiece.bpe.model")
    return out_dir


def resave_with_sentence_transformers(model_dir: str | Path, out_dir: str | Path, prompts: dict[str, str] | None = None) -> Path:
    """Load a sentence-transformers directory (prompts given here win over its own) and save it with the installed version."""
    from sentence_transformers import SentenceTransformer

    model_dir, out_dir = Path(model_dir), Path(out_dir)
    SentenceTransformer(str(model_dir), device="cpu", prompts=prompts).save(str(out_dir))
    if (model_dir / "sentencepiece.bpe.model").exists() and not (out_dir / "sentencepiece.bpe.model").exists():
        shutil.copy(model_dir / "sentencepiece.bpe.model", out_dir / "sentencepiece.bpe.model")
    return out_dir
