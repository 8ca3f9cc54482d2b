"""Drives an ASGI app in this process, as uvicorn would, minus the socket and the HTTP parser:
lifespan startup/shutdown, and one request at a time on a private event loop."""

from __future__ import annotations

import asyncio


class AsgiDriver:
    def __init__(self, app):
        self.app = app
        self.loop = asyncio.new_event_loop()
        self._to_app: asyncio.Queue | None = None
        self._from_app: asyncio.Queue | None = None
        self._lifespan: asyncio.Task | None = None

    def start(self) -> None:
        self.loop.run_until_complete(self._start())

    def stop(self) -> None:
        self.loop.run_until_complete(self._stop())
        self.loop.close()

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """(status, response body) of one request."""
        return self.loop.run_until_complete(self._request(method, path, body))

    async def _start(self) -> None:
        self._to_app, self._from_app = asyncio.Queue(), asyncio.Queue()
        self._lifespan = self.loop.create_task(self.app({"type": "lifespan"}, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        answer = await self._from_app.get()
        if answer["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {answer.get('message', answer['type'])}")

    async def _stop(self) -> None:
        await self._to_app.put({"type": "lifespan.shutdown"})
        await self._from_app.get()
        await self._lifespan

    async def _request(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        events = [{"type": "http.request", "body": body, "more_body": False}]
        sent: list[dict] = []

        async def receive() -> dict:
            if events:
                return events.pop()
            # A client that stays connected until its answer: the app drops the work of one that left.
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)

        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        scope = {"type": "http", "method": method, "path": path, "headers": headers, "query_string": b""}
        await self.app(scope, receive, send)
        return sent[0]["status"], sent[1]["body"]
