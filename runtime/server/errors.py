"""HTTP errors in the two shapes clients expect: OpenAI's on the OpenAI routes, TEI's elsewhere."""

from __future__ import annotations

import orjson

# OpenAI's error `type` by status; TEI's `error_type` (router/src/lib.rs ErrorType) by status.
_OPENAI_TYPES = {400: "invalid_request_error", 404: "invalid_request_error", 405: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}
_TEI_TYPES = {400: "Validation", 404: "Validation", 405: "Validation", 413: "Validation", 422: "Validation", 429: "Overloaded", 503: "Unhealthy"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, index: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.index = index


def error_body(openai_shape: bool, status: int, message: str, param: str | None = None, index: int | None = None) -> bytes:
    if openai_shape:
        body: dict = {"error": {"message": message, "type": _OPENAI_TYPES.get(status, "server_error"), "param": param, "code": status}}
    else:
        body = {"error": message, "error_type": _TEI_TYPES.get(status, "Backend")}
    if index is not None:
        body["input_index"] = index
    return orjson.dumps(body)
