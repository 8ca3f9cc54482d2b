"""`seaembed embed-dataset BUNDLE INPUT OUTPUT`: the command-line face of embed_dataset()."""

from __future__ import annotations

import sys

from .support import check_run_flags, env_default, positive_int


def cmd_embed_dataset(args) -> int:
    from ..bulk.job import embed_dataset, format_summary, print_bad_rows

    check_run_flags(args.bundle, args.precision, args.artifact, args.prompt_name)
    summary = embed_dataset(
        args.bundle,
        args.input,
        args.output,
        text_field=args.text_field,
        id_field=args.id_field,
        input_format=args.input_format,
        prompt_name=args.prompt_name,
        over_length=args.over_length,
        dtype=args.dtype,
        batch_size=args.batch_size,
        rows_per_part=args.rows_per_part,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        backend=args.backend,
        precision=args.precision,
        artifact=args.artifact,
        ray=args.ray or bool(args.ray_address),
        ray_address=args.ray_address,
        strict=args.strict,
        overwrite=args.overwrite,
        progress=args.progress,
    )
    print_bad_rows(summary, stream=sys.stderr)
    print(format_summary(summary))
    return 0


def register(sub, runtime_flags) -> None:
    p = sub.add_parser(
        "embed-dataset",
        help="embed a JSONL/CSV/TXT/Parquet dataset into Parquet parts, resumable, on N local workers or Ray (needs seaembed[bulk])",
        description=(
            "Embed every row of INPUT (a file, a directory or a glob) into OUTPUT/part-NNNNN.parquet "
            "(id, embedding, tokens, truncated, windows). Rerun the same command after an interruption: "
            "finished parts are kept and skipped."
        ),
    )
    p.add_argument("bundle")
    p.add_argument("input", help="JSONL, CSV, TXT or Parquet: a file, a directory or a glob ('data/*.jsonl')")
    p.add_argument("output", help="directory for the Parquet parts, _plan.json, _manifest.json, _bad_rows.jsonl, _summary.json")
    p.add_argument("--text-field", default="text", help="column/field holding the text")
    p.add_argument("--id-field", default=None, help="column/field holding each row's id (default: `id` when every input file's records have one, else FILE:LINE)")
    p.add_argument("--input-format", choices=("jsonl", "txt", "csv", "parquet"), default=None, help="when file extensions do not say")
    p.add_argument("--prompt-name", default=None, help="model prompt to prepend, e.g. passage")
    p.add_argument("--over-length", choices=("error", "truncate", "chunk"), default="truncate",
                   help="inputs over the model's max tokens: error (report and skip), truncate (keep the first tokens, flagged), "
                   "chunk (overlapping windows, token-weighted mean, renormalised)")
    p.add_argument("--dtype", choices=("float32", "float16", "ubinary"), default="float32", help="stored vector type (ubinary: packed sign bits)")
    p.add_argument("--batch-size", type=positive_int, default=int(env_default("BATCH_SIZE", 32)), help="inputs per engine call [SEAEMBED_BATCH_SIZE]")
    p.add_argument("--rows-per-part", type=positive_int, default=None, help="input rows per output part (default: total/64 within 256-8192)")
    p.add_argument("--workers", type=positive_int, default=env_default("WORKERS"), help="worker processes/actors, one model each (default: CPUs up to 4; Ray: one per GPU or CPU) [SEAEMBED_WORKERS]")
    p.add_argument("--threads-per-worker", type=positive_int, default=None, help="inference threads per worker (default: CPUs // workers)")
    p.add_argument("--ray", action="store_true", help="run on Ray (a local cluster unless --ray-address); needs seaembed[ray]")
    p.add_argument("--ray-address", default=env_default("RAY_ADDRESS"), help="existing Ray cluster to join, e.g. ray://head:10001 or auto [SEAEMBED_RAY_ADDRESS]")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row (default: skip bad rows, list them in OUTPUT/_bad_rows.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="discard what OUTPUT holds and start over")
    p.add_argument("--progress", choices=("auto", "on", "off"), default=env_default("PROGRESS", "auto"), help="progress bar on stderr (auto: on a terminal) [SEAEMBED_PROGRESS]")
    runtime_flags(p)
    p.set_defaults(func=cmd_embed_dataset)


__all__ = ["register", "cmd_embed_dataset"]
