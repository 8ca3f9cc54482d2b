"""JSON that comes from outside (bundle files, caches): size and nesting bounded before anything walks it.

The stdlib parser recurses once per `[` or `{`: 100,000 nested brackets end in RecursionError, and
a multi-gigabyte file ends in MemoryError, neither of which says what was wrong with the file.
Request bodies have their own reader (server/parsing.py: orjson, same depth limit).
"""

from __future__ import annotations

import json
from pathlib import Path

# Deeper than any file this project writes (a manifest is 5 levels deep), far below the interpreter's recursion limit.
MAX_DEPTH = 64


class JsonLimitError(ValueError):
    """The text is not JSON this reader accepts: too large, too deeply nested, not UTF-8 or not JSON."""


def nesting_depth(value, limit: int = MAX_DEPTH) -> int:
    """Depth of a parsed JSON value (a scalar is 0, `[]` is 1), counted without recursion; stops past `limit`."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth) for child in children if isinstance(child, (dict, list)))
    return deepest


def loads_bounded(text: str | bytes, max_depth: int = MAX_DEPTH):
    """json.loads that raises JsonLimitError (never RecursionError) and refuses nesting deeper than max_depth."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as err:
            raise JsonLimitError(f"is not UTF-8 text (byte {err.start})") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise JsonLimitError(f"nests deeper than {max_depth} levels") from None
    except json.JSONDecodeError as err:
        raise JsonLimitError(f"is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    if nesting_depth(value, max_depth) > max_depth:
        raise JsonLimitError(f"nests deeper than {max_depth} levels")
    return value


def read_json_file(path: str | Path, max_bytes: int, max_depth: int = MAX_DEPTH):
    """A JSON file of at most max_bytes (checked before reading), parsed by loads_bounded."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise JsonLimitError(f"is {size:,} bytes; at most {max_bytes:,} are read")
    with open(path, "rb") as handle:
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:  # it grew between stat and read
        raise JsonLimitError(f"is over {max_bytes:,} bytes; at most {max_bytes:,} are read")
    return loads_bounded(raw, max_depth)
