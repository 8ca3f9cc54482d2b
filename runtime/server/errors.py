"""HTTP errors in the two shapes clients expect: OpenAI's for /v1/*, TEI's elsewhere."""

from __future__ import annotations

from fastapi.responses import JSONResponse

_OPENAI_TYPES = {400: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error"}
_TEI_TYPES = {413: "Validation", 422: "Validation", 429: "Overloaded", 503: "Unhealthy"}


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, index: int | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.index = index


def error_response(path: str, status: int, message: str, param: str | None = None, index: int | None = None) -> JSONResponse:
    if path.startswith("/v1/"):
        body = {"error": {"message": message, "type": _OPENAI_TYPES.get(status, "server_error"), "param": param, "code": status}}
    else:
        body = {"error": message, "error_type": _TEI_TYPES.get(status, "Backend")}
    if index is not None:
        body["input_index"] = index
    return JSONResponse(status_code=status, content=body)
