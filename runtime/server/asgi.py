"""The HTTP plumbing the API needs and nothing more: a pure ASGI app over a route table.

A framework's per-request machinery (middleware stacks, dependency resolution, response
models) costs more than embedding a short text with a small model; here a request is one
dict lookup, one body read under the size limit, one handler call and one send.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .errors import ApiError, error_body

log = logging.getLogger("seaembed.server")


@dataclass
class Request:
    method: str
    path: str
    body: bytes


@dataclass
class Response:
    body: bytes = b""
    status: int = 200
    content_type: bytes = b"application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


Handler = Callable[[Request], Awaitable[Response]]
Observer = Callable[[Request, Response, float], None]


@dataclass
class Route:
    handlers: dict[str, Handler]  # by method
    openai_errors: bool = False  # errors in OpenAI's shape (else TEI's)


class HttpApp:
    """ASGI entry point: routes, body limit, errors in each route's shape, lifespan hooks."""

    def __init__(
        self,
        routes: dict[str, Route],
        max_body_bytes: int,
        startup: Callable[[], Awaitable[None]],
        shutdown: Callable[[], Awaitable[None]],
        observe: Observer,
    ):
        self.routes = routes
        self.max_body_bytes = max_body_bytes
        self.startup = startup
        self.shutdown = shutdown
        self.observe = observe

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive, send) -> None:
        await receive()  # lifespan.startup
        try:
            await self.startup()
        except Exception as err:  # the server must not start half-ready
            log.exception("startup failed")
            await send({"type": "lifespan.startup.failed", "message": f"{type(err).__name__}: {err}"})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await self.shutdown()
        await send({"type": "lifespan.shutdown.complete"})

    async def _http(self, scope, receive, send) -> None:
        started = time.perf_counter()
        path, method = scope["path"], scope["method"]
        request = Request(method, path, b"")
        route = self.routes.get(path)
        openai_errors = route.openai_errors if route else path.startswith("/v1/")
        try:
            if route is None:
                raise ApiError(404, f"no route {path}; see the README for the API")
            handler = route.handlers.get(method)
            if handler is None:
                raise ApiError(405, f"{method} is not allowed on {path} (allowed: {', '.join(sorted(route.handlers))})")
            body = await self._read_body(scope, receive)
            if body is None:  # the client went away
                return
            request.body = body
            response = await handler(request)
        except ApiError as err:
            response = Response(error_body(openai_errors, err.status, err.message, err.param, err.index), err.status)
        except Exception as err:
            log.exception("unhandled error")
            response = Response(error_body(openai_errors, 500, f"internal error: {type(err).__name__}: {err}"), 500)
        headers = [(b"content-type", response.content_type), (b"content-length", str(len(response.body)).encode()), *response.headers]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
        self.observe(request, response, time.perf_counter() - started)

    async def _read_body(self, scope, receive) -> bytes | None:
        limit = self.max_body_bytes
        message = f"request body exceeds {limit} bytes (--max-body-bytes)"
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise ApiError(413, message)
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return None
            chunk = event.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ApiError(413, message)
            chunks.append(chunk)
            if not event.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
