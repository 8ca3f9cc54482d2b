"""Request bodies → validated fields, with errors that name the field, the value and the fix."""

from __future__ import annotations

import json

import orjson

from .errors import ApiError


def json_body(raw: bytes) -> dict:
    """orjson on the fast path; the stdlib on failure, for its precise messages (and because it
    accepts lone surrogates, which the tokenizer then refuses with the input's index)."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            body = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise ApiError(422, f"request body is not valid UTF-8 (byte {err.start})") from None
        except json.JSONDecodeError as err:
            raise ApiError(422, f"request body is not valid JSON: {err.msg} at position {err.pos}") from None
    if not isinstance(body, dict):
        raise ApiError(422, "request body must be a JSON object")
    return body


def texts_field(value, field: str, max_items: int) -> list[str]:
    """A string or a non-empty list of non-empty strings."""
    if isinstance(value, str):
        texts = [value]
    elif isinstance(value, list):
        texts = value
        if not texts:
            raise ApiError(422, f"`{field}` is an empty list; send at least one text", field)
        for i, item in enumerate(texts):
            if type(item) is not str:
                if isinstance(item, (int, list)):
                    raise ApiError(422, f"`{field}` holds token ids at index {i}; this server accepts text only", field, i)
                raise ApiError(422, f"`{field}`[{i}] must be a string, got {type(item).__name__}", field, i)
    else:
        raise ApiError(422, f"`{field}` must be a string or a list of strings", field)
    if len(texts) > max_items:
        raise ApiError(413, f"batch size {len(texts)} > maximum allowed batch size {max_items} (--max-client-batch-size)", field)
    if "" in texts:
        i = texts.index("")
        raise ApiError(422, f"`{field}`[{i}] is an empty string; empty inputs have no embedding", field, i)
    return texts


def bool_field(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(422, f"`{name}` must be true or false, got {value!r}", name)
    return value


def dimensions_field(body: dict, dim: int) -> int | None:
    dimensions = body.get("dimensions")
    if dimensions is None:
        return None
    if not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= dim:
        raise ApiError(
            422,
            f"`dimensions` must be an integer from 1 to {dim}, got {dimensions!r} (the model is not Matryoshka-trained: fewer dimensions lose quality)",
            "dimensions",
        )
    return dimensions


def direction_field(body: dict) -> str:
    """TEI accepts Right/Left in either case (router/src/http/types.rs TruncationDirection)."""
    direction = body.get("truncation_direction") or "right"
    if not isinstance(direction, str) or direction.lower() not in ("right", "left"):
        raise ApiError(422, f"`truncation_direction` must be 'Right' or 'Left', got {direction!r}", "truncation_direction")
    return direction.lower()
