"""HTTP API: OpenAI-compatible /v1/embeddings and TEI-style /embed, /tokenize, /info, /health, /ready, /metrics."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from ..embedder import Embedder
from ..tokenizer import InputTooLongError, InvalidTextError
from .batcher import DynamicBatcher, QueueFull
from .errors import ApiError, error_response
from .metrics import server_metrics
from .settings import ServerSettings

log = logging.getLogger("seaembed.server")

# OpenAI's input_type values (and common synonyms) → the model's prompt names
_INPUT_TYPES = {"query": ("query",), "passage": ("passage", "document"), "document": ("document", "passage")}


class BodyLimit:
    """Pure ASGI middleware: refuse bodies over max_bytes with 413 before reading them whole."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        message = f"request body exceeds {self.max_bytes} bytes (--max-body-bytes)"
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await error_response(path, 413, message)(scope, receive, send)
        seen = 0

        async def limited_receive():
            nonlocal seen
            event = await receive()
            if event["type"] == "http.request":
                seen += len(event.get("body", b""))
                if seen > self.max_bytes:
                    raise ApiError(413, message)
            return event

        try:
            await self.app(scope, limited_receive, send)
        except ApiError as err:
            await error_response(path, err.status, err.message)(scope, receive, send)


def _texts(value, field: str, max_items: int) -> tuple[list[str], bool]:
    """A string or a non-empty list of non-empty strings; (texts, was_single)."""
    if isinstance(value, str):
        texts, single = [value], True
    elif isinstance(value, list):
        texts, single = value, False
        if not texts:
            raise ApiError(422, f"`{field}` is an empty list; send at least one text", field)
        for i, item in enumerate(texts):
            if isinstance(item, (int, list)):
                raise ApiError(422, f"`{field}` holds token ids at index {i}; this server accepts text only", field, i)
            if not isinstance(item, str):
                raise ApiError(422, f"`{field}`[{i}] must be a string, got {type(item).__name__}", field, i)
    else:
        raise ApiError(422, f"`{field}` must be a string or a list of strings", field)
    if len(texts) > max_items:
        raise ApiError(413, f"batch size {len(texts)} > maximum allowed batch size {max_items} (--max-client-batch-size)", field)
    for i, text in enumerate(texts):
        if text == "":
            raise ApiError(422, f"`{field}`[{i}] is an empty string; empty inputs have no embedding", field, i)
    return texts, single


