"""Server configuration: every field has a flag and a SEAEMBED_* environment variable (README: "Serve flags")."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    served_model_name: str | None = None  # what /v1/embeddings reports as `model` (default: the bundle's)
    # None: the backend's own hint (CPU: small batches win; GPUs want wide ones)
    max_batch_tokens: int | None = None  # padded tokens per engine call
    max_batch_size: int | None = None  # inputs per engine call
    max_wait_ms: float = 5.0  # how long a lone request waits for company
    batching: bool = True  # False: one request per engine call (the naive baseline)
    max_client_batch_size: int = 512  # inputs per request
    max_queue_inputs: int = 8192  # inputs waiting before 429
    max_body_bytes: int = 4 * 1024 * 1024
    auto_truncate: bool = False  # default for requests that do not say
    log_requests: bool = True
    workers: int = 1  # processes sharing the port, each with its own engine (workers.py)
    # accepted `Authorization: Bearer` keys; empty: no authentication. repr=False: never in a log line or traceback
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    metrics_auth: bool = False  # True: /metrics needs a key as well
    # A connection must deliver its request line and headers within header_timeout_s of opening (or of its
    # previous response), and a request its body within body_timeout_s; an idle keep-alive connection is
    # closed after keep_alive_s. max_connections: open connections beyond this are answered 503 and closed.
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0
    max_connections: int = 2048
    drain_s: float = 5.0  # after SIGTERM: /ready answers 503 this long (requests still served), then the port closes

    def resolved(self, batch_hint: tuple[int, int]) -> ServerSettings:
        """Fill unset batch limits from the backend's (max_batch_size, max_batch_tokens) hint."""
        from dataclasses import replace

        return replace(
            self,
            max_batch_size=self.max_batch_size or batch_hint[0],
            max_batch_tokens=self.max_batch_tokens or batch_hint[1],
        )

    def validate(self) -> None:
        checks = {
            "max_batch_tokens": self.max_batch_tokens is None or self.max_batch_tokens >= 1,
            "max_batch_size": self.max_batch_size is None or self.max_batch_size >= 1,
            "max_wait_ms": self.max_wait_ms >= 0,
            "max_client_batch_size": self.max_client_batch_size >= 1,
            "max_queue_inputs": self.max_queue_inputs >= self.max_client_batch_size,
            "max_body_bytes": self.max_body_bytes >= 1024,
            "workers": self.workers >= 1,
            "header_timeout_s": self.header_timeout_s > 0,
            "body_timeout_s": self.body_timeout_s > 0,
            "keep_alive_s": self.keep_alive_s > 0,
            "max_connections": self.max_connections >= 1,
            "drain_s": self.drain_s >= 0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(
                "invalid server settings: "
                + ", ".join(f"{name}={getattr(self, name)}" for name in bad)
                + " (max_queue_inputs must be >= max_client_batch_size, max_body_bytes >= 1024; timeouts and sizes must be positive, drain_s >= 0)"
            )
        if self.metrics_auth and not self.api_keys:
            raise ValueError("--metrics-auth needs at least one API key (--api-key, SEAEMBED_API_KEY or --api-key-file)")
