"""Which FP16 graphs the CUDA backend runs, and which of them takes a given batch (pure: no GPU, no ORT).

Measured on an H200 (issue 22, XLM-R-large shape, × PyTorch FP16 SDPA, one run):

| shape | onnx-fp16-ort | -mha | -packed |
|---|---:|---:|---:|
| 8 × 512 / 64 × 128 / 64 × 512 / 256 × 512 (no padding) | 0.94 / 0.84 / 0.51 / 0.50 | 1.69 / 0.96 / 0.93 / 0.94 | 1.55 / 0.88 / 0.84 / 0.86 |
| mixed 8–512-token corpus | 0.67 | 1.31 | 1.48 |

So the MultiHeadAttention graph is the padded default (the legacy-Attention `onnx-fp16-ort` ran
the MATH kernel), and the packed graph takes a batch only when padding would waste enough of it:
on batches with no padding packed ran at 0.90–0.92 of mha, i.e. it costs ~1.10× per real token,
while mha's cost grows with padded tokens, real / (1 − waste). They break even at
waste = 1 − 1 / 1.10 ≈ 0.09; PACKED_WASTE_THRESHOLD rounds that up to 0.10.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Packed takes a batch whose padding would be more than this share of its padded tokens (derivation above).
PACKED_WASTE_THRESHOLD = 0.10
PACKED_WASTE_ENV = "SEAEMBED_CUDA_PACKED_WASTE"
# Below this many inputs the packed graph's bookkeeping outweighs the padding it saves (a guess, not
# measured on its own). Batches a CUDA graph covers go padded whatever their padding: replayed graphs
# ran 9.2-9.5x PyTorch at 1 x 128 and 8 x 16, the packed graph 3.4-3.7x.
PACKED_MIN_BATCH = 4
CUDA_GRAPHS_ENV = "SEAEMBED_CUDA_GRAPHS"  # "0" turns the default CUDA graphs off
ALWAYS_PACKED = -1.0  # packed_waste of a packed graph asked for by name: padded or not, every batch it can take

PACKED = "onnx-fp16-packed"
# The padded FP16 graph, best first: MultiHeadAttention (cuDNN flash / flash SDPA), then what older
# bundles have (legacy Attention on the MATH kernel, then the portable graph).
PADDED_FP16 = ("onnx-fp16-mha", "onnx-fp16-ort", "onnx-fp16")


@dataclass(frozen=True)
class CudaChoice:
    """The graphs a CUDA backend opens: `padded` for padded batches, `packed` (or None) for padding-free ones.

    packed_waste: the padding share above which a batch goes to the packed graph; ALWAYS_PACKED when the
    packed graph was asked for by name (it then takes every batch of PACKED_MIN_BATCH inputs or more).
    """

    padded: str | None
    packed: str | None = None
    packed_waste: float = PACKED_WASTE_THRESHOLD

    def describe(self) -> dict:
        out: dict = {"padded_artifact": self.padded}
        if self.packed:
            out.update(packed_artifact=self.packed, packed_above_waste=self.packed_waste, packed_min_batch=PACKED_MIN_BATCH)
        return out


def padding_waste(lengths: Sequence[int]) -> float:
    """Share of a padded batch's tokens that are padding: 1 − Σ len / (batch × longest)."""
    if not lengths:
        raise ValueError("padding_waste() needs at least one length")
    if min(lengths) < 1:
        raise ValueError(f"lengths must be >= 1, got {min(lengths)}")
    return 1.0 - sum(lengths) / (len(lengths) * max(lengths))


def takes_packed(lengths: Sequence[int], packed_waste: float = PACKED_WASTE_THRESHOLD, graph_covers: bool = False) -> bool:
    """True when this batch should run on the packed graph rather than the padded one.

    graph_covers: a captured CUDA graph would replay this batch padded (faster than any graph launch).
    """
    return not graph_covers and len(lengths) >= PACKED_MIN_BATCH and padding_waste(lengths) > packed_waste


def packed_waste_threshold(env: Mapping[str, str] = os.environ) -> float:
    """PACKED_WASTE_THRESHOLD, or SEAEMBED_CUDA_PACKED_WASTE (0 ≤ x ≤ 1; 1 never packs)."""
    raw = env.get(PACKED_WASTE_ENV)
    if raw is None or raw == "":
        return PACKED_WASTE_THRESHOLD
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{PACKED_WASTE_ENV}={raw!r}: give a share of padded tokens between 0 and 1 (default {PACKED_WASTE_THRESHOLD})")
    return value


def cuda_graphs_enabled(env: Mapping[str, str] = os.environ) -> bool:
    """CUDA graphs for short padded batches are on unless SEAEMBED_CUDA_GRAPHS=0."""
    raw = env.get(CUDA_GRAPHS_ENV, "1")
    if raw not in ("0", "1"):
        raise ValueError(f"{CUDA_GRAPHS_ENV}={raw!r}: 1 (the default) replays CUDA graphs for batches up to 8 × 128 tokens, 0 turns them off")
    return raw == "1"


def choose(available: Sequence[str], selected: str, explicit: bool, packed_waste: float = PACKED_WASTE_THRESHOLD) -> CudaChoice:
    """The graphs to open, given the artifact the backend's preference (or the caller) selected.

    available: the bundle's runnable artifact names (gate passed). selected: pick_artifact's result.
    explicit: the caller named `selected` (artifact=...): it runs alone, except that a packed graph
    still sends batches under PACKED_MIN_BATCH to a padded companion. Otherwise a padded FP16 pick
    is paired with the packed graph where the bundle has one (older bundles: padded only).
    """
    have = set(available)
    if selected == PACKED:
        return CudaChoice(padded=next((n for n in PADDED_FP16 if n in have), None), packed=PACKED, packed_waste=ALWAYS_PACKED if explicit else packed_waste)
    if explicit or selected not in PADDED_FP16:
        return CudaChoice(padded=selected)
    return CudaChoice(padded=selected, packed=PACKED if PACKED in have else None, packed_waste=packed_waste)


def graph_candidates(choice: CudaChoice, available: Sequence[str]) -> list[str]:
    """Padded graphs to try for CUDA graph capture, in order: the one in use, then the FP16 graphs
    ORT captured on the H200 (a graph with a node ORT places on the CPU cannot be captured)."""
    if choice.padded is None:
        return []
    have = set(available)
    fallbacks = [n for n in PADDED_FP16 if n in have and n != choice.padded] if choice.padded in PADDED_FP16 else []
    return [choice.padded, *fallbacks]
