"""The embed-dataset progress bar: tqdm over inputs, with tokens/s beside inputs/s; off when stderr is not a terminal."""

from __future__ import annotations

import sys
import time

from ..cli.progress import Progress


class JobProgress:
    def __init__(self, total: int, mode: str = "auto"):
        self.started = time.perf_counter()
        self.tokens = 0
        self._plain = None
        self._bar = None
        enabled = mode == "on" or (mode == "auto" and sys.stderr.isatty())
        if not enabled or total == 0:
            return
        try:
            from tqdm import tqdm
        except ModuleNotFoundError:
            self._plain = Progress(total, "on")
            return
        self._bar = tqdm(total=total, unit="input", unit_scale=True, dynamic_ncols=True, file=sys.stderr, smoothing=0.1)

    def update(self, inputs: int, tokens: int) -> None:
        self.tokens += tokens
        if self._plain is not None:
            self._plain.update(inputs, tokens)
        elif self._bar is not None:
            self._bar.update(inputs)
            elapsed = max(time.perf_counter() - self.started, 1e-9)
            self._bar.set_postfix_str(f"{self.tokens / elapsed:,.0f} tokens/s", refresh=False)

    def close(self) -> None:
        if self._plain is not None:
            self._plain.close()
        if self._bar is not None:
            self._bar.close()
