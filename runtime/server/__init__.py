"""`seaembed serve`: the HTTP server (needs seaembed[serve]: uvicorn, orjson; uvloop + httptools where they install)."""

from __future__ import annotations

import sys

from .logs import configure_logging
from .settings import ServerSettings


def serve(bundle_dir, settings: ServerSettings, backend: str = "cpu", threads: int | None = None, precision: str | None = None, artifact: str | None = None, log_level: str = "info") -> None:
    """Serve a bundle until SIGTERM (drained, runner.py); settings.workers > 1 runs that many processes on one port (workers.py)."""
    from .runner import draining_server, uvicorn_module

    uvicorn_module()  # the missing extra is named before any model loads
    configure_logging(log_level)
    engine = {"backend": backend, "threads": threads, "precision": precision, "artifact": artifact}
    if settings.workers > 1:
        from .workers import run_workers

        sys.exit(run_workers(bundle_dir, settings, engine, log_level))
    from ..embedder import Embedder
    from .app import create_app

    embedder = Embedder.load(bundle_dir, **engine)
    draining_server(create_app(embedder, settings), settings, log_level).run()


__all__ = ["ServerSettings", "serve", "configure_logging"]
