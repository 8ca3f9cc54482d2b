"""`seaembed serve`: every flag also reads SEAEMBED_<FLAG> (README, "Serve flags"), a flag given wins.

The flags are one table (SERVE_FLAGS) so the parser, the environment and the README's table cannot
disagree: tests/test_server_ops.py sets each variable and checks the value arrives, and that the
README lists every one.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .support import check_run_flags, parse_bool, positive_int, usage_error


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {value!r}")
    return number


def _port(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {value!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {number}")
    return number


def _log_level(value: str) -> str:
    if value.lower() not in ("debug", "info", "warning", "error", "critical"):
        raise argparse.ArgumentTypeError(f"expected debug, info, warning, error or critical, got {value!r}")
    return value.lower()


@dataclass(frozen=True)
class Flag:
    name: str  # "--max-batch-size"
    type: Callable[[str], Any]
    default: Any
    help: str

    @property
    def dest(self) -> str:
        return self.name[2:].replace("-", "_")

    @property
    def env(self) -> str:
        return "SEAEMBED_" + self.dest.upper()


SERVE_FLAGS = (
    Flag("--host", str, "127.0.0.1", "address to bind (0.0.0.0 to expose)"),
    Flag("--port", _port, 8080, "TCP port"),
    Flag("--served-model-name", str, None, "`model` reported by /v1/embeddings (default: the bundle's model name)"),
    Flag("--max-batch-tokens", positive_int, None, "padded tokens per engine call: bounds memory and latency (default: the backend's; CPU 4096)"),
    Flag("--max-batch-size", positive_int, None, "inputs per engine call (default: the backend's; CPU 16)"),
    Flag("--max-wait-ms", _non_negative, 5.0, "how long a request waits for others to batch with"),
    Flag("--batching", parse_bool, True, "true: batch across requests; false: one request per engine call"),
    Flag("--max-client-batch-size", positive_int, 512, "inputs per request before 413"),
    Flag("--max-queue-inputs", positive_int, 8192, "waiting inputs before 429"),
    Flag("--max-body-bytes", positive_int, 4 * 1024 * 1024, "request body size before 413"),
    Flag("--auto-truncate", parse_bool, False, "true: cut over-long inputs (reported in x-seaembed-truncated-inputs); false: 422"),
    Flag("--workers", positive_int, 1, "server processes sharing the port, each with its own engine and available CPUs / N threads"),
    Flag("--api-key-file", str, None, "file of accepted API keys, one per line (# comments); with --api-key, both are accepted"),
    Flag("--metrics-auth", parse_bool, False, "true: /metrics needs an API key too (default: open, like /health)"),
    Flag("--header-timeout-s", _non_negative, 10.0, "a connection must send its request line and headers within this long of opening (or of its last response)"),
    Flag("--body-timeout-s", _non_negative, 30.0, "a request must deliver its whole body within this long (408 otherwise)"),
    Flag("--keep-alive-s", _non_negative, 5.0, "an idle keep-alive connection is closed after this long"),
    Flag("--max-connections", positive_int, 2048, "open connections beyond this are answered 503 and closed"),
    Flag("--drain-s", _non_negative, 5.0, "after SIGTERM, /ready answers 503 this long while requests are still served; then the port closes"),
    Flag("--log-requests", parse_bool, True, "one JSON log line per request (health, ready and metrics probes excepted)"),
    Flag("--log-level", _log_level, "info", "debug, info, warning, error"),
)
# --api-key: repeatable, so its own argument; documented with the rest.
API_KEY_HELP = "accepted API key for `Authorization: Bearer` on the work routes; repeat or comma-separate (prefer the variable or --api-key-file: a flag shows in `ps`)"


def apply_environment(args: argparse.Namespace, environ=os.environ) -> None:
    """Fill every flag the command line left unset from SEAEMBED_<FLAG>, else its default; a bad value is a usage error naming the variable."""
    for flag in SERVE_FLAGS:
        if getattr(args, flag.dest) is not None:
            continue
        raw = environ.get(flag.env)
        if raw is None or raw == "":
            setattr(args, flag.dest, flag.default)
            continue
        try:
            setattr(args, flag.dest, flag.type(raw))
        except (argparse.ArgumentTypeError, ValueError) as err:
            raise usage_error(f"{flag.env}={raw!r}: {err}") from None
    if not args.api_key and environ.get("SEAEMBED_API_KEY"):
        args.api_key = [environ["SEAEMBED_API_KEY"]]
    if args.bundle is None:
        args.bundle = environ.get("SEAEMBED_BUNDLE") or None
        if args.bundle is None:
            raise usage_error("name the bundle to serve: `seaembed serve BUNDLE` or SEAEMBED_BUNDLE")


def server_settings(args: argparse.Namespace):
    """ServerSettings from parsed, environment-filled arguments; a bad combination is a usage error."""
    from ..server.auth import ApiKeyError, parse_api_keys
    from ..server.settings import ServerSettings

    try:
        keys = parse_api_keys(args.api_key or (), [args.api_key_file] if args.api_key_file else ())
    except ApiKeyError as err:
        raise usage_error(str(err)) from None
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        served_model_name=args.served_model_name,
        max_batch_tokens=args.max_batch_tokens,
        max_batch_size=args.max_batch_size,
        max_wait_ms=args.max_wait_ms,
        batching=args.batching,
        max_client_batch_size=args.max_client_batch_size,
        max_queue_inputs=args.max_queue_inputs,
        max_body_bytes=args.max_body_bytes,
        auto_truncate=args.auto_truncate,
        log_requests=args.log_requests,
        workers=args.workers,
        api_keys=keys,
        metrics_auth=args.metrics_auth,
        header_timeout_s=args.header_timeout_s,
        body_timeout_s=args.body_timeout_s,
        keep_alive_s=args.keep_alive_s,
        max_connections=args.max_connections,
        drain_s=args.drain_s,
    )
    try:
        settings.validate()
    except ValueError as err:
        raise usage_error(str(err)) from None
    return settings


def cmd_serve(args) -> int:
    apply_environment(args)
    settings = server_settings(args)
    check_run_flags(args.bundle, args.precision, args.artifact)
    if args.ray:
        from . import serve_ray

        return serve_ray.run(args, settings)
    from ..server import serve
    from ..server.workers import bind_socket

    try:  # the port is taken here, before any model loads: a busy port is one line, not a warm-up and a traceback
        sock = bind_socket(settings.host, settings.port)
    except OSError as err:
        raise usage_error(f"cannot listen on {settings.host}:{settings.port}: {err.strerror or err}; choose another --port or stop what holds it") from None
    serve(args.bundle, settings, backend=args.backend, threads=args.threads, precision=args.precision, artifact=args.artifact, log_level=args.log_level, sock=sock)
    return 0


def register(sub, runtime_flags) -> None:
    p = sub.add_parser(
        "serve",
        help="HTTP server: OpenAI /v1/embeddings and TEI-style /embed (needs seaembed[serve])",
        description="Every flag also reads SEAEMBED_<FLAG> (e.g. SEAEMBED_MAX_BATCH_SIZE); a flag given wins. "
        "SIGTERM drains: /ready answers 503 for --drain-s, requests in flight finish, exit 0.",
    )
    p.add_argument("bundle", nargs="?", default=None, help="bundle directory [SEAEMBED_BUNDLE]")
    for flag in SERVE_FLAGS:
        shown = "" if flag.default is None else f" (default {str(flag.default).lower() if isinstance(flag.default, bool) else flag.default})"
        extra = {"nargs": "?", "const": True} if flag.name == "--metrics-auth" else {}
        p.add_argument(flag.name, type=flag.type, default=None, help=f"{flag.help}{shown} [{flag.env}]", **extra)
    p.add_argument("--api-key", action="append", default=None, help=f"{API_KEY_HELP} [SEAEMBED_API_KEY]")
    runtime_flags(p)
    from . import serve_ray

    serve_ray.add_flags(p)
    p.set_defaults(func=cmd_serve)
