"""`seaembed serve --ray`: the single-host server's app as Ray Serve replicas (needs seaembed[ray]).

    replica.py        EmbeddingReplica: an Embedder and create_app()'s ASGI app, per replica
    deployment.py     the Serve application: resources per replica, autoscaling defaults
    metrics_board.py  every replica's registry at /metrics
    retry.py          in Serve's proxy: a request that lost its replica is replayed once, else 503
    launch.py         `seaembed serve --ray`: connect or start Ray, start Serve, run until a signal
                      (its flags: runtime/cli/serve_ray.py)

From a Serve config file: `import_path: seaembed.runtime.server.ray_serve:app_builder`.
"""

from __future__ import annotations

from .deployment import AUTOSCALING_DEFAULTS, app_builder, build_app

__all__ = ["AUTOSCALING_DEFAULTS", "app_builder", "build_app"]
