"""What an embed-dataset run will do: its settings, its input files, and the parts they split into.

A part is a slice of records of one input file and becomes one output file
`part-NNNNN.parquet`. The plan is written to OUTPUT/_plan.json before any work starts; a rerun
compares itself with it and does only the parts whose files are missing, so an interrupted run
resumes and a changed input or setting is refused instead of being mixed in.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..cli.inputs import FORMATS, InputFileError, count_records, detect_format
from ..json_limits import loads_bounded
from .errors import OutputConflictError

PLAN_FILE = "_plan.json"
PLAN_VERSION = 1
MIN_ROWS_PER_PART = 256
MAX_ROWS_PER_PART = 8192
TARGET_PARTS = 64  # enough parts to balance any number of workers on one machine, few enough files


@dataclass(frozen=True)
class Part:
    index: int
    file: str  # absolute path
    name: str  # path relative to the input root: what ids and reports show
    fmt: str
    start: int  # records start+1 … stop of the file
    stop: int

    @property
    def filename(self) -> str:
        return f"part-{self.index:05d}.parquet"

    @property
    def rows(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class JobSettings:
    """Everything that decides the output's content (a resumed run must match it exactly)."""

    bundle: str
    backend: str
    artifact: str  # resolved by the driver so every worker runs the same graph
    artifact_sha256: dict
    text_field: str = "text"
    id_field: str | None = None
    input_format: str | None = None
    prompt_name: str | None = None
    over_length: str = "truncate"
    dtype: str = "float32"
    normalize: bool | None = None
    batch_size: int = 32
    rows_per_part: int | None = None
    strict: bool = False
    precision: str | None = None


@dataclass
class Plan:
    settings: dict
    inputs: list[dict]  # name, file, format, size, mtime_ns, records
    parts: list[Part] = field(default_factory=list)
    version: int = PLAN_VERSION

    def to_json(self) -> dict:
        return {"version": self.version, "settings": self.settings, "inputs": self.inputs, "parts": [asdict(p) for p in self.parts]}

    @classmethod
    def from_json(cls, data: dict) -> Plan:
        return cls(data["settings"], data["inputs"], [Part(**p) for p in data["parts"]], data.get("version", 0))


def list_inputs(spec: str | Path, fmt: str | None = None) -> list[tuple[Path, str]]:
    """(file, name relative to the input root) for a file, a directory (recursively) or a glob, sorted."""
    spec = str(spec)
    path = Path(spec).expanduser()
    if path.is_file():
        return [(path.resolve(), path.name)]
    if path.is_dir():
        root = path
        candidates = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    elif glob.has_magic(spec):
        root = Path(os.path.dirname(re.split(r"[*?[]", spec)[0]) or ".").expanduser()
        candidates = sorted(Path(p) for p in glob.glob(os.path.expanduser(spec), recursive=True) if Path(p).is_file())
    else:
        raise InputFileError(f"input {spec} does not exist (pass a file, a directory or a glob such as 'data/*.jsonl')")
    files = []
    for candidate in candidates:
        try:
            detect_format(candidate, fmt)
        except InputFileError:
            continue  # a directory may hold READMEs and the like
        files.append((candidate.resolve(), str(candidate.relative_to(root)) if candidate.is_relative_to(root) else str(candidate)))
    if not files:
        raise InputFileError(f"input {spec} holds no {'/'.join(FORMATS)} files")
    return files


def default_rows_per_part(total: int) -> int:
    return min(MAX_ROWS_PER_PART, max(MIN_ROWS_PER_PART, math.ceil(total / TARGET_PARTS)))


def make_plan(settings: JobSettings, input_spec: str | Path) -> Plan:
    inputs = []
    for file, name in list_inputs(input_spec, settings.input_format):
        stat = file.stat()
        fmt = detect_format(file, settings.input_format)
        inputs.append({"name": name, "file": str(file), "format": fmt, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "records": count_records(file, fmt)})
    rows_per_part = settings.rows_per_part or default_rows_per_part(sum(i["records"] for i in inputs))
    frozen = {**asdict(settings), "rows_per_part": rows_per_part}
    parts = []
    for item in inputs:
        for start in range(0, item["records"], rows_per_part):
            stop = min(start + rows_per_part, item["records"])
            parts.append(Part(len(parts), item["file"], item["name"], item["format"], start, stop))
    return Plan(frozen, inputs, parts)


# Settings a rerun may change without changing any output byte.
_RUN_ONLY = ("strict", "bundle")


def differences(saved: Plan, current: Plan) -> list[str]:
    """What differs between a saved plan and this run's, in words ([] when the run can resume)."""
    out = []
    if saved.version != current.version:
        return [f"plan format {saved.version} then, {current.version} now"]
    for key in sorted(set(saved.settings) | set(current.settings)):
        if key in _RUN_ONLY:
            continue
        before, now = saved.settings.get(key), current.settings.get(key)
        if before != now:
            out.append(f"{key}: {before!r} then, {now!r} now")
    before = {(i["name"], i["size"], i["mtime_ns"]) for i in saved.inputs}
    now = {(i["name"], i["size"], i["mtime_ns"]) for i in current.inputs}
    if before != now:
        changed = sorted({n for n, *_ in before ^ now})
        out.append(f"input files changed since the run started: {', '.join(changed[:5])}")
    return out


def read_plan(output_dir: Path) -> Plan | None:
    path = output_dir / PLAN_FILE
    if not path.exists():
        return None
    try:
        return Plan.from_json(loads_bounded(path.read_bytes()))
    except (ValueError, KeyError, TypeError) as err:  # JsonLimitError is a ValueError: too deep, not UTF-8, not JSON
        raise OutputConflictError(f"{path} is not a readable embed-dataset plan ({err}); pass --overwrite to start over") from None


def write_json_atomic(path: Path, data: dict | list) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
