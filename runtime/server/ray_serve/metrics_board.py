"""Every replica's Prometheus registry at /metrics, whichever replica answers the scrape.

Each replica pushes its rendered registry to one small MetricsBoard deployment every
PUSH_INTERVAL_S; a GET /metrics goes through the replica's own app first (so whatever the app
checks on that route still applies), then its body is replaced by every live replica's
samples, each with a `replica` label (the answering replica's own numbers are current, the
others at most PUSH_INTERVAL_S old). A replica that stops pushing drops out after STALE_S.
Sum across replicas in PromQL: `sum without (replica) (rate(seaembed_requests_total[1m]))`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

log = logging.getLogger("seaembed.server")

PUSH_INTERVAL_S = 1.0
STALE_S = 5.0
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})?\s+(\S+)$")


class MetricsBoard:
    """Latest registry text of each replica (a Serve deployment of one replica, no CPU reserved)."""

    def __init__(self):
        self._texts: dict[str, tuple[float, str]] = {}

    def push(self, replica: str, text: str) -> None:
        self._texts[replica] = (time.monotonic(), text)

    def forget(self, replica: str) -> None:
        self._texts.pop(replica, None)

    def collect(self) -> dict[str, str]:
        now = time.monotonic()
        self._texts = {r: (t, text) for r, (t, text) in self._texts.items() if now - t <= STALE_S}
        return {r: text for r, (_t, text) in self._texts.items()}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def with_label(sample: str, name: str, value: str) -> str:
    """`metric{a="b"} 1` → `metric{NAME="VALUE",a="b"} 1`."""
    match = _SAMPLE.match(sample)
    if match is None:
        return sample
    metric, labels, number = match.groups()
    inner = labels[1:-1] if labels else ""
    label = f'{name}="{_escape(value)}"'
    return f"{metric}{{{label}{',' + inner if inner else ''}}} {number}"


def merge_replica_texts(texts: dict[str, str]) -> str:
    """One exposition (format 0.0.4) from several: each family's HELP and TYPE once, then its
    samples from every replica, labelled `replica`; plus `seaembed_replicas`, the replicas counted."""
    families: dict[str, tuple[list[str], list[str]]] = {}  # name → (HELP/TYPE lines, samples)
    for replica, text in sorted(texts.items()):
        current = None
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                    current = parts[2]
                    header, _ = families.setdefault(current, ([], []))
                    if line not in header:
                        header.append(line)
                continue
            if current is None:
                current = _SAMPLE.match(line).group(1) if _SAMPLE.match(line) else line
                families.setdefault(current, ([], []))
            families[current][1].append(with_label(line, "replica", replica))
    lines = ["# HELP seaembed_replicas replicas whose metrics this scrape holds", "# TYPE seaembed_replicas gauge", f"seaembed_replicas {len(texts)}"]
    for header, samples in families.values():
        lines += header + samples
    return "\n".join(lines) + "\n"


class ReplicaMetrics:
    """ASGI wrapper around a replica's app: pushes its registry, answers /metrics for all replicas."""

    def __init__(self, app, replica: str, board):
        self.app = app
        self.replica = replica
        self.board = board
        self._pusher: asyncio.Task | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            self._pusher = asyncio.get_running_loop().create_task(self._push_forever(), name="seaembed-metrics-push")
            try:
                await self.app(scope, receive, send)
            finally:
                self._pusher.cancel()
            return
        if scope["type"] == "http" and scope["path"] == "/metrics" and scope["method"] == "GET":
            await self._metrics(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _local_text(self) -> str:
        return self.app.metrics.render()

    async def _push_forever(self) -> None:
        while True:
            await asyncio.sleep(PUSH_INTERVAL_S)
            try:
                await self.board.push.remote(self.replica, self._local_text())
            except Exception as err:  # the board restarts on its own; metrics must never fail a replica
                log.warning("metrics", extra={"fields": {"event": "metrics_push_failed", "error": f"{type(err).__name__}: {err}"}})

    async def _metrics(self, scope, receive, send) -> None:
        messages: list[dict] = []

        async def capture(message):
            messages.append(message)

        await self.app(scope, receive, capture)
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        if start is None or start["status"] != 200:
            for message in messages:
                await send(message)
            return
        try:
            texts = await self.board.collect.remote()
        except Exception as err:
            log.warning("metrics", extra={"fields": {"event": "metrics_collect_failed", "error": f"{type(err).__name__}: {err}"}})
            texts = {}
        texts[self.replica] = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body").decode()
        body = merge_replica_texts(texts).encode()
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"] + [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
