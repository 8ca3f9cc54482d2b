"""`seaembed serve`: the HTTP server (needs seaembed[serve]: uvicorn, orjson; uvloop + httptools where they install)."""

from __future__ import annotations

import json
import logging
import sys
import time

from .settings import ServerSettings


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line; a record's `fields` (extra={"fields": {...}}) are merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)), "level": record.levelname.lower(), "logger": record.name}
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        else:
            entry["message"] = record.getMessage()
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def uvicorn_module():
    try:
        import uvicorn
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("seaembed serve needs the serve extra: pip install 'seaembed[serve]'", name=err.name) from err
    return uvicorn


def uvicorn_config(app, settings: ServerSettings, log_level: str):
    """uvicorn picks uvloop and httptools when they are installed (the serve extra installs them)."""
    return uvicorn_module().Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,  # nothing here reads the client address
        lifespan="on",
        timeout_graceful_shutdown=30,
        backlog=4096,
    )


def serve(bundle_dir, settings: ServerSettings, backend: str = "cpu", threads: int | None = None, precision: str | None = None, artifact: str | None = None, log_level: str = "info") -> None:
    """Serve a bundle; settings.workers > 1 runs that many processes on one port (workers.py)."""
    uvicorn = uvicorn_module()
    configure_logging(log_level)
    engine = {"backend": backend, "threads": threads, "precision": precision, "artifact": artifact}
    if settings.workers > 1:
        from .workers import run_workers

        sys.exit(run_workers(bundle_dir, settings, engine, log_level))
    from ..embedder import Embedder
    from .app import create_app

    embedder = Embedder.load(bundle_dir, **engine)
    uvicorn.Server(uvicorn_config(create_app(embedder, settings), settings, log_level)).run()


__all__ = ["ServerSettings", "serve", "configure_logging"]
