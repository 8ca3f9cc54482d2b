"""Input files → rows of text for `seaembed embed --input` and `seaembed embed-dataset`.

Formats: JSONL (a string, or an object with a text field, per line), TXT (one text per line),
CSV (a header row naming the columns) and Parquet (needs pyarrow). Readers stream: a file is
never held in memory whole, and `start`/`stop` read one slice of records (the bulk job's parts).

A bad row is not an exception: it comes back as a Row with `error` set, located as
`FILE:LINE: reason`, so callers can skip and report it (the default) or stop (`--strict`) while
every good row keeps its line number as its id, and nothing is silently shifted.

Empty inputs, one policy everywhere (CLI, embed-dataset, `Embedder.encode`, the server's 422):
an empty string has no embedding and is refused. Whitespace-only text is a text (it embeds as
sentence-transformers embeds it). In TXT files a line is its text without the line ending, so an
empty line is an empty text; in JSONL files a blank line holds no record and is passed over.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

FORMATS = ("jsonl", "txt", "csv", "parquet")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
EMPTY_TEXT = "empty text (an empty string has no embedding)"
STDIN = "-"
_BOM = b"\xef\xbb\xbf"
_ESCAPED_BYTES = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of invalid UTF-8


class InputFileError(ValueError):
    """A whole input cannot be read: missing, unreadable, unknown format, no such column."""


class BadRowError(ValueError):
    """A bad row under --strict; `.row` says where and why."""

    def __init__(self, row: Row):
        super().__init__(f"{row.location}: {row.error} (--strict stops at the first bad row; without it bad rows are skipped and reported)")
        self.row = row

    def __reduce__(self):  # crosses from worker processes to the driver
        return (type(self), (self.row,))


@dataclass(frozen=True)
class Row:
    source: str  # the file as given, or <stdin>
    line: int  # 1-based line (JSONL, TXT), line where the record starts (CSV), row (Parquet)
    id: object  # the id field's value, else the line number
    text: str | None  # None when the row is bad
    error: str | None = None  # why the row is bad

    @property
    def location(self) -> str:
        return f"{self.source}:{self.line}"

    def __str__(self) -> str:
        return f"{self.location}: {self.error}" if self.error else f"{self.location}: ok"


def text_problem(value: object, field: str | None = None) -> str | None:
    """Why `value` cannot be embedded as a text, or None when it can."""
    what = f"field {field!r}" if field else "the record"
    if value is None:
        return f"{what} is null" if field else "no text"
    if not isinstance(value, str):
        return f"{what} is {type(value).__name__}, not a string"
    if value == "":
        return EMPTY_TEXT
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"not valid Unicode: lone surrogate U+{ord(value[err.start]):04X} at character {err.start}"
    return None


def detect_format(path: str | Path, explicit: str | None = None) -> str:
    if explicit:
        if explicit not in FORMATS:
            raise InputFileError(f"input format {explicit!r} is not supported; choose from {', '.join(FORMATS)}")
        return explicit
    if str(path) == STDIN:
        return "txt"
    fmt = _SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise InputFileError(
            f"cannot tell the format of {path} from its extension; name it .jsonl/.txt/.csv/.parquet "
            f"or pass --input-format {'|'.join(FORMATS)}"
        )
    return fmt


def _open_binary(path: str | Path) -> BinaryIO:
    if str(path) == STDIN:
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise InputFileError(f"input file {path} does not exist") from None
    except IsADirectoryError:
        raise InputFileError(f"input {path} is a directory; pass a file") from None
    except PermissionError:
        raise InputFileError(f"cannot read input file {path}: permission denied") from None
    except OSError as err:
        raise InputFileError(f"cannot read input file {path}: {err.strerror or err}") from None


def _lines(handle: BinaryIO, start: int, stop: int | None) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(handle, 1):
        if number <= start:
            continue
        if stop is not None and number > stop:
            break
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        yield number, raw.rstrip(b"\n").rstrip(b"\r")


def _decode(raw: bytes) -> tuple[str | None, str | None]:
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as err:
        return None, f"invalid UTF-8 (byte 0x{raw[err.start]:02x} at byte {err.start})"


def _txt_rows(name: str, handle: BinaryIO, start: int, stop: int | None) -> Iterator[Row]:
    for number, raw in _lines(handle, start, stop):
        text, error = _decode(raw)
        error = error or text_problem(text)
        yield Row(name, number, number, None if error else text, error)


def _record_id(record: dict, id_field: str | None, number: int) -> tuple[object, str | None]:
    if id_field is None:
        return number, None
    if id_field not in record:
        return number, f"missing id field {id_field!r}"
    value = record[id_field]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return number, f"id field {id_field!r} is {type(value).__name__}; ids must be strings or integers"
    return value, None


def _salvage_id(raw: bytes, id_field: str | None, number: int) -> object:
    """The id of a JSONL line that is not valid UTF-8, when the rest of the line still parses."""
    try:
        record = json.loads(raw.decode("utf-8", errors="surrogateescape"))
    except ValueError:
        return number
    if not isinstance(record, dict):
        return number
    row_id, error = _record_id(record, id_field, number)
    return number if error or (isinstance(row_id, str) and _ESCAPED_BYTES.search(row_id)) else row_id


def _jsonl_rows(name: str, handle: BinaryIO, start: int, stop: int | None, text_field: str, id_field: str | None) -> Iterator[Row]:
    for number, raw in _lines(handle, start, stop):
        line, error = _decode(raw)
        if error:
            yield Row(name, number, _salvage_id(raw, id_field, number), None, error)
            continue
        if not line.strip():
            continue  # a blank line holds no record
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            yield Row(name, number, number, None, f"not valid JSON: {err.msg} at column {err.colno}")
            continue
        if isinstance(record, dict):
            row_id, error = _record_id(record, id_field, number)
            if error is None and text_field not in record:
                error = f"missing field {text_field!r}"
            value = record.get(text_field)
            error = error or text_problem(value, text_field)
        elif isinstance(record, str) and id_field is None:
            row_id, value, error = number, record, text_problem(record)
        else:
            row_id, value = number, None
            wanted = f"an object with {text_field!r}" + (f" and {id_field!r}" if id_field else "")
            error = f"expected {wanted}" + ("" if id_field else " or a string") + f", got {type(record).__name__}"
        yield Row(name, number, row_id, None if error else value, error)


def _csv_rows(name: str, handle: BinaryIO, start: int, stop: int | None, text_field: str, id_field: str | None) -> Iterator[Row]:
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.reader(text)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as err:
        raise InputFileError(f"{name}:1: cannot read the CSV header: {err}") from None
    columns = {column: i for i, column in enumerate(header)}
    for field, flag in ((text_field, "--text-field"), (id_field, "--id-field")):
        if field is not None and field not in columns:
            raise InputFileError(f"{name}: the CSV header has no column {field!r} (columns: {', '.join(header)}); pass {flag} NAME")
    text_at = columns[text_field]
    id_at = columns.get(id_field) if id_field else None
    record = 0
    line_end = reader.line_num
    while True:
        first_line = line_end + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise InputFileError(f"{name}:{first_line}: cannot parse CSV: {err}") from None
        line_end = reader.line_num
        record += 1
        if record <= start:
            continue
        if stop is not None and record > stop:
            return
        if not values:
            continue  # a blank line holds no record
        row_id: object = first_line
        error = None
        if id_at is not None:
            given = values[id_at] if id_at < len(values) else ""
            if given and not _ESCAPED_BYTES.search(given):
                row_id = given
            else:
                error = f"missing id field {id_field!r}" if not given else "invalid UTF-8 in the id field"
        if error is None and any(_ESCAPED_BYTES.search(v) for v in values):
            error = "invalid UTF-8"
        elif error is None and text_at >= len(values):
            error = f"missing field {text_field!r} (the row has {len(values)} of {len(header)} columns)"
        value = values[text_at] if error is None else None
        error = error or text_problem(value)
        yield Row(name, first_line, row_id, None if error else value, error)


def _parquet_rows(name: str, path: str | Path, start: int, stop: int | None, text_field: str, id_field: str | None) -> Iterator[Row]:
    pq = _pyarrow_parquet()
    try:
        parquet = pq.ParquetFile(path)
    except OSError as err:
        raise InputFileError(f"cannot read {name} as Parquet: {err}") from None
    names = parquet.schema_arrow.names
    for field, flag in ((text_field, "--text-field"), (id_field, "--id-field")):
        if field is not None and field not in names:
            raise InputFileError(f"{name}: the Parquet schema has no column {field!r} (columns: {', '.join(names)}); pass {flag} NAME")
    kind = parquet.schema_arrow.field(text_field).type
    if str(kind) not in ("string", "large_string", "binary", "large_binary", "string_view"):
        raise InputFileError(f"{name}: column {text_field!r} has type {kind}; the text column must hold strings")
    wanted = [text_field] + ([id_field] if id_field and id_field != text_field else [])
    row = 0
    for batch in parquet.iter_batches(batch_size=4096, columns=wanted):
        texts = batch.column(text_field).to_pylist()
        ids = batch.column(id_field).to_pylist() if id_field else None
        for i, value in enumerate(texts):
            row += 1
            if row <= start:
                continue
            if stop is not None and row > stop:
                return
            error = None
            if isinstance(value, bytes):
                value, error = _decode(value)
            error = error or text_problem(value, text_field)
            row_id: object = row
            if ids is not None:
                row_id = ids[i]
                if row_id is None:
                    row_id, error = row, error or f"id field {id_field!r} is null"
            yield Row(name, row, row_id, None if error else value, error)


def _pyarrow_parquet():
    try:
        import pyarrow.parquet as pq
    except ModuleNotFoundError:
        raise InputFileError("reading Parquet needs pyarrow: pip install 'seaembed[bulk]'") from None
    return pq


def read_rows(
    path: str | Path,
    fmt: str | None = None,
    text_field: str = "text",
    id_field: str | None = None,
    start: int = 0,
    stop: int | None = None,
    name: str | None = None,
) -> Iterator[Row]:
    """Rows of records start+1 … stop (all by default) of one input; `path` "-" is standard input."""
    fmt = detect_format(path, fmt)
    name = name or ("<stdin>" if str(path) == STDIN else str(path))
    if fmt == "parquet":
        if str(path) == STDIN:
            raise InputFileError("Parquet cannot be read from standard input; pass a file")
        if not Path(path).is_file():
            _open_binary(path).close()  # raises the right InputFileError
        yield from _parquet_rows(name, path, start, stop, text_field, id_field)
        return
    handle = _open_binary(path)
    try:
        if fmt == "txt":
            if id_field:
                raise InputFileError(f"{name}: TXT input has no fields, so --id-field {id_field!r} cannot apply; use JSONL or CSV")
            yield from _txt_rows(name, handle, start, stop)
        elif fmt == "jsonl":
            yield from _jsonl_rows(name, handle, start, stop, text_field, id_field)
        else:
            yield from _csv_rows(name, handle, start, stop, text_field, id_field)
    finally:
        if handle is not sys.stdin.buffer:
            handle.close()


def count_records(path: str | Path, fmt: str | None = None) -> int:
    """Records in a file, as read_rows numbers them (lines for JSONL/TXT, data rows for CSV/Parquet)."""
    fmt = detect_format(path, fmt)
    if fmt == "parquet":
        pq = _pyarrow_parquet()
        try:
            return pq.ParquetFile(path).metadata.num_rows
        except OSError as err:
            raise InputFileError(f"cannot read {path} as Parquet: {err}") from None
    with _open_binary(path) as handle:
        if fmt == "csv":
            reader = csv.reader(io.TextIOWrapper(handle, encoding="utf-8-sig", errors="surrogateescape", newline=""))
            try:
                return max(0, sum(1 for _ in reader) - 1)
            except csv.Error as err:
                raise InputFileError(f"{path}:{reader.line_num}: cannot parse CSV: {err}") from None
        count, last = 0, b"\n"
        while block := handle.read(1 << 20):
            count += block.count(b"\n")
            last = block[-1:]
        return count + (last != b"\n")

