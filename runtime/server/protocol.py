"""Connection limits uvicorn does not have: a deadline for the request head, and a cap on open connections.

uvicorn times out idle keep-alive connections (--keep-alive-s) but starts no timer on a new
connection, and cancels its keep-alive timer as soon as any byte arrives: a client that connects
and sends half a request line holds a socket (and a file descriptor) forever. This subclass of
uvicorn's HTTP protocol gives every connection header_timeout_s, from when it opens or its
previous response ends, to deliver a complete request head; the body's deadline is the app's
(asgi.py, --body-timeout-s). Connections beyond max_connections are answered 503 at once and
closed. These are uvicorn-level: another ASGI server (Ray Serve's proxy) brings its own.
"""

from __future__ import annotations

import asyncio

import orjson

from .errors import RETRY_AFTER_S


def _busy_response(max_connections: int) -> bytes:
    body = orjson.dumps({"error": f"the server holds its maximum of {max_connections} open connections (--max-connections); retry later", "error_type": "Overloaded"})
    head = (
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nretry-after: {RETRY_AFTER_S}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools when installed, else h11) with the head deadline and connection cap."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    busy = _busy_response(max_connections)

    class GuardedHttpProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(busy)
                transport.close()
                return
            self._arm_head_deadline()

        def connection_lost(self, exc) -> None:
            self._cancel_head_deadline()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm_head_deadline()  # the next request's head gets its own header_timeout_s

        def _arm_head_deadline(self) -> None:
            self._cancel_head_deadline()
            self._head_deadline = self.loop.call_later(header_timeout_s, self._head_deadline_passed)

        def _cancel_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_deadline_passed(self) -> None:
            self._head_deadline = None
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being served: its head arrived in time; the app bounds its body
            if not self.transport.is_closing():
                self.transport.close()

    return GuardedHttpProtocol
