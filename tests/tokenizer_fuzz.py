"""Seeded fuzz texts for the tokenizer: every script of the 11 languages and the characters that
make tokenizers differ (combining marks, zero-width and bidi controls, C0/C1 controls, emoji
ZWJ sequences and flags, full-width and compatibility forms, odd whitespace, literal special
tokens with spaces around them), mixed into strings short and long.
"""

from __future__ import annotations

import random

SCRIPTS = {
    "latin": [(0x41, 0x5A), (0x61, 0x7A), (0x30, 0x39), (0x21, 0x2F), (0xC0, 0xFF)],
    "vietnamese": [(0x1EA0, 0x1EF9), (0x102, 0x103), (0x110, 0x111), (0x1A0, 0x1B0)],
    "thai": [(0x0E01, 0x0E3A), (0x0E3F, 0x0E5B)],
    "lao": [(0x0E81, 0x0EBD), (0x0EC0, 0x0EDF)],
    "khmer": [(0x1780, 0x17DD), (0x17E0, 0x17F9), (0x19E0, 0x19FF)],
    "burmese": [(0x1000, 0x109F)],
    "tamil": [(0x0B82, 0x0BCD), (0x0BD0, 0x0BFA)],
    "chinese": [(0x4E00, 0x9FFF), (0x3000, 0x303F), (0x20000, 0x2A6DF)],
    "hangul": [(0x1100, 0x11FF), (0xAC00, 0xD7A3)],  # L/V/T jamo exercise the grapheme rules
    "devanagari": [(0x0900, 0x097F)],  # InCB conjuncts
    "arabic": [(0x0600, 0x06FF)],  # prepend marks
}
COMBINING = [(0x0300, 0x036F), (0x1AB0, 0x1ACE), (0x20D0, 0x20F0), (0xFE20, 0xFE2F)]
ZERO_WIDTH_AND_BIDI = [0x200B, 0x200C, 0x200D, 0x200E, 0x200F, 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2060, 0x2061,
                       0x2066, 0x2067, 0x2068, 0x2069, 0xFEFF, 0x061C, 0x180E, 0x00AD, 0x034F]
CONTROLS = [(0x00, 0x1F), (0x7F, 0x9F)]
WHITESPACE = [" ", " ", " ", "  ", "   ", "\t", "\n", "\r\n", "\r", "\x0b", "\x0c", "\xa0", "\u1680", "\u2000", "\u2003",
              "\u2009", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\x85", "\x1c", "\u2581", " \u2581 "]
EMOJI = ["😀", "👍🏽", "👨\u200d👩\u200d👧\u200d👦", "🏳️\u200d🌈", "🇸🇬", "🇹🇭🇻🇳", "🇮", "1️⃣", "❤️", "🧑🏿\u200d💻", "\u200d👩",
         "👩\u200d", "🫠", "©️", "☺", "🏻", "\U0001F1E6\U0001F1E6\U0001F1E6"]
FULL_WIDTH_AND_COMPAT = [(0xFF01, 0xFF5E), (0xFF61, 0xFF9F), (0x2460, 0x24FF), (0x3380, 0x33FF), (0xFB00, 0xFB06),
                         (0x2070, 0x209C), (0x2150, 0x218B), (0x1D400, 0x1D4FF)]
OTHER = [(0xE000, 0xE0FF), (0xFFF0, 0xFFFF), (0x10FFF0, 0x10FFFF), (0xE0020, 0xE007F), (0xFE00, 0xFE0F)]
SPECIAL_TOKENS = ["<s>", "</s>", "<pad>", "<unk>", "<mask>", " <mask>", "<mask> ", "  <mask>  ", "\t<mask>\n", " </s> ",
                  "<s><mask></s>", "<mask><mask>", "<mas", "< s >", "</s", "<<s>>", "x<mask>y", "\u3000<mask>"]


def _char(rng: random.Random, ranges: list[tuple[int, int]]) -> str:
    first, last = rng.choice(ranges)
    return chr(rng.randint(first, last))


def _run(rng: random.Random, ranges: list[tuple[int, int]], low: int = 1, high: int = 12) -> str:
    return "".join(_char(rng, ranges) for _ in range(rng.randint(low, high)))


def _fragment(rng: random.Random, words: list[str]) -> str:
    kind = rng.random()
    if kind < 0.25:
        return rng.choice(words)
    if kind < 0.45:
        return _run(rng, SCRIPTS[rng.choice(list(SCRIPTS))])
    if kind < 0.55:
        return rng.choice(WHITESPACE)
    if kind < 0.62:
        return _char(rng, SCRIPTS[rng.choice(list(SCRIPTS))]) + _run(rng, COMBINING, 1, 4)
    if kind < 0.68:
        return chr(rng.choice(ZERO_WIDTH_AND_BIDI))
    if kind < 0.73:
        return _run(rng, CONTROLS, 1, 3)
    if kind < 0.80:
        return rng.choice(EMOJI)
    if kind < 0.86:
        return _run(rng, FULL_WIDTH_AND_COMPAT, 1, 6)
    if kind < 0.93:
        return rng.choice(SPECIAL_TOKENS)
    return _run(rng, OTHER, 1, 3)


def fuzz_texts(corpus: list[str], count: int = 10_000, seed: int = 11) -> list[str]:
    """`count` strings, mostly short, some long enough to be truncated at 512 tokens."""
    rng = random.Random(seed)
    words = [w for line in corpus for w in line.split(" ") if w] or ["word"]
    texts = []
    for _ in range(count):
        size = rng.choice((1, 2, 3, 5, 8, 13, 21)) if rng.random() < 0.97 else rng.randint(150, 400)
        joiner = rng.choice(("", "", " "))
        texts.append(joiner.join(_fragment(rng, words) for _ in range(size)))
    return texts


def long_texts(corpus: list[str], length: int = 100_000, seed: int = 5) -> dict[str, str]:
    """100,000-character inputs of different kinds (spaced, unspaced scripts, emoji, marks, specials)."""
    rng = random.Random(seed)

    def repeat(unit: str) -> str:
        return (unit * (length // max(1, len(unit)) + 1))[:length]

    mixed = fuzz_texts(corpus, 400, seed)
    return {
        "spaced-multilingual": repeat(" ".join(corpus)),
        "unspaced-thai-lao-khmer-burmese": repeat("ภาษาไทยเป็นภาษาที่สวยงามພາສາລາວភាសាខ្មែរမြန်မာဘာသာ"),
        "cjk": repeat("新加坡是一个多元文化的城市国家，马来西亚和印度尼西亚。"),
        "emoji-zwj": repeat("👨\u200d👩\u200d👧\u200d👦🇸🇬🏳️\u200d🌈 "),
        "combining-marks": "".join(rng.choice("aeiouxyz") + _run(rng, COMBINING, 0, 3) for _ in range(length // 2))[:length],
        "whitespace-and-specials": repeat("a  <mask>  b\t\n</s>\u3000 c   "),
        "fuzz-mix": repeat("".join(mixed)),
    }
