"""In Serve's HTTP proxy: a request whose replica died under it goes once more to another
replica, and if that fails too the client gets 503 with Retry-After, never a hang or a bare 500.

Serve's proxy answers a request whose replica actor died with no response at all (its own
error path only writes 408/429/503 bodies), so the ASGI server would send a bare 500. This
middleware wraps the proxy: it keeps the request body, holds the response until it is complete,
and when the proxy ends without one, replays the request once; Serve's router has marked the
dead replica by then and picks a live one. Every seaembed route is a pure function of its
body, so a replay is safe (it replays for every application behind that proxy: one whose routes
are not safe to repeat should not share a cluster's proxies with it).

Serve's proxies load it from RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH (serve.start's
`middlewares` option is gone in Ray 2.60): `seaembed serve --ray` sets the variable before it
starts a local cluster, whose processes inherit it; a cluster started elsewhere needs
RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH=seaembed.runtime.server.ray_serve.retry.proxy_middlewares
in the environment of `ray start` on every node (README: Scale out).
"""

from __future__ import annotations

import logging
import os

from ..errors import error_body

log = logging.getLogger("seaembed.server")

RETRY_AFTER_S = 1
ATTEMPTS = 2  # the first try and one replay
# A request kept for a replay is held in the proxy: bounded, like the app's own --max-body-bytes default.
REPLAY_BODY_LIMIT = int(os.environ.get("SEAEMBED_MAX_BODY_BYTES", 4 * 1024 * 1024))


class RetryOnReplicaLoss:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body, complete = await _read_body(receive, REPLAY_BODY_LIMIT)
        if body is None:  # the client went away before sending its request
            return
        if not complete:  # too large to keep for a replay: passed on as it streams, the app's own limit answers it
            await self.app(scope, _prepended(body, receive), send)
            return
        client = _Client(receive)
        for attempt in range(ATTEMPTS):
            response = await self._attempt(scope, body, client)
            if response is not None:
                for message in response:
                    await send(message)
                return
            if client.gone:  # the proxy stopped because the client left: nobody to answer
                return
            log.warning("replica lost", extra={"fields": {"event": "replica_lost", "path": scope["path"], "attempt": attempt + 1}})
        openai = scope["path"] in ("/v1/embeddings", "/embeddings") or scope["path"].startswith("/v1/")
        payload = error_body(openai, 503, f"the replica serving this request stopped, twice; retry in {RETRY_AFTER_S} s")
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), (b"retry-after", str(RETRY_AFTER_S).encode()),
        ]})
        await send({"type": "http.response.body", "body": payload})

    async def _attempt(self, scope, body: bytes, client: _Client) -> list[dict] | None:
        """The proxy's complete response, or None when it ended without one."""
        messages: list[dict] = []
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await client.receive()  # the client's disconnect, when it comes

        async def hold(message):
            messages.append(message)

        try:
            await self.app(dict(scope), replay, hold)
        except Exception as err:
            log.warning("replica lost", extra={"fields": {"event": "proxy_error", "error": f"{type(err).__name__}: {err}"}})
            return None
        start = next((m for m in messages if m["type"] == "http.response.start"), None)
        if start is None or not _complete(messages):
            return None
        return messages


class _Client:
    """The client's receive channel after its body was read: remembers a disconnect."""

    def __init__(self, receive):
        self._receive = receive
        self.gone = False

    async def receive(self) -> dict:
        message = await self._receive()
        if message["type"] == "http.disconnect":
            self.gone = True
        return message


def _complete(messages: list[dict]) -> bool:
    return any(m["type"] == "http.response.body" and not m.get("more_body", False) for m in messages)


async def _read_body(receive, limit: int) -> tuple[bytes | None, bool]:
    """(body, True) for a whole body of at most `limit` bytes; (what was read, False) past it; (None, _) on disconnect."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None, False
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), True
        if size > limit:
            return b"".join(chunks), False


def _prepended(head: bytes, receive):
    """A receive channel that yields `head` (already read, more to come) and then the client's own messages."""
    sent = False

    async def channel() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": head, "more_body": True}
        return await receive()

    return channel


def proxy_middlewares() -> list:
    """For RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH: the middlewares Serve's proxies apply."""
    from starlette.middleware import Middleware

    return [Middleware(RetryOnReplicaLoss)]
