"""A small Prometheus registry (text exposition format 0.0.4): counters, gauges, histograms.

Label values come from fixed sets (the server labels requests by route, `other` for any unknown path),
so the exposition cannot grow with what clients send; values are escaped all the same.
"""

from __future__ import annotations

import threading
from collections import defaultdict

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
TOKEN_BUCKETS = (8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


def escape_label_value(value) -> str:
    """A label value as the exposition format writes it: backslash, double quote and line feed escaped."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    body = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in sorted(labels.items()))
    return "{" + body + "}"


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple, float]] = defaultdict(lambda: defaultdict(float))
        self._gauges: dict[str, float] = {}
        self._histograms: dict[str, dict[tuple, list]] = defaultdict(dict)
        self._buckets: dict[str, tuple] = {}
        self._help: dict[str, tuple[str, str]] = {}

    def describe(self, name: str, kind: str, text: str, buckets: tuple | None = None) -> None:
        self._help[name] = (kind, text)
        if buckets is not None:
            self._buckets[name] = buckets

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        with self._lock:
            self._counters[name][tuple(sorted(labels.items()))] += value

    def set(self, name: str, value: float) -> None:
        with self._lock:
            self._gauges[name] = value

    def observe(self, name: str, value: float, **labels: str) -> None:
        buckets = self._buckets[name]
        key = tuple(sorted(labels.items()))
        with self._lock:
            state = self._histograms[name].get(key)
            if state is None:
                state = self._histograms[name][key] = [[0] * len(buckets), 0.0, 0]
            for i, bound in enumerate(buckets):
                if value <= bound:
                    state[0][i] += 1
            state[1] += value
            state[2] += 1

    def observe_many(self, name: str, values, **labels: str) -> None:
        """observe() of each value under one lock (a request's input lengths)."""
        buckets = self._buckets[name]
        key = tuple(sorted(labels.items()))
        with self._lock:
            state = self._histograms[name].get(key)
            if state is None:
                state = self._histograms[name][key] = [[0] * len(buckets), 0.0, 0]
            counts = state[0]
            for value in values:
                for i, bound in enumerate(buckets):
                    if value <= bound:
                        counts[i] += 1
                state[1] += value
                state[2] += 1

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, (kind, text) in sorted(self._help.items()):
                lines.append(f"# HELP {name} {text}")
                lines.append(f"# TYPE {name} {kind}")
                if kind == "counter":
                    for key, value in sorted(self._counters.get(name, {}).items()):
                        lines.append(f"{name}{_labels(dict(key))} {value:g}")
                elif kind == "gauge":
                    lines.append(f"{name} {self._gauges.get(name, 0):g}")
                elif kind == "histogram":
                    for key, (counts, total, n) in sorted(self._histograms.get(name, {}).items()):
                        labels = dict(key)
                        for bound, count in zip(self._buckets[name], counts, strict=True):
                            lines.append(f"{name}_bucket{_labels({**labels, 'le': f'{bound:g}'})} {count}")
                        lines.append(f"{name}_bucket{_labels({**labels, 'le': '+Inf'})} {n}")
                        lines.append(f"{name}_sum{_labels(labels)} {total:g}")
                        lines.append(f"{name}_count{_labels(labels)} {n}")
        return "\n".join(lines) + "\n"


def server_metrics() -> Metrics:
    m = Metrics()
    m.describe("seaembed_requests_total", "counter", "HTTP requests by endpoint (a known route, or other) and status code (499: the client left before the answer)")
    m.describe("seaembed_request_duration_seconds", "histogram", "HTTP request latency", LATENCY_BUCKETS)
    m.describe("seaembed_queue_inputs", "gauge", "inputs waiting for the engine")
    m.describe("seaembed_batch_size", "histogram", "inputs per engine call", SIZE_BUCKETS)
    m.describe("seaembed_batch_tokens", "histogram", "padded tokens per engine call", TOKEN_BUCKETS)
    m.describe("seaembed_batch_padding_tokens_total", "counter", "padding positions computed (share of padding: this / seaembed_batch_tokens_sum)")
    m.describe("seaembed_input_tokens", "histogram", "tokens per input (special tokens included)", TOKEN_BUCKETS)
    m.describe("seaembed_inference_duration_seconds", "histogram", "engine time per batch", LATENCY_BUCKETS)
    m.describe("seaembed_inputs_truncated_total", "counter", "inputs cut to the model's max tokens on request")
    return m
