"""HTTP errors in the two shapes clients expect: OpenAI's on the OpenAI routes, TEI's elsewhere."""

from __future__ import annotations

import orjson

# OpenAI's error `type` by status; TEI's `error_type` (router/src/lib.rs ErrorType) by status.
_OPENAI_TYPES = {
    400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error", 405: "invalid_request_error",
    408: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error",
}
_TEI_TYPES = {
    400: "Validation", 401: "Unauthorized", 404: "Validation", 405: "Validation", 408: "Validation", 413: "Validation",
    422: "Validation", 429: "Overloaded", 503: "Unhealthy",
}
# OpenAI names a refused key by `code`; elsewhere the status is the code.
_OPENAI_CODES = {401: "invalid_api_key"}
# Seconds a client should wait before retrying a 429 (queue full) or 503 (warming up, draining).
RETRY_AFTER_S = 1


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, index: int | None = None, headers: list[tuple[bytes, bytes]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.index = index
        self.headers = headers or []


def error_body(openai_shape: bool, status: int, message: str, param: str | None = None, index: int | None = None) -> bytes:
    if openai_shape:
        body: dict = {"error": {"message": message, "type": _OPENAI_TYPES.get(status, "server_error"), "param": param, "code": _OPENAI_CODES.get(status, status)}}
    else:
        body = {"error": message, "error_type": _TEI_TYPES.get(status, "Backend")}
    if index is not None:
        body["input_index"] = index
    return orjson.dumps(body)


def error_headers(err: ApiError) -> list[tuple[bytes, bytes]]:
    """The error's own headers, plus Retry-After on 429 and 503 (RFC 9110 §10.2.3)."""
    if err.status in (429, 503) and not any(name == b"retry-after" for name, _ in err.headers):
        return [*err.headers, (b"retry-after", str(RETRY_AFTER_S).encode())]
    return err.headers
