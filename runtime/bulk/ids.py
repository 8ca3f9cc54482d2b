"""Which field names the rows of an embed-dataset job when --id-field is not given.

A dataset whose records carry an `id` (JSONL key, CSV column, Parquet column) is named by it: the
output's `id` column then joins back to the source. Otherwise rows are FILE:LINE. The choice is
made once per job, from the first readable record of every input file, so every row of a job is
named the same way (a rerun makes the same choice and resumes).
"""

from __future__ import annotations

from pathlib import Path

from ..cli.inputs import InputFileError, detect_format, read_rows

ID_FIELD = "id"
_PROBE_ROWS = 16  # records looked at per file before giving up on finding a readable one


def _file_has_ids(file: Path, fmt: str, text_field: str) -> bool | None:
    """True/False: the file's first readable record has/lacks the id field; None: no readable record to judge by."""
    if fmt == "txt":
        return False
    try:
        for row in read_rows(file, fmt, text_field, ID_FIELD, 0, _PROBE_ROWS):
            if row.error is None:
                return True
            if f"id field {ID_FIELD!r}" in row.error:
                return False
    except InputFileError:
        return False  # e.g. a CSV without an `id` column; the job itself reports anything else
    return None


def default_id_field(files: list[tuple[Path, str]], input_format: str | None, text_field: str) -> str | None:
    """`id` when every input file's records have an `id` field, else None (FILE:LINE)."""
    verdicts = [_file_has_ids(file, detect_format(file, input_format), text_field) for file, _name in files]
    judged = [v for v in verdicts if v is not None]
    return ID_FIELD if judged and all(judged) else None
