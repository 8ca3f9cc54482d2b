"""One worker: loads the Embedder once, then turns parts into part files (local process or Ray actor)."""

from __future__ import annotations

import os
import resource
import socket
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..cli.inputs import BadRowError, Row, read_rows
from .encode import encode_stream
from .plan import JobSettings, Part

# Inputs per tokenize/embed step: also how often progress is reported.
STEP_INPUTS = 128

Report = Callable[[int, int], None]  # (inputs, tokens) done since the last report


def rss_mb() -> float:
    """Resident memory now (Linux /proc), else the peak."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bad(row: Row, reason: str | None = None) -> dict:
    return {"source": row.source, "line": row.line, "id": str(row.id), "reason": reason or row.error}


class PartRunner:
    def __init__(self, settings: JobSettings, threads: int | None, worker_name: str | None = None):
        from ..embedder import Embedder

        self.settings = settings
        # The driver verified the bundle's files once; workers trust that check.
        self.embedder = Embedder.load(
            settings.bundle, backend=settings.backend, threads=threads, verify=False, artifact=settings.artifact
        )
        self.worker = worker_name or f"{socket.gethostname()}:{os.getpid()}"

    def run(self, part: Part, output_dir: str | Path, report: Report | None = None) -> dict:
        from .output import part_table, write_part

        s = self.settings
        started = time.perf_counter()
        rows = list(read_rows(part.file, part.fmt, s.text_field, s.id_field, part.start, part.stop, name=part.name))
        bad = [_bad(r) for r in rows if r.error]
        if bad and s.strict:
            raise BadRowError(next(r for r in rows if r.error))
        good = [r for r in rows if not r.error]
        if report and len(rows) > len(good):
            report(len(rows) - len(good), 0)
        vectors, ids, tokens, truncated, windows = [], [], [], [], []
        policy_hint = {"error": " (over-length policy 'error'; --over-length truncate or chunk embeds it)"}.get(s.over_length, "")
        texts = [r.text for r in good]
        for offset, encoded in encode_stream(self.embedder, texts, s.prompt_name, s.over_length, s.batch_size, s.normalize, STEP_INPUTS):
            for position, reason in sorted(encoded.refused.items()):
                row = good[offset + position]
                if s.strict:
                    raise BadRowError(Row(row.source, row.line, row.id, None, reason + policy_hint))
                bad.append(_bad(row, reason + policy_hint))
            for k, position in enumerate(encoded.positions):
                row = good[offset + position]
                ids.append(str(row.id) if s.id_field else f"{part.name}:{row.line}")
                tokens.append(encoded.tokens[k])
                truncated.append(position in encoded.truncated)
                windows.append(encoded.windows.get(position, 1))
            vectors.append(encoded.vectors)
            if report:
                report(len(encoded.positions) + len(encoded.refused), sum(encoded.tokens))
        matrix = np.concatenate(vectors) if vectors else np.empty((0, self.embedder.dim), np.float32)
        bad.sort(key=lambda b: b["line"])
        stats = {
            "part": part.index,
            "file": part.name,
            "start": part.start,
            "stop": part.stop,
            "inputs": len(rows),
            "embedded": len(ids),
            "bad": bad,
            "tokens": int(sum(tokens)),
            "truncated": int(sum(truncated)),
            "chunked": int(sum(w > 1 for w in windows)),
            "windows": int(sum(windows)),
            "seconds": round(time.perf_counter() - started, 4),
            "worker": self.worker,
            "rss_mb": round(rss_mb(), 1),
        }
        write_part(Path(output_dir) / part.filename, part_table(ids, matrix, tokens, truncated, windows, self.embedder.dim, s.dtype), stats)
        return stats
