"""Request bodies → validated fields, with errors that name the field, the value and the fix.

Every field is checked for its type before it is used (a list where a name belongs is a 422, not
a TypeError), and an error shows what the value was without printing it whole.
"""

from __future__ import annotations

import json

import orjson

from .errors import ApiError

# orjson refuses nesting deeper than this; the stdlib fallback is held to the same bound.
MAX_JSON_DEPTH = 1024


def describe(value) -> str:
    """A short, safe description of a JSON value for an error message: `true`, `5`, `"abc"`, `a list of 3 strings`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= 24 else text[:20] + "…"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "…"
        return json.dumps(shown, ensure_ascii=False)
    if isinstance(value, dict):
        return f"an object with {len(value)} key{'s' if len(value) != 1 else ''}"
    if isinstance(value, list):
        if not value:
            return "an empty list"
        kinds = {_kind(item) for item in value}
        what = kinds.pop() + "s" if len(kinds) == 1 else "mixed values"
        return f"a list of {len(value)} {what}"
    return type(value).__name__


def _kind(value) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return "null"


def json_body(raw: bytes) -> dict:
    """orjson on the fast path; the stdlib on failure, for its precise messages (and because it
    accepts lone surrogates, which the tokenizer then refuses with the input's index)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as fast_err:
        if "recursion" in str(fast_err).lower():
            raise ApiError(422, f"request body nests JSON deeper than {MAX_JSON_DEPTH} levels") from None
        try:
            body = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ApiError(422, f"request body is not valid UTF-8 (byte {err.start})") from None
        except json.JSONDecodeError as err:
            raise ApiError(422, f"request body is not valid JSON: {err.msg} at position {err.pos}") from None
        except RecursionError:
            raise ApiError(422, f"request body nests JSON deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(body, dict):
        raise ApiError(422, f"request body must be a JSON object, got {describe(body)}")
    return body


def _looks_like_token_ids(item) -> bool:
    """An int, or a non-empty list of ints: what OpenAI clients send after tokenizing (tiktoken ids)."""
    if isinstance(item, bool):
        return False
    if isinstance(item, int):
        return True
    return isinstance(item, list) and bool(item) and all(isinstance(x, int) and not isinstance(x, bool) for x in item)


def texts_field(value, field: str, max_items: int) -> list[str]:
    """A string or a non-empty list of non-empty strings."""
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list):
        texts = value
        if not texts:
            raise ApiError(422, f"`{field}` is an empty list; send at least one text", field)
        if len(texts) > max_items:
            raise ApiError(413, f"batch size {len(texts)} > maximum allowed batch size {max_items} (--max-client-batch-size)", field)
        for i, item in enumerate(texts):
            if type(item) is str:
                continue
            if _looks_like_token_ids(item):
                raise ApiError(422, f"`{field}`[{i}] holds token ids ({describe(item)}); this server accepts text only", field, i)
            if isinstance(item, list):
                raise ApiError(422, f"`{field}`[{i}] is {describe(item)}; send one string per input (nested lists are not accepted)", field, i)
            raise ApiError(422, f"`{field}`[{i}] must be a string, got {describe(item)}", field, i)
    elif value is None:
        raise ApiError(422, f"`{field}` is missing: `{field}` must be a string or a list of strings", field)
    else:
        raise ApiError(422, f"`{field}` must be a string or a list of strings, got {describe(value)}", field)
    if "" in texts:
        i = texts.index("")
        raise ApiError(422, f"`{field}`[{i}] is an empty string; empty inputs have no embedding", field, i)
    return texts


def bool_field(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(422, f"`{name}` must be true or false, got {describe(value)}", name)
    return value


def optional_str_field(body: dict, name: str) -> str | None:
    """A string field that may be absent or null; anything else is a 422 naming what was sent."""
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise ApiError(422, f"`{name}` must be a string, got {describe(value)}", name)
    return value


def choice_field(body: dict, name: str, choices: tuple[str, ...], default: str) -> str:
    value = optional_str_field(body, name) or default
    if value not in choices:
        raise ApiError(422, f"`{name}` must be one of {', '.join(choices)}, got {describe(value)}", name)
    return value


def dimensions_field(body: dict, dim: int) -> int | None:
    dimensions = body.get("dimensions")
    if dimensions is None:
        return None
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= dim:
        raise ApiError(
            422,
            f"`dimensions` must be an integer from 1 to {dim}, got {describe(dimensions)} (the model is not Matryoshka-trained: fewer dimensions lose quality)",
            "dimensions",
        )
    return dimensions


def direction_field(body: dict) -> str:
    """TEI accepts Right/Left in either case (router/src/http/types.rs TruncationDirection)."""
    direction = optional_str_field(body, "truncation_direction") or "right"
    if direction.lower() not in ("right", "left"):
        raise ApiError(422, f"`truncation_direction` must be 'Right' or 'Left', got {describe(direction)}", "truncation_direction")
    return direction.lower()
