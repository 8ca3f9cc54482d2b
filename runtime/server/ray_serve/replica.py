"""One Serve replica: an Embedder and the single-host server's ASGI app (create_app), unchanged.

Serve's `@serve.ingress` without an app calls `__serve_build_asgi_app__` after the constructor;
that returns create_app(embedder, settings), so every route, error, limit and the dynamic
batcher are the ones `seaembed serve` runs. Serve then drives the app's lifespan (warm-up,
batcher start and, on shutdown, the batcher draining its queue).
"""

from __future__ import annotations

import logging

from ..settings import ServerSettings
from .metrics_board import ReplicaMetrics

log = logging.getLogger("seaembed.server")


class EmbeddingReplica:
    def __init__(self, bundle_dir: str, settings: dict, engine: dict, metrics_board=None):
        from ...embedder import Embedder

        self.settings = ServerSettings(**settings)
        self.embedder = Embedder.load(bundle_dir, **engine)
        self.metrics_board = metrics_board
        self.http_app = None  # not `app`: Serve's ingress wrapper owns that name

    def __serve_build_asgi_app__(self):
        from ray import serve

        from ..app import create_app

        self.http_app = create_app(self.embedder, self.settings)
        replica = serve.get_replica_context().replica_id.unique_id
        log.info("replica", extra={"fields": {"event": "replica_loaded", "replica": replica, **self.embedder.describe()}})
        if self.metrics_board is None:
            return self.http_app
        return ReplicaMetrics(self.http_app, replica, self.metrics_board)

    async def check_health(self) -> None:
        """Serve's health probe: the app's own /health (503 only when its batcher has stopped)."""
        if self.http_app is None:
            return
        status = await asgi_status(self.http_app, "GET", "/health")
        if status == 503:
            raise RuntimeError("the inference worker of this replica is not running")


async def asgi_status(app, method: str, path: str) -> int:
    """Status of one in-process request to an ASGI app (no body)."""
    status = 0
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
             "raw_path": path.encode(), "root_path": "", "scheme": "http", "query_string": b"", "headers": [], "client": None, "server": None}
    await app(scope, receive, send)
    return status
