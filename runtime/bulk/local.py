"""N worker processes on this machine, each with its own Embedder, pulling parts from one queue.

Plain `multiprocessing` processes (spawn: no inherited ONNX Runtime threads) rather than a pool,
so the driver sees a worker die (killed, out of memory) at once and stops with a clear error
instead of waiting for a result that never comes; workers ignore Ctrl-C (the driver handles it)
and exit by themselves when the driver disappears.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import signal
from collections.abc import Callable, Iterator

from .errors import WorkerDiedError
from .plan import JobSettings, Part

POLL_S = 0.5


def _portable(err: BaseException) -> BaseException:
    """The exception itself when it survives pickling, else a RuntimeError with its message."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return RuntimeError(f"{type(err).__name__}: {err}")


def _worker_main(settings: JobSettings, threads: int, output_dir: str, tasks, results) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def report(inputs: int, tokens: int) -> None:
        if os.getppid() != parent:
            os._exit(1)  # the driver is gone: nobody is waiting for this part
        results.put(("progress", os.getpid(), (inputs, tokens)))

    try:
        from .worker import PartRunner

        runner = PartRunner(settings, threads)
    except BaseException as err:
        results.put(("failed", os.getpid(), _portable(err)))
        return
    while True:
        try:
            part = tasks.get(timeout=POLL_S)
        except queue.Empty:
            if os.getppid() != parent:
                return
            continue
        if part is None:
            return
        try:
            stats = runner.run(part, output_dir, report)
        except BaseException as err:
            results.put(("failed", os.getpid(), _portable(err)))
            return
        results.put(("done", os.getpid(), stats))


def run_local(
    parts: list[Part],
    settings: JobSettings,
    output_dir: str,
    workers: int,
    threads: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> Iterator[dict]:
    """Stats of each finished part, as parts finish."""
    if not parts:
        return
    context = mp.get_context("spawn")
    tasks, results = context.Queue(), context.Queue()
    workers = max(1, min(workers, len(parts)))
    processes = [
        context.Process(target=_worker_main, args=(settings, threads, output_dir, tasks, results), name=f"seaembed-worker-{n}", daemon=True)
        for n in range(workers)
    ]
    for process in processes:
        process.start()
    for part in parts:
        tasks.put(part)
    for _ in processes:
        tasks.put(None)
    remaining = len(parts)
    try:
        while remaining:
            try:
                kind, _pid, payload = results.get(timeout=POLL_S)
            except queue.Empty:
                _check_alive(processes, remaining)
                continue
            if kind == "progress":
                if on_progress:
                    on_progress(*payload)
            elif kind == "done":
                remaining -= 1
                yield payload
            else:
                raise payload
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(timeout=5)
        tasks.cancel_join_thread()
        results.cancel_join_thread()


def _check_alive(processes, remaining: int) -> None:
    dead = [p for p in processes if p.exitcode is not None and p.exitcode != 0]
    if dead:
        p = dead[0]
        how = f"was killed by signal {-p.exitcode}" if p.exitcode < 0 else f"exited with status {p.exitcode}"
        raise WorkerDiedError(
            f"worker process {p.pid} {how} with {remaining} parts unfinished (out of memory?); "
            "finished parts are kept: rerun the same command to resume"
        )
    if all(p.exitcode == 0 for p in processes):
        raise WorkerDiedError(f"every worker exited with {remaining} parts unfinished; rerun the same command to resume")
