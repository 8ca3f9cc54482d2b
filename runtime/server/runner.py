"""uvicorn, configured and stopped the way a load balancer needs: drain, then close, then exit 0.

On the first SIGTERM (or SIGINT) the app starts draining: /ready answers 503 and every response
closes its connection, while requests are still accepted and served, for drain_s seconds (the time
a load balancer needs to see /ready fail and stop sending). Then uvicorn stops accepting, finishes
the requests in flight and the queued batches, and the process exits 0. A second signal ends the
drain at once; a third stops without waiting. uvicorn itself re-raises the signal after a graceful
stop (exit 143); this server does not, since a drained stop is a success.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time

from .settings import ServerSettings

log = logging.getLogger("seaembed.server")
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACEFUL_SHUTDOWN_S = 30  # after the drain: how long requests in flight may take before they are cancelled


def uvicorn_module():
    try:
        import uvicorn
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("seaembed serve needs the serve extra: pip install 'seaembed[serve]'", name=err.name) from err
    return uvicorn


def uvicorn_config(app, settings: ServerSettings, log_level: str):
    """uvicorn picks uvloop and httptools when they are installed (the serve extra installs them)."""
    from .protocol import guarded_protocol

    return uvicorn_module().Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(settings.header_timeout_s, settings.max_connections),
        log_config=None,
        log_level=log_level,
        access_log=False,
        proxy_headers=False,  # nothing here reads the client address
        lifespan="on",
        timeout_keep_alive=settings.keep_alive_s,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        backlog=4096,
    )


def draining_server(app, settings: ServerSettings, log_level: str):
    """A uvicorn.Server for the app (an HttpApp: it has start_draining) that drains on SIGTERM and exits 0."""
    uvicorn = uvicorn_module()

    class DrainingServer(uvicorn.Server):
        def __init__(self, config):
            super().__init__(config)
            self._drain_until: float | None = None
            self._signals = 0
            self._logged = False

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in _SIGNALS}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        def handle_exit(self, sig, frame) -> None:  # a signal handler: set flags only, log from on_tick
            self._signals += 1
            if self._signals == 1:
                app.start_draining()
                self._drain_until = time.monotonic() + settings.drain_s
            elif self._signals == 2:
                self.should_exit = True
            else:
                self.force_exit = True

        async def on_tick(self, counter: int) -> bool:
            if self._drain_until is not None:
                if not self._logged:
                    self._logged = True
                    log.info("draining", extra={"fields": {"event": "draining", "drain_s": settings.drain_s}})
                if time.monotonic() >= self._drain_until:
                    self.should_exit = True
            return await super().on_tick(counter)

    return DrainingServer(uvicorn_config(app, settings, log_level))
