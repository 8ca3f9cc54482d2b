"""`seaembed embed`: texts from arguments, a file or stdin → JSON lines on stdout, .jsonl or .npy.

Bad rows of a file are skipped and reported as `FILE:LINE: reason` (or stop the run under
--strict); every output row carries its id (the line number, or --id-field's value), and a
`.npy` output whose input had skipped rows gets `OUT.skipped.jsonl` beside it, so nothing is
silently shifted. Outputs are written to a temporary file and renamed: an interrupted run leaves
no partial file behind.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from ..bulk.encode import encode_stream
from .inputs import STDIN, BadRowError, Row, read_rows, text_problem
from .progress import Progress
from .support import CliError, ExitCode, atomic_output, check_run_flags, stage, usage_error

MAX_REPORTED = 20  # bad rows listed one per line before the rest are only counted
ARGUMENTS = "<arguments>"


def _collect_rows(args) -> list[Row]:
    if args.texts and args.input:
        raise usage_error("give TEXT arguments or --input FILE, not both")
    if args.texts:
        rows = []
        for i, text in enumerate(args.texts):
            problem = text_problem(text)
            row = Row(ARGUMENTS, i + 1, i, None if problem else text, problem)
            if problem:  # a text typed on the command line is never skipped
                raise CliError(ExitCode.INPUT, f"TEXT argument {i + 1}: {problem}")
            rows.append(row)
        return rows
    source = args.input or (STDIN if not sys.stdin.isatty() else None)
    if source is None:
        raise usage_error("no input texts: give TEXT arguments, --input FILE, or pipe one text per line on stdin")
    rows = []
    for row in read_rows(source, args.input_format, args.text_field, args.id_field):
        if row.error and args.strict:
            raise BadRowError(row)
        rows.append(row)
    return rows


def _report_skipped(skipped: list[Row], total: int, output: Path | None) -> None:
    if not skipped:
        return
    for row in skipped[:MAX_REPORTED]:
        print(f"seaembed embed: skipped {row}", file=sys.stderr)
    more = f" ({len(skipped) - MAX_REPORTED} more not shown)" if len(skipped) > MAX_REPORTED else ""
    listed = f"; all are listed in {_skipped_path(output)}" if output and output.suffix == ".npy" else ""
    print(
        f"seaembed embed: skipped {len(skipped)} of {total} rows{more}; the others keep their ids{listed} "
        "(--strict stops at the first bad row instead)",
        file=sys.stderr,
    )


def _skipped_path(output: Path) -> Path:
    return output.with_name(output.name + ".skipped.jsonl")


def _json_line(row: Row, vector: np.ndarray, digits: int) -> str:
    return json.dumps({"id": row.id, "text": row.text, "embedding": [round(float(x), digits) for x in vector]}, ensure_ascii=False)


def run_embed(args) -> int:
    from ..embedder import Embedder

    output = Path(args.output) if args.output else None
    if output is not None and output.suffix not in (".npy", ".jsonl"):
        raise usage_error(f"--output {output}: name it .npy (float32 matrix) or .jsonl (one JSON object per line)")
    check_run_flags(args.bundle, args.precision, args.artifact, args.prompt_name)
    rows = _collect_rows(args)
    skipped = [r for r in rows if r.error]
    good = [r for r in rows if not r.error]
    if not rows:
        raise CliError(ExitCode.INPUT, f"no texts to embed: {args.input or '<stdin>'} holds no rows")
    if not good:
        _report_skipped(skipped, len(rows), None)
        raise CliError(ExitCode.INPUT, f"no texts to embed: all {len(rows)} rows of the input are bad (listed above)")
    with stage(ExitCode.MODEL, "load the bundle"):
        embedder = Embedder.load(args.bundle, backend=args.backend, threads=args.threads, precision=args.precision, artifact=args.artifact)
    started = time.perf_counter()
    progress = Progress(len(good), args.progress)
    written = 0
    truncated: list[Row] = []

    def results():
        texts = [r.text for r in good]
        over_length = "truncate" if args.truncate else "error"
        for offset, encoded in encode_stream(embedder, texts, args.prompt_name, over_length, args.batch_size, args.normalize):
            for position, reason in encoded.refused.items():
                row = good[offset + position]
                reason += " (--truncate true keeps the first tokens)"
                if args.strict or row.source == ARGUMENTS:
                    where = f"TEXT argument {row.line}" if row.source == ARGUMENTS else row.location
                    raise CliError(ExitCode.INPUT, f"{where}: {reason}")
                skipped.append(Row(row.source, row.line, row.id, None, reason))
            truncated.extend(good[offset + p] for p in sorted(encoded.truncated))
            progress.update(len(encoded.positions) + len(encoded.refused), sum(encoded.tokens))
            for k, position in enumerate(encoded.positions):
                yield good[offset + position], encoded.vectors[k]

    try:
        if output is None:
            for row, vector in results():
                sys.stdout.write(_json_line(row, vector, 6) + "\n")
            sys.stdout.flush()
        elif output.suffix == ".jsonl":
            with atomic_output(output) as tmp, open(tmp, "w", encoding="utf-8") as handle:
                for row, vector in results():
                    handle.write(_json_line(row, vector, 7) + "\n")
                    written += 1
        else:
            vectors = [v for _, v in results()]
            written = len(vectors)
            matrix = np.stack(vectors) if vectors else np.empty((0, embedder.dim), np.float32)
            with atomic_output(output) as tmp, open(tmp, "wb") as handle:
                np.save(handle, matrix)
    finally:
        progress.close()
    skipped.sort(key=lambda r: r.line)
    if output is not None and output.suffix == ".npy":
        _write_skipped(output, skipped)
    _report_skipped(skipped, len(rows), output)
    if truncated:
        ids = ", ".join(str(r.id) for r in truncated[:MAX_REPORTED]) + (" …" if len(truncated) > MAX_REPORTED else "")
        print(
            f"seaembed embed: note: {len(truncated)} inputs were longer than {embedder.max_tokens} tokens and were cut "
            f"to their first {embedder.max_tokens} (ids {ids}); --truncate false refuses them instead",
            file=sys.stderr,
        )
    if output is not None:
        print(f"wrote {written} embeddings of dim {embedder.dim} to {output} in {time.perf_counter() - started:.2f}s", file=sys.stderr)
    return 0


def _write_skipped(output: Path, skipped: list[Row]) -> None:
    """OUT.skipped.jsonl lists the input rows that have no row in OUT.npy; a clean run removes a stale one."""
    path = _skipped_path(output)
    if not skipped:
        with stage(ExitCode.OUTPUT, f"remove the stale {path}"):
            path.unlink(missing_ok=True)
        return
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for row in skipped:
            handle.write(json.dumps({"source": row.source, "line": row.line, "id": row.id, "reason": row.error}, ensure_ascii=False) + "\n")
