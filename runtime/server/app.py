"""HTTP API: OpenAI /v1/embeddings, TEI's routes (/, /embed, /tokenize, /info, /health, …), /ready, /metrics.

Per request: one orjson parse, one batch tokenizer call off the event loop, the shared
batcher, and vectors written from the numpy array by orjson (formats.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import PurePath

import numpy as np

from ..cpus import available_cpus
from ..embedder import Embedder
from ..tokenizer import InputTooLongError, InvalidTextError
from ..version import __version__
from . import formats
from .asgi import HttpApp, Request, Response, Route
from .auth import ApiKeys
from .batcher import DynamicBatcher, QueueFull
from .errors import ApiError
from .metrics import server_metrics
from .parsing import (
    bool_field,
    describe,
    dimensions_field,
    direction_field,
    json_body,
    optional_str_field,
    texts_field,
)
from .settings import ServerSettings

log = logging.getLogger("seaembed.server")

# OpenAI's input_type values (and common synonyms) → the model's prompt names
_INPUT_TYPES = {"query": ("query",), "passage": ("passage", "document"), "document": ("document", "passage")}
_QUIET_PATHS = ("/metrics", "/health", "/ready", "/ping")
_PROBE = frozenset({"GET"})  # what load balancers and Prometheus call without an API key
# /info tells clients what the model is, not where or with what it was exported (that stays in manifest.json)
_INFO_BACKEND_FIELDS = ("backend", "engine", "provider", "device", "artifact", "precision", "threads")
_INFO_ARCHITECTURE_FIELDS = ("family", "layers", "hidden", "heads", "ffn", "vocab_size", "max_position_embeddings")
# What makes an over-long input fit, by route family: OpenAI clients have no `truncate`.
_TRUNCATE_HINT = {
    "openai": "shorten it, or start the server with --auto-truncate true to cut inputs to the first {limit} tokens "
    "(or use the TEI route /embed with \"truncate\": true)",
    "tei": "pass \"truncate\": true to keep the first {limit} (or \"truncation_direction\": \"left\" with it to keep the last)",
}


def _too_long(err: InputTooLongError, family: str) -> ApiError:
    given = f"{err.n_tokens}" if err.exact else f"at least {err.n_tokens}"
    where = f"input {err.index} " if err.index is not None else "input "
    message = f"{where}has {given} tokens but the model accepts at most {err.limit} (special tokens included); " + _TRUNCATE_HINT[family].format(limit=err.limit)
    return ApiError(422, message, index=err.index)


def public_model_name(name: str) -> str:
    """A hub id (owner/name) as it is; a local checkpoint path (the export machine's) as its last component."""
    parts = name.split("/")
    if len(parts) <= 2 and not name.startswith((".", "~")) and all(parts):
        return name
    return PurePath(name).name or name


def _json(content, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    return Response(formats.dumps(content), headers=headers or [])


def create_app(embedder: Embedder, settings: ServerSettings) -> HttpApp:
    settings = settings.resolved(getattr(embedder.backend, "batch_hint", (16, 4096)))
    settings.validate()
    metrics = server_metrics()
    tokenizer = embedder.tokenizer
    state: dict = {"ready": False, "batcher": None}
    # one tokenizer thread per core this worker may use: the native tokenizer releases the GIL
    token_threads = max(1, available_cpus() // settings.workers)
    token_pool = ThreadPoolExecutor(max_workers=token_threads, thread_name_prefix="seaembed-tokenize")
    served_name = settings.served_model_name or public_model_name(embedder.manifest.model_name)

    def engine(sequences, normalize):
        return embedder.embed_ids(sequences, batch_size=len(sequences), normalize=normalize)

    async def startup() -> None:
        batcher = DynamicBatcher(
            engine, settings.max_batch_tokens, settings.max_batch_size, settings.max_wait_ms / 1000,
            settings.max_queue_inputs, metrics, batching=settings.batching,
        )
        batcher.start()
        state["batcher"] = batcher
        started = time.perf_counter()
        # Warm-up: the first engine calls allocate and pick kernels; no user pays for that.
        warm = tokenizer.encode_batch_truncating(["warm-up", "warm-up " * 1000])[0]
        await batcher.embed(warm, None)
        state["ready"] = True
        log.info("ready", extra={"fields": {"event": "ready", "warmup_s": round(time.perf_counter() - started, 3), **embedder.describe()}})

    async def shutdown() -> None:
        state["ready"] = False
        await state["batcher"].stop()  # finishes queued work before the process exits
        token_pool.shutdown(wait=False)
        embedder.close()  # GPU buffers and streams go back before the process exits
        log.info("stopped", extra={"fields": {"event": "stopped"}})

    def observe(request: Request, response: Response, elapsed: float) -> None:
        route = request.route  # a known route or "other": labels never grow with what clients send
        metrics.inc("seaembed_requests_total", endpoint=route, status=str(response.status))
        metrics.observe("seaembed_request_duration_seconds", elapsed, endpoint=route)
        if settings.log_requests and route not in _QUIET_PATHS:
            path = request.path if len(request.path) <= 200 else request.path[:200] + "…"
            fields = {"event": "request", "method": request.method[:16], "path": path, "status": response.status, "ms": round(elapsed * 1000, 2)}
            for name, value in response.headers:
                if name in (b"x-seaembed-inputs", b"x-seaembed-tokens"):
                    fields[name[11:].decode()] = int(value)
            log.info("request", extra={"fields": fields})

    def tokenize(texts: list[str], prompt_name: str | None, truncate: bool, direction: str, family: str):
        """One batch tokenizer call (GIL-free where the tokenizer is native); runs in token_pool."""
        try:
            if truncate:
                sequences, truncated = tokenizer.encode_batch_truncating(texts, prompt_name=prompt_name, direction=direction)
            else:
                sequences, truncated = tokenizer.encode_batch(texts, prompt_name=prompt_name, truncate=False, direction=direction), []
        except InputTooLongError as err:
            raise _too_long(err, family) from None
        except InvalidTextError as err:
            raise ApiError(422, str(err), index=err.index) from None
        metrics.observe_many("seaembed_input_tokens", [len(ids) for ids in sequences])
        if truncated:
            metrics.inc("seaembed_inputs_truncated_total", len(truncated))
        return sequences, truncated

    async def embed(texts, prompt_name, truncate, normalize, direction, family):
        if not state["ready"]:
            raise ApiError(503, "the model is still warming up; poll /ready")
        loop = asyncio.get_running_loop()
        sequences, truncated = await loop.run_in_executor(token_pool, tokenize, texts, prompt_name, truncate, direction, family)
        try:
            vectors = await state["batcher"].embed(sequences, normalize)
        except QueueFull as err:
            raise ApiError(429, str(err)) from None
        except FloatingPointError as err:
            raise ApiError(500, str(err)) from None
        tokens = sum(map(len, sequences))
        headers = [(b"x-seaembed-inputs", str(len(texts)).encode()), (b"x-seaembed-tokens", str(tokens).encode())]
        if truncated:
            headers.append((b"x-seaembed-truncated-inputs", ",".join(map(str, truncated)).encode()))
        return vectors, tokens, headers

    def prompt_name_field(body: dict) -> str | None:
        prompt_name = optional_str_field(body, "prompt_name")
        if prompt_name is not None and prompt_name not in embedder.prompts:
            raise ApiError(422, f"`prompt_name` {describe(prompt_name)} is not defined by this model (prompts: {sorted(embedder.prompts)})", "prompt_name")
        return prompt_name

    def prompt_for_input_type(input_type) -> str | None:
        if input_type is None:
            return embedder.manifest.default_prompt_name
        if not isinstance(input_type, str) or input_type not in _INPUT_TYPES:
            raise ApiError(422, f"`input_type` must be one of {', '.join(sorted(_INPUT_TYPES))}, got {describe(input_type)}", "input_type")
        for name in _INPUT_TYPES[input_type]:
            if name in embedder.prompts:
                return name
        raise ApiError(422, f"this model defines no prompt for input_type {input_type!r} (prompts: {sorted(embedder.prompts)})", "input_type")

    def shorten(vectors: np.ndarray, dimensions: int | None) -> np.ndarray:
        if dimensions is None or dimensions == embedder.dim:
            return vectors
        vectors = vectors[:, :dimensions]
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    async def openai_embeddings(request: Request) -> Response:
        body = json_body(request.body)
        texts = texts_field(body.get("input"), "input", settings.max_client_batch_size)
        fmt = formats.parse_output_format(body)
        dimensions = dimensions_field(body, embedder.dim)
        prompt_name = prompt_for_input_type(body.get("input_type"))
        vectors, tokens, headers = await embed(texts, prompt_name, settings.auto_truncate, None, "right", "openai")
        data = [{"object": "embedding", "index": i, "embedding": row} for i, row in enumerate(formats.rows(shorten(vectors, dimensions), fmt))]
        return _json({"object": "list", "data": data, "model": served_name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}, headers)

    async def tei_embed(request: Request) -> Response:
        body = json_body(request.body)
        texts = texts_field(body.get("inputs"), "inputs", settings.max_client_batch_size)
        normalize = bool_field(body, "normalize", True)
        truncate = bool_field(body, "truncate", settings.auto_truncate)
        direction = direction_field(body)
        dimensions = dimensions_field(body, embedder.dim)
        fmt = formats.parse_output_format(body)
        if fmt.encoding == "base64":  # TEI ignores encoding_format here and answers numbers; clients rely on that
            fmt = formats.OutputFormat("float", fmt.dtype)
        vectors, _tokens, headers = await embed(texts, prompt_name_field(body), truncate, normalize, direction, "tei")
        if dimensions is not None and dimensions < embedder.dim:
            vectors = vectors[:, :dimensions]
            if normalize:
                vectors = shorten(vectors, dimensions)
        return Response(formats.matrix_json(vectors, fmt), headers=headers)

    async def tei_tokenize(request: Request) -> Response:
        body = json_body(request.body)
        texts = texts_field(body.get("inputs"), "inputs", settings.max_client_batch_size)
        add_special = bool_field(body, "add_special_tokens", True)
        prompt_name = prompt_name_field(body)
        specials = set(tokenizer.prefix_ids) | set(tokenizer.suffix_ids)
        try:
            sequences = tokenizer.encode_batch(texts, prompt_name=prompt_name, add_special_tokens=add_special)
        except InvalidTextError as err:
            raise ApiError(422, str(err), index=err.index) from None
        return _json([[{"id": t, "text": tokenizer.id_to_piece(t), "special": t in specials} for t in ids] for ids in sequences])

    async def info(_request: Request) -> Response:
        """Model facts only: the export machine's paths, hub revision and package versions stay in manifest.json."""
        manifest = embedder.manifest
        backend = {k: v for k, v in embedder.backend.describe().items() if k in _INFO_BACKEND_FIELDS}
        return _json({
            # TEI's /info fields (router/src/lib.rs Info), then seaembed's own
            "model_id": served_name,
            "model_sha": None,
            "model_dtype": backend.get("precision"),
            "model_type": {"embedding": {"pooling": "mean"}},
            "max_concurrent_requests": settings.max_queue_inputs,
            "max_input_length": embedder.max_tokens,
            "max_batch_tokens": settings.max_batch_tokens,
            "max_batch_requests": settings.max_batch_size,
            "max_client_batch_size": settings.max_client_batch_size,
            "auto_truncate": settings.auto_truncate,
            "tokenization_workers": token_threads,
            "version": __version__,
            "sha": None,
            "docker_label": None,
            "model": public_model_name(manifest.model_name),
            "dim": embedder.dim,
            "prompts": manifest.prompts,
            "normalize": manifest.normalize,
            **backend,
            "batching": settings.batching,
            "workers": settings.workers,
            "encoding_formats": list(formats.ENCODINGS),
            "embed_dtypes": list(formats.DTYPES),
            "bundle": {
                "format_version": manifest.format_version,
                "architecture": {k: manifest.architecture.get(k) for k in _INFO_ARCHITECTURE_FIELDS},
                "artifacts": [{"name": a.name, "precision": a.precision, "parity": {k: a.parity.get(k) for k in ("max_abs_diff", "min_cosine")}} for a in manifest.artifacts],
            },
        })

    async def health(_request: Request) -> Response:
        batcher = state["batcher"]
        if batcher is None or not batcher.alive:
            raise ApiError(503, "the inference worker is not running")
        return _json({"status": "ok"})

    async def ready(_request: Request) -> Response:
        if http.draining:
            raise ApiError(503, "shutting down: finishing requests in flight; send new ones elsewhere")
        if not state["ready"]:
            raise ApiError(503, "warming up")
        return _json({"status": "ready"})

    async def prometheus(_request: Request) -> Response:
        return Response(metrics.render().encode(), content_type=b"text/plain; version=0.0.4")

    openai = Route({"POST": openai_embeddings}, openai_errors=True)
    # TEI: POST / embeds for embedding models, GET / is health. The API key guards the POST; GET / answers
    # health without one, as /health does (a load balancer probes `/`).
    tei_root = Route({"POST": tei_embed, "GET": health}, open_methods=_PROBE)
    routes = {
        "/v1/embeddings": openai,
        "/embeddings": openai,  # TEI serves the OpenAI route here too
        "/": tei_root,
        "/embed": Route({"POST": tei_embed}),
        "/invocations": Route({"POST": tei_embed}),  # SageMaker's route, as TEI maps it
        "/tokenize": Route({"POST": tei_tokenize}),
        "/info": Route({"GET": info}),
        "/health": Route({"GET": health}, open_methods=_PROBE),
        "/ping": Route({"GET": health}, open_methods=_PROBE),
        "/ready": Route({"GET": ready}, open_methods=_PROBE),
        "/metrics": Route({"GET": prometheus}, open_methods=frozenset() if settings.metrics_auth else _PROBE),
    }
    api_keys = ApiKeys(settings.api_keys) if settings.api_keys else None
    http = HttpApp(routes, settings.max_body_bytes, startup, shutdown, observe, api_keys=api_keys, body_timeout_s=settings.body_timeout_s)
    http.metrics = metrics  # the registry, for ray_serve to gather every replica's at /metrics
    return http
