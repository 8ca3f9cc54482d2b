"""Encoder weights as transformers writes them: one file or shards, safetensors or a pickled state dict.

save_pretrained writes `model.safetensors`, or above its max_shard_size `model-0000k-of-0000n.safetensors`
plus `model.safetensors.index.json` (a weight_map from tensor name to shard); transformers < 5 with
safe_serialization=False wrote the same two shapes as `pytorch_model.bin` / `pytorch_model.bin.index.json`.
Pickles are opened with torch.load(weights_only=True): a checkpoint cannot run code here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import CheckpointError

# In order of preference: what a hub download fetches when a repo has several.
SINGLE_SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
SINGLE_BIN, BIN_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
SHARD_PATTERNS = {
    SAFETENSORS_INDEX: re.compile(r"model-\d+-of-\d+\.safetensors"),
    BIN_INDEX: re.compile(r"pytorch_model-\d+-of-\d+\.bin"),
}
# When the repo's file list cannot be fetched (offline with a cached snapshot): every supported format.
ANY_WEIGHTS_PATTERNS = (SINGLE_SAFETENSORS, SAFETENSORS_INDEX, "model-*-of-*.safetensors", SINGLE_BIN, BIN_INDEX, "pytorch_model-*-of-*.bin")
SUPPORTED = f"{SINGLE_SAFETENSORS}, {SAFETENSORS_INDEX} + shards, {SINGLE_BIN} or {BIN_INDEX} + shards"


@dataclass(frozen=True)
class WeightFiles:
    """The files holding the encoder: one weights file, or an index and the shards it names."""

    files: tuple[Path, ...]
    index: Path | None = None

    @property
    def primary(self) -> Path:
        """The file that names the weights: the index of a sharded checkpoint, else the one weights file."""
        return self.index or self.files[0]

    @property
    def all_files(self) -> tuple[Path, ...]:
        return ((self.index,) if self.index else ()) + self.files


def _shards_from_index(index: Path) -> tuple[Path, ...]:
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise CheckpointError(f"{index} has no weight_map ({err}); save_pretrained writes one naming each tensor's shard") from err
    names = sorted(set(weight_map.values()))
    for name in names:
        if Path(name).name != name:
            raise CheckpointError(f"{index} names shard {name!r}; shards must sit beside the index")
    missing = [name for name in names if not (index.parent / name).exists()]
    if missing:
        raise CheckpointError(f"{index} names shards that are not in {index.parent}: {', '.join(missing)}")
    return tuple(index.parent / name for name in names)


def find_weight_files(model_dir: Path) -> WeightFiles:
    for name in (SINGLE_SAFETENSORS, SAFETENSORS_INDEX, SINGLE_BIN, BIN_INDEX):
        path = model_dir / name
        if path.exists():
            if name in SHARD_PATTERNS:
                return WeightFiles(files=_shards_from_index(path), index=path)
            return WeightFiles(files=(path,))
    raise CheckpointError(f"no encoder weights in {model_dir}: expected {SUPPORTED}")


def _load_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except TypeError:  # bf16 tensors have no numpy dtype: go through torch
        from safetensors.torch import load_file as load_torch

        return {k: v.float().numpy() for k, v in load_torch(str(path)).items()}


def _load_pickle(path: Path) -> dict[str, np.ndarray]:
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # an unpickling error names what the file tried to import
        raise CheckpointError(f"{path} cannot be read as a plain state dict with torch.load(weights_only=True): {err}") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state dict of tensors")
    return {k: v.float().numpy() for k, v in state.items() if hasattr(v, "numpy")}


def load_weights(weights: WeightFiles) -> dict[str, np.ndarray]:
    """Every tensor of every shard, by name (dtype as stored, bf16 widened to float32)."""
    out: dict[str, np.ndarray] = {}
    for path in weights.files:
        out.update(_load_safetensors(path) if path.suffix == ".safetensors" else _load_pickle(path))
    return out


def choose_hub_files(repo_files: Iterable[str]) -> list[str]:
    """The weight files to download from a repo's root: its preferred format only, all shards of it."""
    names = set(repo_files)
    for name in (SINGLE_SAFETENSORS, SAFETENSORS_INDEX, SINGLE_BIN, BIN_INDEX):
        if name in names:
            pattern = SHARD_PATTERNS.get(name)
            shards = sorted(n for n in names if pattern and pattern.fullmatch(n))
            if pattern and not shards:
                raise CheckpointError(f"the repo has {name} but no shard files matching {pattern.pattern}")
            return [name, *shards]
    root = sorted(n for n in names if "/" not in n)
    raise CheckpointError(f"the repo has no encoder weights at its root (expected {SUPPORTED}); it has {', '.join(root) or 'nothing'}")
