"""The checkpoint as sentence-transformers itself loads it: the reference every export is measured against.

checkpoint.py reads the files; this module opens them with the installed sentence-transformers and
checks that both saw the same settings (max length, pooling, prompts, Normalize), so a layout read
differently here fails the export instead of producing a bundle that truncates, prompts or normalises
differently. A layout saved by a newer sentence-transformers than the installed one is refused by name.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .checkpoint import Checkpoint
from .errors import CheckpointError
from .st_layout import read_json

log = logging.getLogger("seaembed.export")

# sentence-transformers >= 5 starts every model from these empty prompts, then adds the file's.
REFERENCE_DEFAULT_PROMPTS = ("query", "document")
PASSAGE_FOR_DOCUMENTS = (
    "{path}: the checkpoint has a 'passage' prompt but no 'document' prompt, so seaembed's encode_document and "
    "input_type document use 'passage' ({passage!r}, what E5 models are trained with); sentence-transformers >= 5 "
    "sends no prompt there (its encode_document takes its own empty 'document' default): call "
    "encode(..., prompt_name=\"passage\") on its side for identical vectors, or add a 'document' prompt to "
    "config_sentence_transformers.json"
)


def _reference_pooling(model) -> str:
    """The Pooling module's modes as "mean", "cls+max", … (5.4+ keeps pooling_mode, older versions one flag each)."""
    for module in model:
        if type(module).__name__ == "Pooling":
            if hasattr(module, "get_pooling_mode_str"):
                return module.get_pooling_mode_str()
            mode = module.pooling_mode
            return mode if isinstance(mode, str) else "+".join(mode)
    return "none"


def check_reference_agrees(checkpoint: Checkpoint, model) -> None:
    """What this reader took from the files must be what sentence-transformers itself loaded from them.

    A layout read differently here (a future version moving a setting again) fails the export
    instead of producing a bundle that truncates, prompts or normalises differently.
    """
    import sentence_transformers

    arch = checkpoint.architecture
    loaded_max = getattr(model, "max_seq_length", None)
    # Only sentence-transformers' own empty defaults are set aside: any other prompt, empty or not, must match.
    loaded_prompts = {
        k: v
        for k, v in (model.prompts or {}).items()
        if v is not None and (v or k in checkpoint.prompts or k not in REFERENCE_DEFAULT_PROMPTS)
    }
    loaded = {
        "max_seq_length": min(int(loaded_max), arch.max_tokens) if loaded_max is not None else arch.max_tokens,
        "normalize": any(type(module).__name__ == "Normalize" for module in model),
        "pooling": _reference_pooling(model),
        "include_prompt": all(getattr(module, "include_prompt", True) for module in model),
        "prompts": loaded_prompts,
        "default_prompt_name": model.default_prompt_name,
    }
    ours = {
        "max_seq_length": checkpoint.max_tokens,
        "normalize": checkpoint.normalize,
        "pooling": "mean",
        "include_prompt": True,
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
    # The one deliberate difference: documents keep E5's "passage: " where sentence-transformers >= 5 sends none.
    if "passage" in checkpoint.prompts and "document" not in checkpoint.prompts:
        log.warning(PASSAGE_FOR_DOCUMENTS.format(path=checkpoint.path, passage=checkpoint.prompts["passage"]))


def min_version_for_layout(model_dir: Path) -> str | None:
    """The first sentence-transformers that knows the module paths modules.json names (st_layout's history)."""
    types = " ".join(str(m.get("type", "")) for m in read_json(model_dir / "modules.json") if isinstance(m, dict))
    if "sentence_transformers.base.modules.normalize" in types:
        return "6.0"
    if "sentence_transformers.base.modules" in types or "sentence_transformers.sentence_transformer.modules" in types:
        return "5.4"
    return None


def open_reference(checkpoint: Checkpoint):
    """sentence-transformers' own model of the checkpoint, or a CheckpointError if the installed version cannot load it.

    A layout saved by a newer sentence-transformers names module paths and settings an older one does not have
    (ImportError on the path, TypeError on an unknown keyword such as Pooling's embedding_dimension).
    """
    import sentence_transformers
    from packaging.version import InvalidVersion, Version

    from . import parity

    try:
        return parity.TorchReference(checkpoint.path)
    except (ImportError, TypeError, AttributeError) as err:
        installed = sentence_transformers.__version__
        saved = read_json(checkpoint.path / "config_sentence_transformers.json", required=False).get("__version__", {})
        saved = saved.get("sentence_transformers") if isinstance(saved, dict) else None
        try:
            saved_minor = f"{Version(saved).major}.{Version(saved).minor}" if saved else None
        except InvalidVersion:
            saved_minor = None
        # The module paths decide where __version__ is missing or was left behind by a hand-edited layout.
        candidates = [v for v in (saved_minor, min_version_for_layout(checkpoint.path)) if v]
        needed = max(candidates, key=Version) if candidates else None
        problem = (
            f"{checkpoint.path} was saved by sentence-transformers {saved or 'of unknown version'}; the installed "
            f"sentence-transformers {installed} cannot load it ({type(err).__name__}: {err})"
        )
        if needed and Version(needed) > Version(installed):
            fix = f"pip install 'sentence-transformers>={needed}' (the export loads the checkpoint with it as its reference)"
        else:
            fix = "seaembed reads the layouts of sentence-transformers 3.x-6.x; please report this one"
        raise CheckpointError(f"{problem}: {fix}") from err
