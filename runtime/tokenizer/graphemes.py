"""Extended grapheme clusters (UAX #29), as the Rust `unicode-segmentation` crate yields them.

XLM-R's Precompiled normaliser decides per cluster whether to look the whole cluster up
in its charsmap, so the runtime needs the same cluster boundaries as `tokenizers`.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache

from .grapheme_data import (
    EXTPICT_RANGES,
    GCB_RANGES,
    INCB_CONSONANT_RANGES,
    INCB_EXTEND_RANGES,
    INCB_LINKER_RANGES,
)

_GCB_STARTS = [r[0] for r in GCB_RANGES]


def _membership(table: list[tuple[int, int]]):
    starts = [r[0] for r in table]

    def contains(cp: int) -> bool:
        i = bisect_right(starts, cp) - 1
        return i >= 0 and table[i][0] <= cp <= table[i][1]

    return contains


_is_ext_pict = _membership(EXTPICT_RANGES)
_is_incb_consonant = _membership(INCB_CONSONANT_RANGES)
_is_incb_linker = _membership(INCB_LINKER_RANGES)
_is_incb_extend = _membership(INCB_EXTEND_RANGES)


@lru_cache(maxsize=65536)
def _props(ch: str) -> tuple[str, bool, str]:
    """(Grapheme_Cluster_Break, Extended_Pictographic, InCB) of one character."""
    cp = ord(ch)
    i = bisect_right(_GCB_STARTS, cp) - 1
    gcb = GCB_RANGES[i][2] if i >= 0 and GCB_RANGES[i][0] <= cp <= GCB_RANGES[i][1] else "Other"
    if _is_incb_linker(cp):
        incb = "Linker"
    elif _is_incb_consonant(cp):
        incb = "Consonant"
    elif _is_incb_extend(cp):
        incb = "Extend"
    else:
        incb = ""
    return gcb, _is_ext_pict(cp), incb


_HANGUL_AFTER_L = {"L", "V", "LV", "LVT"}
_BREAK_ALWAYS = {"Control", "CR", "LF"}


def grapheme_clusters(text: str) -> list[str]:
    """Split `text` into extended grapheme clusters."""
    if text.isascii():
        # Only CR LF forms a multi-character cluster in ASCII.
        if "\r\n" not in text:
            return list(text)
    clusters: list[str] = []
    start = 0
    prev_gcb = ""
    # GB11: an Extended_Pictographic, then Extend*, then ZWJ.
    emoji_state = 0  # 0: none, 1: ExtPict Extend*, 2: ... ZWJ
    # GB9c: Consonant [Extend Linker]* Linker [Extend Linker]*
    conjunct_state = 0  # 0: none, 1: consonant seen, 2: linker seen after it
    ri_run = 0
    for i, ch in enumerate(text):
        gcb, ext_pict, incb = _props(ch)
        if i == 0:
            join = False
            is_break = True
        else:
            join = _joins(prev_gcb, gcb, ext_pict, incb, emoji_state, conjunct_state, ri_run)
            is_break = not join
        if is_break and i > 0:
            clusters.append(text[start:i])
            start = i
        # update states after deciding the boundary before `ch`
        if ext_pict:
            emoji_state = 1
        elif gcb == "Extend" and emoji_state == 1:
            emoji_state = 1
        elif gcb == "ZWJ" and emoji_state == 1:
            emoji_state = 2
        else:
            emoji_state = 0
        if incb == "Consonant":
            conjunct_state = 1
        elif incb == "Linker" and conjunct_state >= 1:
            conjunct_state = 2
        elif incb == "Extend" and conjunct_state >= 1:
            pass
        else:
            conjunct_state = 0
        ri_run = ri_run + 1 if gcb == "RI" else 0
        prev_gcb = gcb
    if text:
        clusters.append(text[start:])
    return clusters


def _joins(prev: str, cur: str, ext_pict: bool, incb: str, emoji_state: int, conjunct_state: int, ri_run: int) -> bool:
    if prev == "CR" and cur == "LF":  # GB3
        return True
    if prev in _BREAK_ALWAYS or cur in _BREAK_ALWAYS:  # GB4, GB5
        return False
    if prev == "L" and cur in _HANGUL_AFTER_L:  # GB6
        return True
    if prev in ("LV", "V") and cur in ("V", "T"):  # GB7
        return True
    if prev in ("LVT", "T") and cur == "T":  # GB8
        return True
    if cur in ("Extend", "ZWJ"):  # GB9
        return True
    if cur == "SpacingMark":  # GB9a
        return True
    if prev == "Prepend":  # GB9b
        return True
    if incb == "Consonant" and conjunct_state == 2:  # GB9c
        return True
    if ext_pict and emoji_state == 2 and prev == "ZWJ":  # GB11
        return True
    if prev == "RI" and cur == "RI" and ri_run % 2 == 1:  # GB12, GB13
        return True
    return False  # GB999
