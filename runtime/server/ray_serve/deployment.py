"""The Serve application: EmbeddingReplica behind Serve's proxy, sized for the hardware.

Resources per replica: a GPU backend (cuda, tensorrt) takes one GPU (num_gpus=1) and one CPU
for tokenization and HTTP; a CPU backend takes `threads` CPUs, the same number its engine
runs, so Ray never packs more replicas on a node than it has cores for.

Autoscaling (Serve's request-based policy): Serve adds replicas while the ongoing requests
(queued and running) per replica exceed target_ongoing_requests over look_back_period_s, and
removes them when they stay below it for downscale_delay_s. A replica batches concurrent
requests into one engine call, so it wants several at once: AUTOSCALING_DEFAULTS' target is
16 requests per replica, and each replica accepts up to MAX_ONGOING_REQUESTS before the proxy
queues the rest.
"""

from __future__ import annotations

from dataclasses import asdict

from ..settings import ServerSettings

APP_NAME = "seaembed"
GPU_BACKENDS = ("cuda", "tensorrt")
MAX_ONGOING_REQUESTS = 256
AUTOSCALING_DEFAULTS = {
    "target_ongoing_requests": 16,
    "upscale_delay_s": 10.0,
    "downscale_delay_s": 120.0,
    "look_back_period_s": 10.0,
}


def replica_resources(backend: str, threads: int) -> dict:
    if backend in GPU_BACKENDS:
        return {"num_gpus": 1, "num_cpus": 1}
    return {"num_cpus": threads}


def build_app(
    bundle_dir: str,
    settings: ServerSettings,
    engine: dict,
    replicas: int = 1,
    autoscaling: dict | None = None,
    metrics: bool = True,
):
    """A Serve Application for serve.run: `replicas` fixed replicas, or autoscaling between
    autoscaling["min_replicas"] and ["max_replicas"] (other keys override AUTOSCALING_DEFAULTS).
    engine: Embedder.load's backend/threads/precision/artifact; threads is the CPU share."""
    from ray import serve

    from .metrics_board import MetricsBoard
    from .replica import EmbeddingReplica

    backend = engine.get("backend") or "cpu"
    threads = int(engine.get("threads") or 1)
    engine = {**engine, "threads": threads}
    options: dict = {
        "name": "EmbeddingReplica",
        "ray_actor_options": replica_resources(backend, threads),
        "max_ongoing_requests": MAX_ONGOING_REQUESTS,
    }
    if autoscaling:
        options["autoscaling_config"] = {**AUTOSCALING_DEFAULTS, **autoscaling}
    else:
        options["num_replicas"] = replicas
    try:
        ingress = serve.ingress()(EmbeddingReplica)  # the app comes from __serve_build_asgi_app__
    except TypeError:
        import ray

        raise RuntimeError(f"seaembed serve --ray needs Ray Serve >= 2.60 (replicas that build their ASGI app after loading the model); this is Ray {ray.__version__}: pip install 'seaembed[ray]'") from None
    replica = serve.deployment(**options)(ingress)
    board = None
    if metrics:
        board = serve.deployment(name="MetricsBoard", num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000)(MetricsBoard).bind()
    return replica.bind(str(bundle_dir), asdict(settings), engine, board)


def app_builder(args: dict):
    """For a Serve config file (`import_path: seaembed.runtime.server.ray_serve:app_builder`), args:
    bundle (required), backend, threads, precision, artifact, replicas, autoscaling ({min_replicas,
    max_replicas, ...}) and any ServerSettings field (max_batch_size, auto_truncate, ...)."""
    args = dict(args)
    if "bundle" not in args:
        raise ValueError("seaembed's Serve app needs args.bundle: the bundle directory, at the same path on every node")
    bundle = args.pop("bundle")
    engine = {key: args.pop(key, None) for key in ("backend", "threads", "precision", "artifact")}
    engine["backend"] = engine["backend"] or "cpu"
    replicas = int(args.pop("replicas", 1))
    autoscaling = args.pop("autoscaling", None)
    unknown = set(args) - set(ServerSettings.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown seaembed Serve args {sorted(unknown)}; allowed: bundle, backend, threads, precision, artifact, replicas, autoscaling, {', '.join(ServerSettings.__dataclass_fields__)}")
    settings = ServerSettings(**args)
    settings.validate()
    return build_app(bundle, settings, engine, replicas=replicas, autoscaling=autoscaling)
