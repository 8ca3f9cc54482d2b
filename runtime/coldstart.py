"""Cold start, measured as a serverless or edge process pays it: a fresh interpreter per run.

`python -m seaembed.runtime.coldstart BUNDLE --artifact NAME` imports the runtime, opens the
bundle, embeds one query and prints one JSON line (its own phase timings and resident memory),
then exits. `cold_start()` launches it and times process start → that line, the user's view.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time

QUERY = "Apa ibu kota Indonesia?"


def _status_mb(field: str) -> float | None:
    """VmRSS / VmHWM / RssAnon / RssFile of this process from /proc (Linux); None elsewhere."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


_CHILD_FLAGS = ("--artifact", "--backend", "--threads", "--vectors")


def _child_args(argv: list[str]) -> dict:
    """BUNDLE [--artifact NAME] [--backend B] [--threads N] [--vectors OUT.npy], as _command writes them.

    Parsed by hand: the measured process should import what a user's process imports, and no more.
    """
    if not argv or len(argv) % 2 == 0:
        raise SystemExit(f"usage: python -m seaembed.runtime.coldstart BUNDLE [{' '.join(f + ' VALUE' for f in _CHILD_FLAGS)}]")
    pairs = dict(zip(argv[1::2], argv[2::2], strict=True))
    unknown = sorted(set(pairs) - set(_CHILD_FLAGS))
    if unknown:
        raise SystemExit(f"unknown flag(s) {', '.join(unknown)}; known: {', '.join(_CHILD_FLAGS)}")
    threads = pairs.get("--threads")
    return {
        "bundle": argv[0],
        "artifact": pairs.get("--artifact"),
        "backend": pairs.get("--backend", "cpu"),
        "threads": int(threads) if threads else None,
        "vectors": pairs.get("--vectors"),
    }


def _child(argv: list[str] | None = None) -> None:
    args = _child_args(sys.argv[1:] if argv is None else argv)
    from seaembed.runtime import Embedder

    started = time.perf_counter()
    embedder = Embedder.load(args["bundle"], backend=args["backend"], threads=args["threads"], artifact=args["artifact"])
    loaded = time.perf_counter()
    vector = embedder.encode(QUERY, prompt_name="query" if "query" in embedder.prompts else None)
    embedded = time.perf_counter()
    if args["vectors"]:
        import numpy as np

        np.save(args["vectors"], vector)
    report = {
        "artifact": embedder.backend.artifact.name,
        "load_s": loaded - started,
        "first_embed_s": embedded - loaded,
        "rss_mb": _status_mb("VmRSS"),
        "peak_rss_mb": _status_mb("VmHWM"),
        # file-backed pages are weights ONNX Runtime maps from the bundle; anonymous ones it allocated
        "rss_anon_mb": _status_mb("RssAnon"),
        "rss_file_mb": _status_mb("RssFile"),
    }
    print(json.dumps(report), flush=True)


def _command(bundle, artifact: str | None, backend: str, threads: int | None) -> list[str]:
    command = [sys.executable, "-m", "seaembed.runtime.coldstart", str(bundle), "--backend", backend]
    command += ["--artifact", artifact] if artifact else []
    return command + (["--threads", str(threads)] if threads else [])


def one_cold_start(bundle, artifact: str | None = None, backend: str = "cpu", threads: int | None = None, env: dict | None = None) -> dict:
    """One fresh process: seconds from its start to the first embedding, phase timings, RSS after it."""
    with tempfile.TemporaryFile(mode="w+") as errors:
        started = time.perf_counter()
        child = subprocess.Popen(_command(bundle, artifact, backend, threads), stdout=subprocess.PIPE, stderr=errors, text=True, env=env)
        line = child.stdout.readline()
        elapsed = time.perf_counter() - started
        child.communicate()
        errors.seek(0)
        if child.returncode != 0 or not line.strip():
            lines = [text for text in errors.read().splitlines() if text.strip()]
            reason = lines[-1] if lines else "no output"  # the child's exception, not its traceback or warnings
            raise RuntimeError(f"cold-start run of {artifact or 'the default artifact'} failed (exit {child.returncode}): {reason}")
    report = json.loads(line)
    # interpreter start + imports: what is left of the wall time once load and embed are taken out
    return dict(report, first_embedding_s=elapsed, startup_s=elapsed - report["load_s"] - report["first_embed_s"])


def median_report(samples: list[dict]) -> dict:
    keys = ("first_embedding_s", "startup_s", "load_s", "first_embed_s", "rss_mb", "peak_rss_mb", "rss_anon_mb", "rss_file_mb")
    out = {k: statistics.median(s[k] for s in samples) for k in keys if all(s.get(k) is not None for s in samples)}
    return dict(out, artifact=samples[0]["artifact"], runs=len(samples), min_first_embedding_s=min(s["first_embedding_s"] for s in samples))


def cold_start(bundle, artifact: str | None = None, backend: str = "cpu", threads: int | None = None, runs: int = 3, env: dict | None = None) -> dict:
    """Median over `runs` fresh processes, after one untimed run that warms the page cache and
    the sha256 record: seconds from process start to the first embedding, and RSS after it."""
    one_cold_start(bundle, artifact, backend, threads, env)
    return median_report([one_cold_start(bundle, artifact, backend, threads, env) for _ in range(runs)])


def cold_starts(bundle, names: list[str], backend: str = "cpu", threads: int | None = None, runs: int = 3, echo=None) -> dict[str, dict]:
    """{artifact: {"cold_start": cold_start(...)}} for `seaembed bench` (runs 0: {})."""
    out = {}
    for name in names if runs > 0 else []:
        c = cold_start(bundle, name, backend, threads, runs=runs)
        out[name] = {"cold_start": c}
        if echo:
            echo(f"{name:18s} cold start: first embedding after {c['first_embedding_s']:6.2f} s (load {c['load_s']:.2f} s), RSS {c.get('rss_mb', float('nan')):7.0f} MB")
    return out


if __name__ == "__main__":
    _child()
