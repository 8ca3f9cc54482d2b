"""The shared input readers (CLI and embed-dataset): rows, ids, slices and bad rows with their lines."""

from __future__ import annotations

import json

import pytest

from seaembed.runtime.bulk.plan import list_inputs
from seaembed.runtime.cli.inputs import EMPTY_TEXT, InputFileError, count_records, read_rows


def _table(rows):
    return [(r.line, r.id, r.text, r.error) for r in rows]


def test_csv_rows_keep_the_line_where_each_record_starts(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(b'id,text\na,"two\nlines"\nb,\nc,plain\nd,bad \xff\n,no id\n')
    rows = list(read_rows(src, id_field="id"))
    assert _table(rows) == [
        (2, "a", "two\nlines", None),
        (4, "b", None, EMPTY_TEXT),
        (5, "c", "plain", None),
        (6, "d", None, "invalid UTF-8"),
        (7, 7, None, "missing id field 'id'"),
    ]
    assert count_records(src) == 5
    assert _table(read_rows(src, id_field="id", start=2, stop=3)) == [(5, "c", "plain", None)]


def test_jsonl_and_txt_slices_cover_every_line_once(tmp_path):
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": f"t{i}", "id": i * 10}) for i in range(10)) + "\n")
    assert count_records(jsonl) == 10
    slices = [list(read_rows(jsonl, id_field="id", start=s, stop=min(s + 3, 10))) for s in range(0, 10, 3)]
    assert [r.id for part in slices for r in part] == [i * 10 for i in range(10)]
    txt = tmp_path / "in.txt"
    txt.write_bytes(b"\xef\xbb\xbfa\nb\nc")  # a BOM and no final newline
    assert count_records(txt) == 3 and [r.text for r in read_rows(txt)] == ["a", "b", "c"]
    assert [r.line for r in read_rows(txt, start=1)] == [2, 3]


def test_jsonl_id_field_problems_are_bad_rows(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"text": "a"}\n{"text": "b", "id": 1.5}\n"plain string"\n{"text": "c", "id": "x"}\n')
    assert _table(read_rows(src, id_field="id")) == [
        (1, 1, None, "missing id field 'id'"),
        (2, 2, None, "id field 'id' is float; ids must be strings or integers"),
        (3, 3, None, "expected an object with 'text' and 'id', got str"),
        (4, "x", "c", None),
    ]


def test_parquet_rows_nulls_and_column_checks(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    src = tmp_path / "in.parquet"
    pq.write_table(pa.table({"body": ["one", None, "", "two"], "key": [7, 8, 9, None], "n": [1, 2, 3, 4]}), src)
    assert _table(read_rows(src, text_field="body", id_field="key")) == [
        (1, 7, "one", None),
        (2, 8, None, "field 'body' is null"),
        (3, 9, None, EMPTY_TEXT),
        (4, 4, None, "id field 'key' is null"),
    ]
    assert count_records(src) == 4
    with pytest.raises(InputFileError, match="no column 'text'"):
        list(read_rows(src))
    with pytest.raises(InputFileError, match="column 'n' has type int64"):
        list(read_rows(src, text_field="n"))


def test_inputs_as_file_directory_or_glob(tmp_path):
    (tmp_path / "data" / "sub").mkdir(parents=True)
    for name in ("data/a.jsonl", "data/sub/b.csv", "data/README.md", "data/_skip.jsonl"):
        (tmp_path / name).write_text("text\nx\n")
    assert [n for _, n in list_inputs(tmp_path / "data")] == ["a.jsonl", "sub/b.csv"]
    assert [n for _, n in list_inputs(f"{tmp_path}/data/**/*.csv")] == ["sub/b.csv"]
    assert [n for _, n in list_inputs(tmp_path / "data" / "a.jsonl")] == ["a.jsonl"]
    with pytest.raises(InputFileError, match="does not exist"):
        list_inputs(tmp_path / "nope")
    with pytest.raises(InputFileError, match="holds no"):
        list_inputs(f"{tmp_path}/data/*.parquet")
