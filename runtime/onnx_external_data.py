"""The external-data file names an ONNX graph refers to, read from its protobuf without the onnx package.

ONNX Runtime opens a tensor's `location` relative to the graph (recent versions refuse absolute
and escaping paths, older ones do not); the bundle check wants every such name to be one of the
artifact's sha256-listed files, so this reads them: ModelProto.graph → GraphProto.initializer /
sparse_initializer / Constant node attributes → TensorProto.external_data["location"]. The file
is memory-mapped and tensor payloads are skipped by length, so a 2 GB inline graph costs no copy.
"""

from __future__ import annotations

import mmap
from pathlib import Path

# field numbers (onnx.proto3)
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE_INITIALIZER = 1, 5, 15
_NODE_ATTRIBUTE = 5
_ATTRIBUTE_T, _ATTRIBUTE_G, _ATTRIBUTE_TENSORS, _ATTRIBUTE_GRAPHS = 5, 6, 10, 11
_SPARSE_VALUES, _SPARSE_INDICES = 1, 2
_TENSOR_EXTERNAL_DATA = 13
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_MAX_GRAPH_NESTING = 32


def _varint(buf, pos: int, end: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise ValueError("truncated or malformed protobuf varint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf, start: int, end: int):
    """(field number, start, end) of each length-delimited field in buf[start:end]; other wire types skipped."""
    pos = start
    while pos < end:
        key, pos = _varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos, end)
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        elif wire == 2:
            length, pos = _varint(buf, pos, end)
            if pos + length > end:
                raise ValueError("a protobuf field runs past the end of its message")
            yield number, pos, pos + length
            pos += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    if pos > end:
        raise ValueError("a protobuf field runs past the end of its message")


def _tensor_locations(buf, start: int, end: int, out: list[str]) -> None:
    for number, s, e in _fields(buf, start, end):
        if number != _TENSOR_EXTERNAL_DATA:
            continue
        key = value = None
        for n, ks, ke in _fields(buf, s, e):
            if n == _ENTRY_KEY:
                key = bytes(buf[ks:ke])
            elif n == _ENTRY_VALUE:
                value = bytes(buf[ks:ke])
        if key == b"location" and value is not None:
            out.append(value.decode("utf-8", errors="replace"))


def _graph_locations(buf, start: int, end: int, out: list[str], depth: int) -> None:
    if depth > _MAX_GRAPH_NESTING:
        raise ValueError(f"subgraphs nested deeper than {_MAX_GRAPH_NESTING} levels")
    for number, s, e in _fields(buf, start, end):
        if number == _GRAPH_INITIALIZER:
            _tensor_locations(buf, s, e, out)
        elif number == _GRAPH_SPARSE_INITIALIZER:
            for n, ts, te in _fields(buf, s, e):
                if n in (_SPARSE_VALUES, _SPARSE_INDICES):
                    _tensor_locations(buf, ts, te, out)
        elif number == _GRAPH_NODE:
            for n, a_s, a_e in _fields(buf, s, e):
                if n != _NODE_ATTRIBUTE:
                    continue
                for field, fs, fe in _fields(buf, a_s, a_e):
                    if field in (_ATTRIBUTE_T, _ATTRIBUTE_TENSORS):
                        _tensor_locations(buf, fs, fe, out)
                    elif field in (_ATTRIBUTE_G, _ATTRIBUTE_GRAPHS):
                        _graph_locations(buf, fs, fe, out, depth + 1)


def external_data_locations(graph_file: str | Path) -> list[str]:
    """Every distinct external-data `location` in the graph, in order of appearance; ValueError if it is not protobuf."""
    with open(graph_file, "rb") as handle:
        size = handle.seek(0, 2)
        if size == 0:
            raise ValueError("the file is empty")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            buf = memoryview(mapped)
            try:
                out: list[str] = []
                for number, s, e in _fields(buf, 0, size):
                    if number == _MODEL_GRAPH:
                        _graph_locations(buf, s, e, out, 0)
                return list(dict.fromkeys(out))
            finally:
                buf.release()
