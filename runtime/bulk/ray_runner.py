"""The same parts on a Ray cluster: a Ray Data pipeline over the plan's parts with an actor pool of Embedders.

`ray.data.from_items(parts)` → `map_batches(PartActor, compute=ActorPoolStrategy(size=N), num_gpus=1 | num_cpus=T)`:
each actor loads the Embedder once, then for each part it reads the part's rows with the shared
readers (bad rows keep `FILE:LINE`), embeds them and writes the part file atomically, returning
the part's statistics to the driver. Reading and writing a whole part inside the actor, rather
than through `read_json`/`write_parquet`, is what keeps a part's rows, its bad-row report and
its output file together, so a part is either entirely done or not at all and reruns resume.
The bundle, the inputs and OUTPUT must be reachable at the same paths on every node (a shared
filesystem), as for any Ray job that reads files.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import asdict

from .errors import WorkerDiedError
from .plan import JobSettings, Part


class PartActor:
    def __init__(self, settings: dict, threads: int, output_dir: str):
        import ray

        from .worker import PartRunner

        context = ray.get_runtime_context()
        self.runner = PartRunner(JobSettings(**settings), threads, worker_name=f"ray-actor-{context.get_actor_id()[:8]}@{context.get_node_id()[:8]}")
        self.output_dir = output_dir

    def __call__(self, batch: dict) -> dict:
        stats = [json.dumps(self.runner.run(Part(**json.loads(item)), self.output_dir)) for item in batch["part"]]
        return {"stats": stats}


def _connect(address: str | None, threads: int) -> None:
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    else:
        from ..cpus import available_cpus

        ray.init(num_cpus=available_cpus(), log_to_driver=False, include_dashboard=False, logging_level=logging.WARNING)
    logging.getLogger("ray.data").setLevel(logging.WARNING)


def run_ray(
    parts: list[Part],
    settings: JobSettings,
    output_dir: str,
    workers: int | None,
    threads: int,
    address: str | None = None,
    gpus_per_worker: float = 0,
) -> Iterator[dict]:
    """Stats of each finished part, as parts finish."""
    if not parts:
        return
    try:
        import ray
        import ray.data
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError("--ray needs Ray Data: pip install 'seaembed[ray]'", name=err.name) from None
    _connect(address, threads)
    if workers is None:
        resources = ray.cluster_resources()
        workers = int(resources.get("GPU", 0)) if gpus_per_worker else int(resources.get("CPU", 1) // threads)
    workers = max(1, min(workers, len(parts)))
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver draws one bar over inputs, not Ray's per-operator bars
    items = [{"part": json.dumps(asdict(p))} for p in parts]
    resources = {"num_gpus": gpus_per_worker} if gpus_per_worker else {"num_cpus": threads}
    dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
        PartActor,
        batch_size=1,
        fn_constructor_kwargs={"settings": asdict(settings), "threads": threads, "output_dir": output_dir},
        compute=ray.data.ActorPoolStrategy(size=workers),
        **resources,
    )
    try:
        for row in dataset.iter_rows():
            yield json.loads(row["stats"])
    except Exception as err:
        raise _cause(err) from err


def _cause(err: BaseException) -> BaseException:
    """Our own error (a bad row under --strict, a bundle problem) from inside Ray's wrappers, else a WorkerDiedError."""
    seen = err
    for _ in range(10):
        if type(seen).__module__.startswith("seaembed.") and "ray" not in type(seen).__module__:
            return seen
        following = getattr(seen, "cause", None) or seen.__cause__
        if not isinstance(following, BaseException):
            break
        seen = following
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return WorkerDiedError(f"the Ray job failed: {type(err).__name__}: {first}; finished parts are kept: rerun the same command to resume")
