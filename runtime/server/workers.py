"""`--workers N`: N server processes on one listening socket, each with its own engine.

Python runs one request's parsing, tokenization glue and serialisation at a time per
process (the GIL); separate processes use the other cores. Each worker gets
available_cpus() // N inference threads unless --threads says otherwise. On a GPU, the N
processes share the device (each holds its own session and memory).

The parent binds the socket (so the port is taken before any model loads), starts the
workers with the spawn method (no forked engine threads), forwards SIGTERM/SIGINT, and
restarts a worker that dies after it was up; a worker that dies within its first
STARTUP_GRACE_S means the configuration is wrong, so everything stops with its exit code.

On SIGTERM the parent closes its own copy of the listening socket before it forwards the signal:
each worker drains (runner.py: /ready 503, requests still served) and then closes its copy, and
once the last one has, the kernel refuses new connections (ECONNREFUSED) instead of queueing
them on a socket nobody will accept from and resetting them when the parent exits.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time

from ..cpus import available_cpus
from .runner import GRACEFUL_SHUTDOWN_S
from .settings import ServerSettings

log = logging.getLogger("seaembed.server")
STARTUP_GRACE_S = 60.0


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(4096)
    sock.set_inheritable(True)
    return sock


def _worker_main(sock: socket.socket, index: int, bundle_dir, settings: ServerSettings, engine: dict, log_level: str) -> None:
    from ..embedder import Embedder
    from .app import create_app
    from .logs import configure_logging
    from .runner import draining_server

    configure_logging(log_level)
    embedder = Embedder.load(bundle_dir, **engine)
    log.info("worker", extra={"fields": {"event": "worker_loaded", "worker": index, "threads": engine["threads"]}})
    draining_server(create_app(embedder, settings), settings, log_level).run(sockets=[sock])


def run_workers(bundle_dir, settings: ServerSettings, engine: dict, log_level: str, sock: socket.socket | None = None) -> int:
    """Supervise settings.workers processes until SIGTERM/SIGINT; returns the exit code."""
    from ..manifest import load_manifest

    load_manifest(bundle_dir)  # a bad bundle fails here, once, with its own message
    count = settings.workers
    engine = dict(engine, threads=engine.get("threads") or max(1, available_cpus() // count))
    sock = sock or bind_socket(settings.host, settings.port)
    context = multiprocessing.get_context("spawn")
    stopping = False

    def start(index: int):
        process = context.Process(target=_worker_main, args=(sock, index, bundle_dir, settings, engine, log_level), name=f"seaembed-worker-{index}")
        process.start()
        return process, time.monotonic()

    def stop(signum, _frame) -> None:
        nonlocal stopping
        if not stopping:
            sock.close()  # the workers' copies keep the port open while they drain
        stopping = True
        for process, _started in workers:
            if process.is_alive():
                process.terminate()  # SIGTERM: the worker drains, finishes in-flight requests and its queue, exits 0

    workers = [start(i) for i in range(count)]
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("workers", extra={"fields": {"event": "workers_started", "workers": count, "threads_per_worker": engine["threads"], "pids": [p.pid for p, _ in workers]}})
    exit_code = 0
    while not stopping:
        time.sleep(0.2)
        for index, (process, started) in enumerate(workers):
            if process.is_alive() or stopping:
                continue
            if time.monotonic() - started < STARTUP_GRACE_S:
                log.error("worker", extra={"fields": {"event": "worker_failed_at_startup", "worker": index, "exitcode": process.exitcode}})
                exit_code = process.exitcode or 1
                stop(signal.SIGTERM, None)
                break
            log.error("worker", extra={"fields": {"event": "worker_restarted", "worker": index, "exitcode": process.exitcode}})
            workers[index] = start(index)
    for process, _started in workers:
        process.join(settings.drain_s + GRACEFUL_SHUTDOWN_S + 5)
        if process.is_alive():
            process.kill()
            process.join()
    sock.close()
    log.info("stopped", extra={"fields": {"event": "stopped", "workers": count}})
    return exit_code
