"""The HTTP plumbing the API needs and nothing more: a pure ASGI app over a route table.

A framework's per-request machinery (middleware stacks, dependency resolution, response
models) costs more than embedding a short text with a small model; here a request is one
dict lookup, one body read under the size limit, one handler call and one send.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from .auth import ApiKeys
from .errors import ApiError, error_body, error_headers

log = logging.getLogger("seaembed.server")


@dataclass
class Request:
    method: str
    path: str
    body: bytes
    route: str = "other"  # the route table's key, or "other": what metrics label a request by


@dataclass
class Response:
    body: bytes = b""
    status: int = 200
    content_type: bytes = b"application/json"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


Handler = Callable[[Request], Awaitable[Response]]
Observer = Callable[[Request, Response, float], None]
# Not sent: what metrics and logs record for a request whose client left before its answer (nginx's code).
CLIENT_GONE = 499


@dataclass
class Route:
    handlers: dict[str, Handler]  # by method
    openai_errors: bool = False  # errors in OpenAI's shape (else TEI's)
    open_methods: frozenset[str] = frozenset()  # methods answered without an API key (health, readiness probes)


class HttpApp:
    """ASGI entry point: routes, API keys, body limit and read deadline, errors in each route's shape,
    work dropped when its client leaves, readiness drain, lifespan hooks.

    Everything here is ASGI, so any ASGI server (uvicorn, Ray Serve's proxy) gets it; connection-level
    limits (header read timeout, connection cap, keep-alive) live in protocol.py, uvicorn only.
    """

    def __init__(
        self,
        routes: dict[str, Route],
        max_body_bytes: int,
        startup: Callable[[], Awaitable[None]],
        shutdown: Callable[[], Awaitable[None]],
        observe: Observer,
        api_keys: ApiKeys | None = None,
        body_timeout_s: float | None = None,
    ):
        self.routes = routes
        self.max_body_bytes = max_body_bytes
        self.startup = startup
        self.shutdown = shutdown
        self.observe = observe
        self.api_keys = api_keys
        self.body_timeout_s = body_timeout_s
        self.draining = False  # set on SIGTERM: /ready answers 503, responses close their connection

    def start_draining(self) -> None:
        self.draining = True

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
        route = self.routes.get(path)
        request = Request(method, path, b"", path if route is not None else "other")
        openai_errors = route.openai_errors if route else path.startswith("/v1/")
        headers: list[tuple[bytes, bytes]] = []
        try:
            if route is None:
                raise ApiError(404, f"no route {_shown(path)}; see the README for the API")
            handler = route.handlers.get(method)
            if handler is None:
                raise ApiError(405, f"{_shown(method)} is not allowed on {path} (allowed: {', '.join(sorted(route.handlers))})")
            if self.api_keys is not None and method not in route.open_methods and not self.api_keys.allows(scope["headers"]):
                raise ApiError(401, "missing or wrong API key: send `Authorization: Bearer KEY`", headers=[(b"www-authenticate", b"Bearer")])
            body = await self._read_body(scope, receive)
            if body is None:  # the client went away
                self.observe(request, Response(status=CLIENT_GONE), time.perf_counter() - started)
                return
            request.body = body
            response = await (self._watched(handler, request, receive) if method == "POST" else handler(request))
            if response is None:  # the client went away while its request waited: nothing was sent
                self.observe(request, Response(status=CLIENT_GONE), time.perf_counter() - started)
                return
        except ApiError as err:
            response = Response(error_body(openai_errors, err.status, err.message, err.param, err.index), err.status)
            headers = error_headers(err)
            if err.status in (408, 413):  # the rest of the body is unread: this connection cannot carry another request
                headers = [*headers, (b"connection", b"close")]
        except Exception as err:
            log.exception("unhandled error")
            response = Response(error_body(openai_errors, 500, f"internal error: {type(err).__name__}: {err}"), 500)
        if self.draining and (b"connection", b"close") not in headers:
            headers = [*headers, (b"connection", b"close")]
        headers = [(b"content-type", response.content_type), (b"content-length", str(len(response.body)).encode()), *response.headers, *headers]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
        self.observe(request, response, time.perf_counter() - started)

    @staticmethod
    async def _watched(handler: Handler, request: Request, receive) -> Response | None:
        """Run the handler while listening for the client leaving; if it leaves first the handler is
        cancelled, so its inputs are dropped before they are batched (or, if already in a running
        engine call, their vectors are discarded) and None is returned.

        The handler runs in this task (one extra task per request, the listener, not two): the
        listener's callback cancels this task, and only that cancellation is swallowed here.
        """
        task = asyncio.current_task()
        state = {"left": False, "finished": False}

        def on_message(listener: asyncio.Future) -> None:
            if state["finished"] or listener.cancelled() or listener.exception() is not None:
                return
            if listener.result().get("type") == "http.disconnect":
                state["left"] = True
                task.cancel()

        listener = asyncio.ensure_future(receive())
        listener.add_done_callback(on_message)
        try:
            return await handler(request)
        except asyncio.CancelledError:
            if not state["left"]:
                raise  # the server is stopping this task: not ours to swallow
            uncancel = getattr(task, "uncancel", None)  # Python >= 3.11 counts cancellations
            if uncancel is not None:
                uncancel()
            return None
        finally:
            state["finished"] = True
            listener.cancel()

    async def _read_body(self, scope, receive) -> bytes | None:
        limit = self.max_body_bytes
        message = f"request body exceeds {limit} bytes (--max-body-bytes)"
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise ApiError(413, message)
        chunks: list[bytes] = []
        size = 0
        deadline = None if self.body_timeout_s is None else time.monotonic() + self.body_timeout_s
        while True:
            if deadline is None:
                event = await receive()
            else:
                try:
                    event = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    raise ApiError(408, f"the request body did not arrive within {self.body_timeout_s:g} s (--body-timeout-s)") from None
            if event["type"] == "http.disconnect":
                return None
            chunk = event.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise ApiError(413, message)
            chunks.append(chunk)
            if not event.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _shown(text: str) -> str:
    """A client-chosen path or method, shortened and with control characters escaped, for an error message."""
    text = text if len(text) <= 200 else text[:200] + "…"
    return text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
