"""`seaembed serve BUNDLE --ray`: connect to (or start) a Ray cluster, start Serve's proxy on
--host/--port, run the seaembed application, and remove it again on SIGTERM/SIGINT."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path

from ..settings import ServerSettings
from .deployment import APP_NAME, AUTOSCALING_DEFAULTS, GPU_BACKENDS, build_app

log = logging.getLogger("seaembed.server")

PROXY_CALLBACK_VARIABLE = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
PROXY_CALLBACK = "seaembed.runtime.server.ray_serve.retry.proxy_middlewares"
AUTOSCALING_VARIABLE = "SEAEMBED_RAY_AUTOSCALING"  # JSON object over AUTOSCALING_DEFAULTS
CLEANUP_DEADLINE_S = 45.0


class SizingError(ValueError):
    """The replicas asked for cannot run on this cluster; the message says what to change."""


def parse_autoscale(value: str) -> dict:
    """'MIN:MAX' → Serve's min_replicas/max_replicas, over the defaults and $SEAEMBED_RAY_AUTOSCALING."""
    parts = value.split(":")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"--autoscale takes MIN:MAX replicas, e.g. 1:4; got {value!r}")
    low, high = int(parts[0]), int(parts[1])
    if high < 1 or low > high:
        raise ValueError(f"--autoscale {value}: need 0 <= MIN <= MAX and MAX >= 1")
    extra = {}
    if os.environ.get(AUTOSCALING_VARIABLE):
        try:
            extra = json.loads(os.environ[AUTOSCALING_VARIABLE])
        except json.JSONDecodeError as err:
            raise ValueError(f"${AUTOSCALING_VARIABLE} is not valid JSON ({err.msg}); example: '{{\"target_ongoing_requests\": 8}}'") from None
        if not isinstance(extra, dict):
            raise ValueError(f"${AUTOSCALING_VARIABLE} must be a JSON object of Serve autoscaling_config fields")
    return {**AUTOSCALING_DEFAULTS, **extra, "min_replicas": low, "max_replicas": high}


def _connect(address: str | None) -> None:
    import ray

    from ...cpus import available_cpus

    # Before ray.init: the proxy of a cluster started here inherits it and replays a request
    # whose replica died (retry.py). A cluster started elsewhere needs it in its own environment.
    os.environ.setdefault(PROXY_CALLBACK_VARIABLE, PROXY_CALLBACK)
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        log.warning("ray", extra={"fields": {"event": "joined_cluster", "address": address, "note": f"a request on a replica that dies is replayed only where the cluster's nodes run with {PROXY_CALLBACK_VARIABLE}={PROXY_CALLBACK}"}})
    else:
        ray.init(num_cpus=available_cpus(), include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)


def _sizing(backend: str, threads: int | None, replicas: int | None, autoscaling: dict | None, local: bool) -> tuple[int, int]:
    """(replicas, CPU threads per replica) from the cluster's resources where not given."""
    import ray

    resources = ray.cluster_resources()
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if backend in GPU_BACKENDS:
        gpus = int(resources.get("GPU", 0))
        if gpus == 0 and replicas is None and autoscaling is None:
            raise SizingError(f"--backend {backend} puts one replica on each GPU, and the Ray cluster has none; give --replicas N to wait for GPUs (an autoscaling cluster adds them), or use a CPU backend")
        wanted = replicas or (autoscaling or {}).get("max_replicas") or gpus
        if local and wanted > gpus:
            raise SizingError(f"{wanted} replicas of one GPU each and this machine has {gpus} GPU(s); lower --replicas/--autoscale MAX (several machines: --ray-address)")
        return replicas or max(1, gpus), threads or 1
    count = replicas or (autoscaling or {}).get("max_replicas") or max(1, len(nodes))
    largest_node = max((int(n.get("Resources", {}).get("CPU", 0)) for n in nodes), default=1)
    threads = threads or max(1, min(largest_node, int(resources.get("CPU", 1)) // count))
    if local and count * threads > resources.get("CPU", 0):
        raise SizingError(
            f"{count} replicas x {threads} CPU threads need {count * threads} CPUs and this machine's Ray cluster has "
            f"{int(resources.get('CPU', 0))}; lower --replicas/--autoscale MAX or --threads (a cluster of several machines: --ray-address)"
        )
    return replicas or max(1, len(nodes)), threads


def _remove(started_here: bool) -> None:
    import ray
    from ray import serve

    if started_here:
        serve.shutdown()  # every app, replicas drained
        ray.shutdown()
    else:
        serve.delete(APP_NAME)


def serve_ray(
    bundle_dir,
    settings: ServerSettings,
    engine: dict,
    address: str | None = None,
    replicas: int | None = None,
    autoscale: str | None = None,
    log_level: str = "info",
) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code."""
    try:
        import ray
        from ray import serve
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("--ray needs Ray Serve: pip install 'seaembed[ray]'", name=err.name) from None
    from ...manifest import load_manifest

    bundle_dir = str(Path(bundle_dir).resolve())  # the same path on every node
    load_manifest(bundle_dir)  # a bad bundle fails here, once, not in every replica
    autoscaling = parse_autoscale(autoscale) if autoscale else None
    backend = engine.get("backend") or "cpu"
    _connect(address)
    from .. import configure_logging

    configure_logging(log_level)  # ray.init replaced the root handlers
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):  # replaces Ray's handlers: stop cleanly, not mid-call
        signal.signal(signum, lambda *_: stop.set())
    count, threads = _sizing(backend, engine.get("threads"), replicas, autoscaling, local=address is None)
    serve.start(http_options={"host": settings.host, "port": settings.port})
    application = build_app(bundle_dir, settings, {**engine, "threads": threads}, replicas=count, autoscaling=autoscaling)
    serve.run(application, name=APP_NAME, route_prefix="/", blocking=False)
    log.info("ready", extra={"fields": {
        "event": "ray_serve_ready", "url": f"http://{settings.host}:{settings.port}", "backend": backend,
        "replicas": None if autoscaling else count, "autoscaling": autoscaling, "threads_per_replica": threads,
        "cluster": {k: v for k, v in ray.cluster_resources().items() if k in ("CPU", "GPU")},
    }})
    while not stop.wait(1.0):
        pass
    # Replicas drain their batchers before they exit. Ctrl-C in a terminal also reaches a local
    # cluster's own processes (same process group), so the cleanup gets a deadline, not a hang.
    cleanup = threading.Thread(target=_remove, args=(address is None,), daemon=True)
    cleanup.start()
    cleanup.join(CLEANUP_DEADLINE_S)
    if cleanup.is_alive():
        log.warning("stopped", extra={"fields": {"event": "cleanup_timed_out", "after_s": CLEANUP_DEADLINE_S}})
    log.info("stopped", extra={"fields": {"event": "stopped"}})
    return 0

