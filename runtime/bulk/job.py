"""`embed_dataset`: plan the parts, skip those already done, run the rest on local workers or Ray, summarise.

OUTPUT (a directory) ends up holding `part-NNNNN.parquet` (one per part, in input order),
`_plan.json` (settings, inputs, parts), `_manifest.json` (the parts done, rewritten as parts
finish), `_bad_rows.jsonl` (every skipped row as FILE:LINE + reason) and `_summary.json`.
Files starting with `_` or `.` are ignored by Parquet dataset readers (pyarrow, pandas, Ray, Spark),
so `pyarrow.dataset.dataset(OUTPUT)` reads the embeddings alone.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from ..backends import AUTO_ORDER, BackendUnavailable, backend_class
from ..cpus import available_cpus
from ..integrity import verify_files
from ..manifest import load_manifest
from .encode import check_policy
from .errors import OutputConflictError
from .ids import default_id_field
from .output import check_dtype, read_part_stats
from .plan import (
    PLAN_FILE,
    JobSettings,
    Plan,
    differences,
    list_inputs,
    make_plan,
    read_plan,
    write_json_atomic,
)
from .progress import JobProgress
from .worker import rss_mb

MANIFEST_FILE = "_manifest.json"
SUMMARY_FILE = "_summary.json"
BAD_ROWS_FILE = "_bad_rows.jsonl"
DEFAULT_MAX_WORKERS = 4  # each worker holds its own copy of the model (2.2 GB for SEA-LION-E5 in FP32)
GPU_BACKENDS = ("cuda", "tensorrt")


def _resolve(bundle: Path, backend: str, precision: str | None, artifact: str | None):
    """(backend, artifact) every worker will run, and the bundle files verified here, once."""
    manifest = load_manifest(bundle)
    if backend != "auto":
        picked = backend_class(backend).select(manifest, precision, artifact)
    else:  # the first backend that runs here and has a graph in the bundle, as Embedder.load picks
        reasons = []
        for backend in AUTO_ORDER:
            cls = backend_class(backend)
            try:
                if reason := cls.unavailable_reason():
                    raise BackendUnavailable(reason)
                picked = cls.select(manifest, precision, artifact)
                break
            except BackendUnavailable as err:
                reasons.append(f"{backend}: {err}")
        else:
            raise BackendUnavailable("no backend could be loaded: " + "; ".join(reasons))
    verify_files(bundle, {manifest.tokenizer["file"]: manifest.tokenizer["sha256"], **picked.sha256})
    return manifest, backend, picked


def _prepare_output(output: Path, plan: Plan, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise OutputConflictError(f"OUTPUT {output} is a file; embed-dataset writes a directory of Parquet parts")
    output.mkdir(parents=True, exist_ok=True)
    saved = read_plan(output) if not overwrite else None
    # Temporary files of a part or of _manifest/_plan/_summary.json, left by a worker or driver killed mid-write.
    for stale in output.glob(".*.tmp"):
        if stale.name.startswith((".part-", "._")):
            stale.unlink()
    ours = [p for p in output.iterdir() if p.name.startswith(("part-", "_"))]
    if overwrite:
        for path in ours:
            path.unlink()
    elif saved is None and any(output.iterdir()):
        raise OutputConflictError(f"OUTPUT {output} is not empty and holds no embed-dataset run; choose a new directory or pass --overwrite")
    elif saved is not None and (changed := differences(saved, plan)):
        raise OutputConflictError(
            f"OUTPUT {output} holds a run with other settings or inputs ({'; '.join(changed)}); "
            "rerun with the same ones to resume, or pass --overwrite to start over"
        )
    write_json_atomic(output / PLAN_FILE, plan.to_json())


def _finished(output: Path, plan: Plan) -> dict[int, dict]:
    done = {}
    for part in plan.parts:
        stats = read_part_stats(output / part.filename)
        if stats and (stats.get("part"), stats.get("start"), stats.get("stop")) == (part.index, part.start, part.stop):
            done[part.index] = stats
    return done


def _write_manifest(output: Path, plan: Plan, done: dict[int, dict], new: list[dict]) -> None:
    write_json_atomic(output / MANIFEST_FILE, {"parts_done": sorted([*done.values(), *new], key=lambda s: s["part"]), "parts": len(plan.parts)})


def _per_worker(stats: list[dict]) -> list[dict]:
    grouped: dict[str, list[dict]] = defaultdict(list)
    for s in stats:
        grouped[s["worker"]].append(s)
    out = []
    for worker, items in sorted(grouped.items()):
        busy = sum(s["seconds"] for s in items)
        inputs = sum(s["inputs"] for s in items)
        out.append({
            "worker": worker, "parts": len(items), "inputs": inputs, "tokens": sum(s["tokens"] for s in items),
            "busy_s": round(busy, 3), "inputs_per_s": round(inputs / busy, 2) if busy else None,
            "rss_mb_first_part": items[0]["rss_mb"], "rss_mb_last_part": items[-1]["rss_mb"],
        })
    return out


def embed_dataset(
    bundle: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    text_field: str = "text",
    id_field: str | None = None,
    input_format: str | None = None,
    prompt_name: str | None = None,
    over_length: str = "truncate",
    dtype: str = "float32",
    normalize: bool | None = None,
    batch_size: int = 32,
    rows_per_part: int | None = None,
    workers: int | None = None,
    threads_per_worker: int | None = None,
    backend: str = "cpu",
    precision: str | None = None,
    artifact: str | None = None,
    ray: bool = False,
    ray_address: str | None = None,
    strict: bool = False,
    overwrite: bool = False,
    progress: str = "auto",
) -> dict:
    """Embed every row of INPUT (JSONL/CSV/TXT/Parquet file, directory or glob) into Parquet parts in OUTPUT.

    Returns the summary (also written to OUTPUT/_summary.json). A rerun with the same arguments
    skips the parts already written; see the module docstring for the files and runtime/bulk/encode.py
    for the over-length policies.
    """
    started = time.perf_counter()
    rss_start = rss_mb()
    check_policy(over_length)
    check_dtype(dtype)
    bundle, output = Path(bundle).resolve(), Path(output)
    manifest, backend, picked = _resolve(bundle, backend, precision, artifact)
    if prompt_name is not None and prompt_name not in manifest.prompts:
        raise KeyError(f"prompt_name {prompt_name!r} is not defined by this model (known prompts: {', '.join(sorted(manifest.prompts)) or 'none'})")
    if id_field is None:  # rows carry an `id`: name them by it (bulk/ids.py), else FILE:LINE
        id_field = default_id_field(list_inputs(input, input_format), input_format, text_field)
    settings = JobSettings(
        bundle=str(bundle), backend=backend, artifact=picked.name, artifact_sha256=picked.sha256, text_field=text_field,
        id_field=id_field, input_format=input_format, prompt_name=prompt_name, over_length=over_length, dtype=dtype,
        normalize=normalize, batch_size=batch_size, rows_per_part=rows_per_part, strict=strict, precision=precision,
    )
    plan = make_plan(settings, input)
    _prepare_output(output, plan, overwrite)
    settings = JobSettings(**{**plan.settings})  # rows_per_part resolved
    done = _finished(output, plan)
    todo = [p for p in plan.parts if p.index not in done]
    gpus = 1 if ray and backend in GPU_BACKENDS else 0
    if not ray and workers is None:  # one process drives a GPU; on CPUs one per core, within memory
        workers = 1 if backend in GPU_BACKENDS else min(available_cpus(), DEFAULT_MAX_WORKERS)
    threads = threads_per_worker or max(1, available_cpus() // (workers or available_cpus()))
    bar = JobProgress(sum(p.rows for p in todo), progress)
    new: list[dict] = []
    last_saved = 0.0
    try:
        if ray:
            from .ray_runner import run_ray

            finished = run_ray(todo, settings, str(output), workers, threads, ray_address, gpus)
        else:
            from .local import run_local

            finished = run_local(todo, settings, str(output), workers, threads, on_progress=bar.update)
        for stats in finished:
            new.append(stats)
            if ray:
                bar.update(stats["inputs"], stats["tokens"])
            if time.perf_counter() - last_saved > 2:
                _write_manifest(output, plan, done, new)
                last_saved = time.perf_counter()
    finally:
        bar.close()
        _write_manifest(output, plan, done, new)  # also after a failure: what is done so far
    wall = time.perf_counter() - started
    every = sorted([*done.values(), *new], key=lambda s: s["part"])
    bad = [b for s in every for b in s["bad"]]
    with open(output / BAD_ROWS_FILE, "w", encoding="utf-8") as handle:
        for row in bad:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    run_inputs = sum(s["inputs"] for s in new)
    run_tokens = sum(s["tokens"] for s in new)
    summary = {
        "output": str(output), "mode": f"ray ({ray_address or 'local cluster'})" if ray else "local processes",
        "workers": workers or len({s["worker"] for s in new}), "threads_per_worker": threads, "backend": backend, "artifact": picked.name,
        "parts": len(plan.parts), "parts_resumed": len(done), "parts_this_run": len(new),
        "inputs": sum(s["inputs"] for s in every), "embedded": sum(s["embedded"] for s in every), "bad_rows": len(bad),
        "tokens": sum(s["tokens"] for s in every), "truncated": sum(s["truncated"] for s in every),
        "chunked": sum(s["chunked"] for s in every), "windows": sum(s["windows"] for s in every),
        "wall_s": round(wall, 3), "inputs_per_s": round(run_inputs / wall, 2), "tokens_per_s": round(run_tokens / wall, 1),
        "per_worker": _per_worker(new), "driver_rss_mb": {"start": round(rss_start, 1), "end": round(rss_mb(), 1)},
        "settings": plan.settings,
    }
    write_json_atomic(output / SUMMARY_FILE, summary)
    return summary


def format_summary(summary: dict) -> str:
    lines = [
        f"embedded {summary['embedded']:,} of {summary['inputs']:,} inputs into {summary['parts']} parts in {summary['output']} "
        f"({summary['parts_resumed']} parts were already done)",
        f"  {summary['tokens']:,} tokens; {summary['truncated']:,} truncated, {summary['chunked']:,} chunked "
        f"({summary['windows']:,} windows), {summary['bad_rows']:,} bad rows skipped",
        f"  this run: {summary['wall_s']:.1f}s, {summary['inputs_per_s']:,.1f} inputs/s, {summary['tokens_per_s']:,.0f} tokens/s "
        f"on {summary['mode']}, {summary['workers']} workers × {summary['threads_per_worker']} threads",
    ]
    for w in summary["per_worker"]:
        rate = f"{w['inputs_per_s']:,.1f} inputs/s" if w["inputs_per_s"] else "-"
        lines.append(f"  worker {w['worker']}: {w['parts']} parts, {w['inputs']:,} inputs, {rate}, RSS {w['rss_mb_first_part']:.0f} → {w['rss_mb_last_part']:.0f} MB")
    lines.append(f"  driver RSS {summary['driver_rss_mb']['start']:.0f} → {summary['driver_rss_mb']['end']:.0f} MB; summary in {Path(summary['output']) / SUMMARY_FILE}")
    return "\n".join(lines)


def print_bad_rows(summary: dict, limit: int = 20, stream=None) -> None:
    stream = stream or sys.stderr
    path = Path(summary["output"]) / BAD_ROWS_FILE
    if not summary["bad_rows"]:
        return
    with open(path, encoding="utf-8") as handle:
        for n, line in enumerate(handle):
            if n >= limit:
                stream.write(f"seaembed embed-dataset: … {summary['bad_rows'] - limit} more bad rows in {path}\n")
                break
            row = json.loads(line)
            stream.write(f"seaembed embed-dataset: skipped {row['source']}:{row['line']}: {row['reason']}\n")
