"""`seaembed serve`: the HTTP server (needs seaembed[serve]: uvicorn, orjson; uvloop + httptools where they install)."""

from __future__ import annotations

import socket
import sys

from .logs import configure_logging
from .settings import ServerSettings


def serve(
    bundle_dir, settings: ServerSettings, backend: str = "cpu", threads: int | None = None, precision: str | None = None,
    artifact: str | None = None, log_level: str = "info", sock: socket.socket | None = None,
) -> None:
    """Serve a bundle until SIGTERM (drained, runner.py); settings.workers > 1 runs that many processes on one port (workers.py).

    sock: a listening socket already bound (workers.bind_socket), so a taken port fails before any model loads.
    """
    from .runner import draining_server, uvicorn_module
    from .workers import bind_socket

    uvicorn_module()  # the missing extra is named before any model loads
    configure_logging(log_level)
    sock = sock or bind_socket(settings.host, settings.port)
    engine = {"backend": backend, "threads": threads, "precision": precision, "artifact": artifact}
    if settings.workers > 1:
        from .workers import run_workers

        sys.exit(run_workers(bundle_dir, settings, engine, log_level, sock))
    from ..embedder import Embedder
    from .app import create_app

    embedder = Embedder.load(bundle_dir, **engine)
    draining_server(create_app(embedder, settings), settings, log_level).run(sockets=[sock])


__all__ = ["ServerSettings", "serve", "configure_logging"]