def _bool_field(body: dict, name: str, default: bool) -> bool:
    value = body.get(name, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ApiError(422, f"`{name}` must be true or false, got {value!r}", name)
    return value


async def _json_body(request: Request) -> dict:
    raw = await request.body()
    try:
        body = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ApiError(422, f"request body is not valid UTF-8 (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ApiError(422, f"request body is not valid JSON: {err.msg} at position {err.pos}") from None
    if not isinstance(body, dict):
        raise ApiError(422, "request body must be a JSON object")
    return body


def create_app(embedder: Embedder, settings: ServerSettings) -> FastAPI:
    settings = settings.resolved(getattr(embedder.backend, "batch_hint", (16, 4096)))
    settings.validate()
    metrics = server_metrics()
    tokenizer = embedder.tokenizer
    state = {"ready": False, "batcher": None}
    token_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="seaembed-tokenize")
    served_name = settings.served_model_name or embedder.manifest.model_name

    def embed_ids(sequences, normalize):
        return embedder.embed_ids(sequences, batch_size=settings.max_batch_size, normalize=normalize, max_batch_tokens=settings.max_batch_tokens)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        batcher = DynamicBatcher(
            embed_ids,
            settings.max_batch_tokens,
            settings.max_batch_size,
            settings.max_wait_ms / 1000,
            settings.max_queue_inputs,
            metrics,
            batching=settings.batching,
        )
        batcher.start()
        state["batcher"] = batcher
        started = time.perf_counter()
        # Warm-up: the first engine calls allocate and pick kernels; no user pays for that.
        await batcher.embed([tokenizer.encode("warm-up"), tokenizer.encode("warm-up " * 1000)], None)
        state["ready"] = True
        log.info(json.dumps({"event": "ready", "warmup_s": round(time.perf_counter() - started, 3), **embedder.describe()}))
        yield
        state["ready"] = False
        await batcher.stop()  # finishes queued work before the process exits
        token_pool.shutdown(wait=False)
        log.info(json.dumps({"event": "stopped"}))

    app = FastAPI(title="seaembed", version=embedder.manifest.producer.get("seaembed", ""), lifespan=lifespan)

    @app.middleware("http")
    async def observe(request: Request, call_next):
        started = time.perf_counter()
        try:
            response = await call_next(request)
        except ApiError as err:
            response = error_response(request.url.path, err.status, err.message, err.param, err.index)
        elapsed = time.perf_counter() - started
        endpoint = request.url.path
        metrics.inc("seaembed_requests_total", endpoint=endpoint, status=str(response.status_code))
        metrics.observe("seaembed_request_duration_seconds", elapsed, endpoint=endpoint)
        if settings.log_requests and endpoint not in ("/metrics", "/health", "/ready"):
            log.info(json.dumps({"event": "request", "method": request.method, "path": endpoint, "status": response.status_code, "ms": round(elapsed * 1000, 2), "inputs": response.headers.get("x-seaembed-inputs"), "tokens": response.headers.get("x-seaembed-tokens")}))
        return response

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError):
        return error_response(request.url.path, err.status, err.message, err.param, err.index)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, err: Exception):
        log.exception("unhandled error")
        return error_response(request.url.path, 500, f"internal error: {type(err).__name__}: {err}")

    def _tokenize_all(texts, prompt_name, truncate, direction):
        sequences, truncated = [], []
        for i, text in enumerate(texts):
            try:
                ids = tokenizer.encode(text, prompt_name=prompt_name, truncate=False, index=i)
            except InputTooLongError as err:
                if not truncate:
                    raise ApiError(422, str(err), index=i) from None
                ids = tokenizer.encode(text, prompt_name=prompt_name, truncate=True, index=i, direction=direction)
                truncated.append(i)
            except InvalidTextError as err:
                raise ApiError(422, str(err), index=i) from None
            metrics.observe("seaembed_input_tokens", len(ids))
            sequences.append(ids)
        if truncated:
            metrics.inc("seaembed_inputs_truncated_total", len(truncated))
        return sequences, truncated

    async def _embed(texts, prompt_name, truncate, normalize, direction="right"):
        if not state["ready"]:
            raise ApiError(503, "the model is still warming up; poll /ready")
        loop = asyncio.get_running_loop()
        sequences, truncated = await loop.run_in_executor(token_pool, _tokenize_all, texts, prompt_name, truncate, direction)
        try:
            vectors = await state["batcher"].embed(sequences, normalize)
        except QueueFull as err:
            raise ApiError(429, str(err)) from None
        except FloatingPointError as err:
            raise ApiError(500, str(err)) from None
        tokens = sum(len(s) for s in sequences)
        headers = {"x-seaembed-inputs": str(len(texts)), "x-seaembed-tokens": str(tokens)}
        if truncated:
            headers["x-seaembed-truncated-inputs"] = ",".join(map(str, truncated))
        return vectors, tokens, headers

    def _prompt_name(body: dict) -> str | None:
        prompt_name = body.get("prompt_name")
        if prompt_name is not None and prompt_name not in embedder.prompts:
            raise ApiError(422, f"`prompt_name` {prompt_name!r} is not defined by this model (prompts: {sorted(embedder.prompts)})")
        return prompt_name

    def _prompt_for_input_type(input_type):
        if input_type is None:
            return embedder.manifest.default_prompt_name
        if not isinstance(input_type, str) or input_type not in _INPUT_TYPES:
            raise ApiError(422, f"`input_type` must be one of {sorted(_INPUT_TYPES)}, got {input_type!r}", "input_type")
        for name in _INPUT_TYPES[input_type]:
            if name in embedder.prompts:
                return name
        raise ApiError(422, f"this model defines no prompt for input_type {input_type!r} (prompts: {sorted(embedder.prompts)})", "input_type")

    @app.post("/v1/embeddings")
    async def openai_embeddings(request: Request):
        body = await _json_body(request)
        texts, _single = _texts(body.get("input"), "input", settings.max_client_batch_size)
        encoding = body.get("encoding_format", "float") or "float"
        if encoding not in ("float", "base64"):
            raise ApiError(422, f"`encoding_format` must be 'float' or 'base64', got {encoding!r}", "encoding_format")
        dimensions = body.get("dimensions")
        if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or not 1 <= dimensions <= embedder.dim):
            raise ApiError(422, f"`dimensions` must be an integer from 1 to {embedder.dim}, got {dimensions!r} (the model is not Matryoshka-trained: fewer dimensions lose quality)", "dimensions")
        prompt_name = _prompt_for_input_type(body.get("input_type"))
        vectors, tokens, headers = await _embed(texts, prompt_name, settings.auto_truncate, None)
        if dimensions is not None and dimensions < embedder.dim:
            vectors = vectors[:, :dimensions]
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        data = []
        for i, vector in enumerate(vectors):
            vector = np.ascontiguousarray(vector, dtype="<f4")
            embedding = base64.b64encode(vector.tobytes()).decode("ascii") if encoding == "base64" else vector.tolist()
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        content = {"object": "list", "data": data, "model": served_name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}
        return JSONResponse(content, headers=headers)

    @app.post("/embed")
    async def tei_embed(request: Request):
        body = await _json_body(request)
        texts, _single = _texts(body.get("inputs"), "inputs", settings.max_client_batch_size)
        normalize = _bool_field(body, "normalize", True)
        truncate = _bool_field(body, "truncate", settings.auto_truncate)
        direction = body.get("truncation_direction", "Right") or "Right"
        if direction not in ("Right", "Left", "right", "left"):
            raise ApiError(422, f"`truncation_direction` must be 'Right' or 'Left', got {direction!r}")
        prompt_name = _prompt_name(body)
        vectors, _tokens, headers = await _embed(texts, prompt_name, truncate, normalize, direction.lower())
        return JSONResponse(vectors.tolist(), headers=headers)

    @app.post("/tokenize")
    async def tei_tokenize(request: Request):
        body = await _json_body(request)
        texts, _single = _texts(body.get("inputs"), "inputs", settings.max_client_batch_size)
        add_special = _bool_field(body, "add_special_tokens", True)
        prompt_name = _prompt_name(body)
        specials = set(tokenizer.prefix_ids) | set(tokenizer.suffix_ids)
        out = []
        for i, text in enumerate(texts):
            try:
                ids = tokenizer.encode(text, prompt_name=prompt_name, add_special_tokens=add_special, index=i)
            except InvalidTextError as err:
                raise ApiError(422, str(err), index=i) from None
            out.append([{"id": t, "text": tokenizer.id_to_piece(t), "special": t in specials} for t in ids])
        return out

    @app.get("/info")
    async def info():
        manifest = embedder.manifest
        return {
            "model_id": served_name,
            "model": manifest.model_name,
            "dim": embedder.dim,
            "max_input_length": embedder.max_tokens,
            "prompts": manifest.prompts,
            "normalize": manifest.normalize,
            **embedder.backend.describe(),
            "max_batch_tokens": settings.max_batch_tokens,
            "max_client_batch_size": settings.max_client_batch_size,
            "auto_truncate": settings.auto_truncate,
            "batching": settings.batching,
            "bundle": {
                "format_version": manifest.format_version,
                "created": manifest.created,
                "source": manifest.source,
                "architecture": manifest.architecture,
                "artifacts": [{"name": a.name, "precision": a.precision, "parity": {k: a.parity.get(k) for k in ("max_abs_diff", "min_cosine")}} for a in manifest.artifacts],
                "producer": manifest.producer,
            },
        }

    @app.get("/health")
    async def health():
        batcher = state["batcher"]
        if batcher is None or not batcher.alive:
            return error_response("/health", 503, "the inference worker is not running")
        return {"status": "ok"}

    @app.get("/ready")
    async def ready():
        if not state["ready"]:
            return error_response("/ready", 503, "warming up")
        return {"status": "ready"}

    @app.get("/metrics")
    async def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/")
    async def root():
        return Response(status_code=200, content=f"seaembed serving {served_name}; see /docs of the README for the API\n")

    return BodyLimit(app, settings.max_body_bytes)
