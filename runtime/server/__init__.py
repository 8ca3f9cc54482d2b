"""`seaembed serve`: the HTTP server (needs seaembed[serve]: fastapi + uvicorn)."""

from __future__ import annotations

import json
import logging
import sys
import time

from .settings import ServerSettings


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line; messages that are already JSON objects are merged in."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)), "level": record.levelname.lower(), "logger": record.name}
        message = record.getMessage()
        try:
            parsed = json.loads(message)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            entry.update(parsed)
        else:
            entry["message"] = message
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def serve(bundle_dir, settings: ServerSettings, backend: str = "cpu", threads: int | None = None, precision: str | None = None, artifact: str | None = None, log_level: str = "info") -> None:
    try:
        import uvicorn
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("seaembed serve needs the serve extra: pip install 'seaembed[serve]'", name=err.name) from err
    from ..embedder import Embedder
    from .app import create_app

    configure_logging(log_level)
    embedder = Embedder.load(bundle_dir, backend=backend, threads=threads, precision=precision, artifact=artifact)
    app = create_app(embedder, settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


__all__ = ["ServerSettings", "serve", "configure_logging"]
