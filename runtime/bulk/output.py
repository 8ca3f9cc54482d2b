"""Output parts: Parquet files with one row per embedded input, written atomically.

Columns: `id` (string: --id-field's value, else `FILE:LINE` of the input), `embedding`
(fixed-size list: float32, float16, or `ubinary` packed sign bits as uint8, dim / 8 bytes, the
layout of sentence-transformers' `quantize_embeddings(..., "ubinary")`), `tokens` (int32: tokens
the model ran, all windows' for a chunked input), `truncated` (bool) and `windows` (int16: 1,
or the number of windows of a chunked input). The part's statistics and bad rows travel in the
file's key-value metadata under `seaembed`, so a finished part file is its own record of being done.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DTYPES = ("float32", "float16", "ubinary")
STATS_KEY = b"seaembed"


def check_dtype(dtype: str) -> str:
    if dtype not in DTYPES:
        raise ValueError(f"output dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    return dtype


def pack_vectors(vectors: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "float32":
        return vectors.astype(np.float32, copy=False)
    if dtype == "float16":
        return vectors.astype(np.float16)
    return np.packbits(vectors > 0, axis=1)


def vector_type(dim: int, dtype: str) -> pa.DataType:
    value = {"float32": pa.float32(), "float16": pa.float16(), "ubinary": pa.uint8()}[check_dtype(dtype)]
    return pa.list_(value, dim if dtype != "ubinary" else (dim + 7) // 8)


def schema(dim: int, dtype: str) -> pa.Schema:
    return pa.schema(
        [
            ("id", pa.string()),
            ("embedding", vector_type(dim, dtype)),
            ("tokens", pa.int32()),
            ("truncated", pa.bool_()),
            ("windows", pa.int16()),
        ]
    )


def part_table(ids: list[str], vectors: np.ndarray, tokens: list[int], truncated: list[bool], windows: list[int], dim: int, dtype: str) -> pa.Table:
    packed = pack_vectors(vectors.reshape(len(ids), dim), dtype)
    kind = vector_type(dim, dtype)
    flat = pa.array(packed.reshape(-1), type=kind.value_type)
    embedding = pa.FixedSizeListArray.from_arrays(flat, kind.list_size)
    columns = [pa.array(ids, pa.string()), embedding, pa.array(tokens, pa.int32()), pa.array(truncated, pa.bool_()), pa.array(windows, pa.int16())]
    return pa.Table.from_arrays(columns, schema=schema(dim, dtype))


def write_part(path: Path, table: pa.Table, stats: dict) -> None:
    """Write to a hidden temporary file, then rename: a part file exists only once it is complete."""
    table = table.replace_schema_metadata({STATS_KEY: json.dumps(stats, ensure_ascii=False).encode("utf-8")})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_part_stats(path: Path) -> dict | None:
    """The statistics a finished part file carries; None when the file is not a readable part."""
    try:
        metadata = pq.read_schema(path).metadata or {}
        return json.loads(metadata[STATS_KEY])
    except (OSError, KeyError, ValueError, pa.ArrowException):
        return None


def unpack_ubinary(packed: np.ndarray, dim: int) -> np.ndarray:
    """Sign bits back to a {0, 1} matrix (for tests and Hamming-distance search)."""
    return np.unpackbits(packed, axis=1)[:, :dim]
