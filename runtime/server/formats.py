"""Output formats: vectors written straight from the numpy array, never through Python float lists.

| encoding_format | embed_dtype | each vector is | keeps |
|---|---|---|---|
| float (default) | float32 | JSON numbers, shortest text that reads back as the same float32 | exact |
| float | float16 | JSON numbers rounded to float16 | relative error ≤ 2^-11 per component |
| base64 | float32 | base64 of little-endian float32 (OpenAI) | exact |
| base64 | float16 | base64 of little-endian float16 (vLLM's embed_dtype) | relative error ≤ 2^-11 |
| ubinary | - | dim/8 unsigned bytes, bit = component > 0, first dimension in the high bit (Cohere, sentence-transformers `quantize_embeddings`) | the sign: Hamming distance ranks |
| binary | - | the same bytes minus 128, as signed int8 (Cohere `binary`) | the sign |

orjson writes float32 and float16 arrays with the shortest decimal that round-trips in
that type, so `float` responses equal the engine's float32 output bit for bit.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
import orjson

from .errors import ApiError
from .parsing import choice_field

ENCODINGS = ("float", "base64", "ubinary", "binary")
DTYPES = ("float32", "float16")
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class OutputFormat:
    encoding: str = "float"
    dtype: str = "float32"


def parse_output_format(body: dict) -> OutputFormat:
    encoding = choice_field(body, "encoding_format", ENCODINGS, "float")
    dtype = choice_field(body, "embed_dtype", DTYPES, "float32")
    if dtype != "float32" and encoding in ("ubinary", "binary"):
        raise ApiError(422, f"`embed_dtype` {dtype!r} applies to float and base64 only; {encoding} is 1 bit per dimension", "embed_dtype")
    return OutputFormat(encoding, dtype)


def rows(vectors: np.ndarray, fmt: OutputFormat) -> list:
    """One JSON-ready object per vector (numpy rows orjson writes natively, or base64 strings)."""
    if fmt.encoding in ("ubinary", "binary"):
        packed = np.packbits(vectors > 0, axis=1)
        if fmt.encoding == "binary":
            packed = (packed.astype(np.int16) - 128).astype(np.int8)
        return list(packed)
    typed = np.ascontiguousarray(vectors, dtype="<f4" if fmt.dtype == "float32" else "<f2")
    if fmt.encoding == "base64":
        return [base64.b64encode(row.tobytes()).decode("ascii") for row in typed]
    return list(typed)


def dumps(content) -> bytes:
    return orjson.dumps(content, option=_NUMPY)


def matrix_json(vectors: np.ndarray, fmt: OutputFormat) -> bytes:
    """TEI's response: a JSON list of vectors."""
    if fmt.encoding == "float":
        return orjson.dumps(np.ascontiguousarray(vectors, dtype="<f4" if fmt.dtype == "float32" else "<f2"), option=_NUMPY)
    return orjson.dumps(rows(vectors, fmt), option=_NUMPY)
