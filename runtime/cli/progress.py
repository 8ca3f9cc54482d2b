"""A one-line progress report on stderr for long `seaembed embed --input` runs (no dependencies).

Off when stderr is not a terminal (logs and pipes stay clean) and for runs shorter than `delay`
seconds; `--progress on` forces it, `off` silences it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

DELAY_S = 2.0
REFRESH_S = 0.2


def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


class Progress:
    def __init__(self, total: int, mode: str = "auto", stream: TextIO | None = None, delay: float = DELAY_S):
        self.total = total
        self.stream = stream or sys.stderr
        if mode not in ("auto", "on", "off"):
            raise ValueError(f"progress mode must be auto, on or off, got {mode!r}")
        self.enabled = mode == "on" or (mode == "auto" and self.stream.isatty())
        self.delay = 0.0 if mode == "on" else delay
        self.started = time.perf_counter()
        self.inputs = 0
        self.tokens = 0
        self._drawn_at = 0.0
        self._shown = False

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        per_s = self.inputs / elapsed
        eta = f"  ETA {(self.total - self.inputs) / per_s:,.0f}s" if per_s > 0 and self.inputs < self.total else ""
        percent = 100 * self.inputs / max(self.total, 1)
        return (
            f"embedded {self.inputs:,}/{self.total:,} ({percent:.0f}%)  {_rate(per_s)} inputs/s  "
            f"{_rate(self.tokens / elapsed)} tokens/s  {elapsed:,.0f}s{eta}"
        )

    def update(self, inputs: int, tokens: int) -> None:
        self.inputs += inputs
        self.tokens += tokens
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self.started < self.delay or (now - self._drawn_at < REFRESH_S and self.inputs < self.total):
            return
        self._drawn_at = now
        self._shown = True
        self.stream.write("\r\033[K" + self.line() if self.stream.isatty() else self.line() + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._shown and self.stream.isatty():
            self.stream.write("\n")
            self.stream.flush()
