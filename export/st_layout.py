"""The sentence-transformers half of a checkpoint, in every layout versions 3.x to 6.x write.

Read from those versions' own save()/load() code, the layouts differ in three places:

- modules.json type paths: up to 5.3 the module path (`sentence_transformers.models.Transformer`);
  from 5.4 module and class (`sentence_transformers.base.modules.transformer.Transformer`,
  `sentence_transformers.sentence_transformer.modules.pooling.Pooling`, Normalize under
  `…sentence_transformer.modules.normalize` until 5.7 and `…base.modules.normalize` from 6.0).
- 1_Pooling/config.json: up to 5.3 one boolean per mode (`pooling_mode_mean_tokens`, …; a missing
  key takes the constructor default, mean on); from 5.4 `pooling_mode: "mean"` (a name or a list)
  and `embedding_dimension`.
- max_seq_length: up to 5.3 in sentence_bert_config.json; from 5.4 the Transformer module keeps it
  as the tokenizer's `model_max_length` (tokenizer_config.json), and an old `max_seq_length` key
  still applies when present.

Everything that changes the vectors and that seaembed does not implement is refused here, naming
the file, the setting and what is supported.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CheckpointError

TRANSFORMER, POOLING, NORMALIZE = "Transformer", "Pooling", "Normalize"
MODULE_TYPES = {
    "sentence_transformers.models.Transformer": TRANSFORMER,
    "sentence_transformers.models.Transformer.Transformer": TRANSFORMER,
    "sentence_transformers.base.modules.transformer.Transformer": TRANSFORMER,
    "sentence_transformers.models.Pooling": POOLING,
    "sentence_transformers.models.Pooling.Pooling": POOLING,
    "sentence_transformers.sentence_transformer.modules.pooling.Pooling": POOLING,
    "sentence_transformers.models.Normalize": NORMALIZE,
    "sentence_transformers.models.Normalize.Normalize": NORMALIZE,
    "sentence_transformers.sentence_transformer.modules.normalize.Normalize": NORMALIZE,
    "sentence_transformers.base.modules.normalize.Normalize": NORMALIZE,
}
SUPPORTED_PIPELINE = "Transformer → Pooling (mean) → optional Normalize"
# Where sentence-transformers looks for the Transformer module's settings, in its order.
TRANSFORMER_CONFIG_FILES = (
    "sentence_bert_config.json",
    "sentence_roberta_config.json",
    "sentence_distilbert_config.json",
    "sentence_camembert_config.json",
    "sentence_albert_config.json",
    "sentence_xlm-roberta_config.json",
    "sentence_xlnet_config.json",
)
LEGACY_POOLING_KEYS = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# Transformer-module settings (5.4+) whose default is the plain encoder forward pass seaembed builds.
TRANSFORMER_DEFAULTS = {
    "transformer_task": "feature-extraction",
    "module_output_name": "token_embeddings",
}
PER_TASK_LENGTHS = ("query_length", "document_length", "query_expansion")


@dataclass
class Layout:
    normalize: bool
    max_seq_length: int | None  # None: the encoder's positions decide
    max_seq_length_source: str  # where it came from, for messages
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    files: list[Path] = field(default_factory=list)  # every file read, for the manifest's sha256 list


def read_json(path: Path, required: bool = True) -> dict | list:
    if not path.exists():
        if required:
            raise CheckpointError(f"{path} is missing; is this a sentence-transformers directory?")
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path} is not valid JSON ({err})") from err


def read_modules(model_dir: Path) -> list[tuple[str, Path]]:
    """modules.json as (kind, directory) pairs, refusing any pipeline but Transformer → Pooling → optional Normalize"""
    path = model_dir / "modules.json"
    modules = read_json(path)
    if not isinstance(modules, list):
        raise CheckpointError(f"{path} must hold a list of modules, found {type(modules).__name__}")
    kinds = []
    for position, module in enumerate(modules):
        type_path = str(module.get("type", ""))
        kind = MODULE_TYPES.get(type_path)
        if kind is None:
            name = type_path.rsplit(".", 1)[-1] or "(no type)"
            raise CheckpointError(
                f"{path}: module {position} is {type_path or '(no type)'}; seaembed exports {SUPPORTED_PIPELINE}, "
                f"so {name} is not supported (its output would differ from sentence-transformers')"
            )
        kinds.append((kind, model_dir / str(module.get("path", ""))))
    order = [kind for kind, _ in kinds]
    if order not in ([TRANSFORMER, POOLING], [TRANSFORMER, POOLING, NORMALIZE]):
        raise CheckpointError(f"{path}: modules are {' → '.join(order) or 'none'}; seaembed exports {SUPPORTED_PIPELINE}")
    if kinds[0][1].resolve() != model_dir.resolve():
        raise CheckpointError(
            f"{path}: the Transformer module lives in {kinds[0][1].name!r}; seaembed reads it from the checkpoint root "
            "(path \"\"), where sentence-transformers 3.x and later save it"
        )
    return kinds


def pooling_modes(config: dict) -> tuple[list[str], str]:
    """The active pooling modes and the setting that chose them, as the loading version would see them."""
    if config.get("pooling_mode") is not None:
        mode = config["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else list(mode)
        return [str(m).lower() for m in modes], f"pooling_mode {mode!r}"
    active = [key for key in LEGACY_POOLING_KEYS if config.get(key, key == "pooling_mode_mean_tokens")]
    return [LEGACY_POOLING_KEYS[key] for key in active], " + ".join(active) or "no pooling_mode_* key true"


def check_pooling(pooling_dir: Path, hidden: int) -> Path:
    path = pooling_dir / "config.json"
    config = read_json(path)
    modes, setting = pooling_modes(config)
    if not modes:
        raise CheckpointError(
            f"{path} enables no pooling mode (sentence-transformers < 5.4 returns empty vectors for it, later versions "
            'mean): set "pooling_mode": "mean"'
        )
    if modes != ["mean"]:
        raise CheckpointError(
            f'{path} enables {setting}; seaembed implements mean pooling only ("pooling_mode": "mean", or '
            "pooling_mode_mean_tokens true and every other pooling_mode_* false)"
        )
    if config.get("include_prompt", True) is False:
        raise CheckpointError(
            f"{path} sets include_prompt false; seaembed pools over every token, prompt included (E5 prompts count in "
            "the mean): include_prompt must be true"
        )
    dimension = config.get("embedding_dimension", config.get("word_embedding_dimension"))
    if dimension is not None and int(dimension) != hidden:
        raise CheckpointError(f"{path} says embedding_dimension {dimension} but config.json hidden_size is {hidden}")
    return path


def check_normalize(normalize_dir: Path) -> Path | None:
    """6.x Normalize may name the feature it normalises; anything but the sentence embedding is not ours."""
    path = normalize_dir / "config.json"
    config = read_json(path, required=False)
    for key in ("module_input_name", "module_output_name"):
        if config.get(key, "sentence_embedding") != "sentence_embedding":
            raise CheckpointError(f"{path} sets {key} {config[key]!r}; seaembed normalises the sentence embedding only")
    return path if path.exists() else None


def transformer_config(model_dir: Path) -> tuple[dict, Path | None]:
    for name in TRANSFORMER_CONFIG_FILES:
        config = read_json(model_dir / name, required=False)
        if config:
            return config, model_dir / name
    return {}, None


def check_transformer_settings(config: dict, path: Path) -> None:
    for key, default in TRANSFORMER_DEFAULTS.items():
        if config.get(key, default) != default:
            raise CheckpointError(f"{path} sets {key} {config[key]!r}; seaembed exports {key} {default!r} only")
    for key in PER_TASK_LENGTHS:
        if config.get(key) is not None:
            raise CheckpointError(
                f"{path} sets {key} {config[key]!r} (a per-task length of multi-vector models); seaembed truncates every "
                "input at one max_seq_length: remove the setting"
            )
    if config.get("do_lower_case"):
        raise CheckpointError(f"{path} sets do_lower_case true; seaembed runs the tokenizer as written: set it false")
    processing = config.get("processing_kwargs") or {}
    if not isinstance(processing, dict) or any(processing.values()):
        raise CheckpointError(
            f"{path} sets processing_kwargs {config['processing_kwargs']!r}; seaembed tokenizes with the defaults "
            "(truncation at max_seq_length): remove processing_kwargs"
        )
    modality = config.get("modality_config")
    if modality is not None:
        text = modality.get("text") if isinstance(modality, dict) else None
        if set(modality) != {"text"} or not text or text.get("method", "forward") != "forward" or text.get(
            "method_output_name", "last_hidden_state"
        ) != "last_hidden_state":
            raise CheckpointError(
                f"{path} sets modality_config {modality!r}; seaembed exports text through the encoder's forward "
                '({"text": {"method": "forward", "method_output_name": "last_hidden_state"}})'
            )


def resolve_max_seq_length(model_dir: Path, config: dict, config_path: Path | None, max_tokens: int) -> tuple[int | None, str]:
    """The truncation length sentence-transformers uses, and where it is written.

    sentence-transformers caps a tokenizer-derived length at max_position_embeddings; XLM-R's 514 positions
    hold 512 tokens (2 are the padding offset), so the cap here is the encoder's real max_tokens: the two
    differ only for inputs sentence-transformers cannot embed at all.
    """
    for key in ("processor_kwargs", "tokenizer_args"):
        value = (config.get(key) or {}).get("model_max_length")
        if value is not None:
            return int(value), f"{config_path.name} {key}.model_max_length"
    if config.get("max_seq_length") is not None:
        return int(config["max_seq_length"]), f"{config_path.name} max_seq_length"
    tokenizer_config = read_json(model_dir / "tokenizer_config.json", required=False)
    value = tokenizer_config.get("model_max_length")
    if value is not None and int(value) < 10**9:  # transformers writes ~1e30 for "no limit"
        return min(int(value), max_tokens), "tokenizer_config.json model_max_length"
    return None, "config.json max_position_embeddings"


def read_prompts(model_dir: Path) -> tuple[dict[str, str], str | None, Path | None]:
    path = model_dir / "config_sentence_transformers.json"
    config = read_json(path, required=False)
    model_type = config.get("model_type", "SentenceTransformer")
    if model_type != "SentenceTransformer":
        raise CheckpointError(f"{path} says model_type {model_type!r}; seaembed exports SentenceTransformer models only")
    if config.get("truncate_dim") is not None:
        raise CheckpointError(
            f"{path} sets truncate_dim {config['truncate_dim']}; seaembed returns the full vectors: remove truncate_dim "
            "and slice the vectors yourself"
        )
    prompts = {str(k): str(v) for k, v in (config.get("prompts") or {}).items() if v is not None}
    default = config.get("default_prompt_name")
    if default is not None and default not in prompts:
        raise CheckpointError(f"{path} default_prompt_name {default!r} is not one of its prompts {sorted(prompts)}")
    return prompts, default, path if path.exists() else None


def read_layout(model_dir: Path, hidden: int, max_tokens: int) -> Layout:
    """modules.json, Pooling, Normalize, the Transformer module's settings and the prompts."""
    modules = read_modules(model_dir)
    files = [model_dir / "modules.json", check_pooling(modules[1][1], hidden)]
    normalize = len(modules) == 3
    if normalize:
        files.append(check_normalize(modules[2][1]))
    config, config_path = transformer_config(model_dir)
    if config_path is not None:
        check_transformer_settings(config, config_path)
        files.append(config_path)
    max_seq_length, source = resolve_max_seq_length(model_dir, config, config_path, max_tokens)
    prompts, default_prompt_name, prompts_path = read_prompts(model_dir)
    files.append(prompts_path)
    return Layout(
        normalize=normalize,
        max_seq_length=max_seq_length,
        max_seq_length_source=source,
        prompts=prompts,
        default_prompt_name=default_prompt_name,
        files=[f for f in files if f is not None],
    )
