"""`seaembed serve --ray`: the single-host app as Ray Serve replicas on a real local Ray cluster.

One cluster (2 CPUs) and one Serve proxy for the module; the 2-replica application is compared,
route by route and error by error, with `seaembed serve` itself running the same bundle and flags.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import httpx
import numpy as np
import pytest
from server_process import ServerProcess, free_port

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'seaembed[ray]')")
pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install 'seaembed[ray]')")
pytest.importorskip("uvicorn", reason="the server needs seaembed[serve]")

from ray import serve  # noqa: E402

from seaembed.runtime.server import ServerSettings  # noqa: E402
from seaembed.runtime.server.ray_serve import build_app  # noqa: E402
from seaembed.runtime.server.ray_serve.launch import PROXY_CALLBACK, PROXY_CALLBACK_VARIABLE  # noqa: E402

FLAGS = {"max_client_batch_size": 64, "max_body_bytes": 200_000}
CLI_FLAGS = ("--max-client-batch-size", "64", "--max-body-bytes", "200000")


def replica_names(app: str) -> list[str]:
    prefix = f"SERVE_REPLICA::{app}#EmbeddingReplica#"
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith(prefix))


def running_replicas(app: str) -> int:
    status = serve.status().applications.get(app)
    return status.deployments["EmbeddingReplica"].replica_states.get("RUNNING", 0) if status else 0


def replaced(victim: str) -> bool:
    """Two replicas run again and neither is the killed one (its name goes at once; Serve counts
    it as running until its controller notices, and the replacement's name appears after that)."""
    names = replica_names("seaembed")
    return len(names) == 2 and victim not in names and running_replicas("seaembed") == 2


def wait_for(condition, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.25)
    return time.monotonic() - started


def test_cli_serves_through_ray_and_stops_on_sigterm(tiny_bundle, tiny_embedder):
    """The user's path: `seaembed serve BUNDLE --ray` starts its own local cluster and proxy."""
    proc = ServerProcess(tiny_bundle, "--ray", "--replicas", "1", "--threads", "1", startup_s=180)
    try:
        response = httpx.post(proc.url + "/embed", json={"inputs": ["Selamat pagi", "xin chào"]}, timeout=30)
        assert response.status_code == 200 and "x-request-id" in response.headers  # Serve's proxy answered
        assert np.abs(np.array(response.json()) - tiny_embedder.encode(["Selamat pagi", "xin chào"])).max() <= 1e-6
        wait_for(lambda: '"ray_serve_ready"' in proc.logs(), 60, "the ready line (serve.run returns once every replica runs)")
        ready = [json.loads(line) for line in proc.logs().splitlines() if '"ray_serve_ready"' in line]
        assert ready and ready[0]["replicas"] == 1 and ready[0]["threads_per_replica"] == 1
        proc.process.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        assert proc.process.wait(90) == 0
        print(f"serve --ray stopped {time.monotonic() - stopping:.1f} s after SIGTERM")
        assert '"event": "stopped"' in proc.logs()
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def cluster():
    # Set before ray.init: the proxy this cluster starts inherits it and replays lost requests.
    previous = os.environ.get(PROXY_CALLBACK_VARIABLE)
    os.environ[PROXY_CALLBACK_VARIABLE] = PROXY_CALLBACK
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()
    ray.shutdown()
    if previous is None:
        os.environ.pop(PROXY_CALLBACK_VARIABLE, None)
    else:
        os.environ[PROXY_CALLBACK_VARIABLE] = previous


@pytest.fixture(scope="module")
def two_replicas(cluster, tiny_bundle):
    app = build_app(str(tiny_bundle), ServerSettings(**FLAGS), {"backend": "cpu", "threads": 1}, replicas=2)
    serve.run(app, name="seaembed", route_prefix="/")
    yield cluster
    serve.delete("seaembed")


@pytest.fixture(scope="module")
def single_host(tiny_bundle):
    proc = ServerProcess(tiny_bundle, *CLI_FLAGS)
    yield proc.url
    proc.stop()


def test_every_route_equals_the_embedder_and_the_single_host_server(two_replicas, single_host, tiny_embedder, corpus):
    url = two_replicas
    texts = [t for t in corpus if t][:12]
    openai = httpx.post(url + "/v1/embeddings", json={"input": texts, "input_type": "query"}, timeout=30).json()
    got = np.array([d["embedding"] for d in openai["data"]], dtype=np.float32)
    assert np.abs(got - tiny_embedder.encode(texts, prompt_name="query")).max() <= 1e-6
    for path in ("/embed", "/", "/invocations"):
        response = httpx.post(url + path, json={"inputs": texts, "normalize": False, "prompt_name": "passage"}, timeout=30)
        assert response.status_code == 200, (path, response.text)
        assert np.abs(np.array(response.json()) - tiny_embedder.encode(texts, prompt_name="passage", normalize=False)).max() <= 1e-6, path
    plain = httpx.post(url + "/embeddings", json={"input": texts}, timeout=30).json()
    assert np.abs(np.array([d["embedding"] for d in plain["data"]]) - tiny_embedder.encode(texts)).max() <= 1e-6
    # byte for byte what `seaembed serve` answers
    for method, path, body in (("POST", "/tokenize", {"inputs": texts[:3]}), ("POST", "/v1/embeddings", {"input": texts, "encoding_format": "base64"}),
                               ("GET", "/info", None), ("GET", "/health", None), ("GET", "/ping", None), ("GET", "/ready", None), ("GET", "/", None)):
        ours = httpx.request(method, url + path, json=body, timeout=30)
        theirs = httpx.request(method, single_host + path, json=body, timeout=30)
        assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content), path


def test_metrics_hold_every_replica(two_replicas):
    url = two_replicas
    for i in range(20):
        assert httpx.post(url + "/embed", json={"inputs": f"metrics {i}"}, timeout=30).status_code == 200
    replicas = {name.rsplit("#", 1)[1] for name in replica_names("seaembed")}
    assert len(replicas) == 2

    def served(text: str) -> float:
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("seaembed_requests_total{") and 'endpoint="/embed"' in line and 'status="200"' in line)

    def both_reported() -> bool:  # the other replica's numbers are at most one push interval old
        text = httpx.get(url + "/metrics", timeout=30).text
        counted = {line.split('replica="')[1].split('"')[0] for line in text.splitlines()
                   if line.startswith('seaembed_requests_total{') and 'endpoint="/embed"' in line}
        return "seaembed_replicas 2" in text and counted == replicas and served(text) >= 20

    wait_for(both_reported, 15, "both replicas' request counts at /metrics")
    text = httpx.get(url + "/metrics", timeout=30).text
    assert text.count("# TYPE seaembed_batch_size histogram") == 1  # one family header, samples from both


ERROR_CASES = [
    ("POST", "/embed", {"inputs": []}),
    ("POST", "/embed", {"inputs": ["fine", ""]}),
    ("POST", "/embed", {"inputs": ["x"] * 65}),
    ("POST", "/embed", {"inputs": 5}),
    ("POST", "/embed", {"inputs": "x", "normalize": "yes"}),
    ("POST", "/embed", {"inputs": "x", "prompt_name": "summary"}),
    ("POST", "/embed", {"inputs": "x", "truncation_direction": "Middle"}),
    ("POST", "/embed", {"inputs": ["ok", "word " * 700]}),
    ("POST", "/v1/embeddings", {"input": [[1, 2, 3]]}),
    ("POST", "/v1/embeddings", {"input": "x", "dimensions": 33}),
    ("POST", "/v1/embeddings", {"input": "x", "encoding_format": "int8"}),
    ("POST", "/v1/embeddings", {"input": "x", "input_type": "code"}),
    ("POST", "/v1/embeddings", {"input": ["ok", "word " * 700]}),
    ("POST", "/v1/embeddings", {}),
    ("POST", "/embed", b'{"inputs": "caf\xe9"}'),
    ("POST", "/embed", b"{inputs: x"),
    ("POST", "/embed", b'{"inputs": ["ok", "bad \\ud800 text"]}'),
    ("POST", "/embed", {"inputs": "x" * 300_000}),
    ("POST", "/embed_sparse", {"inputs": "x"}),
    ("DELETE", "/embed", None),
    ("GET", "/v1/embeddings", None),
]


def test_error_matrix_matches_the_single_host_server(two_replicas, single_host):
    for method, path, body in ERROR_CASES:
        kwargs = {"content": body, "headers": {"content-type": "application/json"}} if isinstance(body, bytes) else {"json": body}
        ours = httpx.request(method, two_replicas + path, timeout=30, **kwargs)
        theirs = httpx.request(method, single_host + path, timeout=30, **kwargs)
        assert theirs.status_code >= 400, (path, body)
        assert ours.status_code == theirs.status_code, (method, path, ours.text)
        assert ours.json() == theirs.json(), (method, path)


async def _load(url: str, pool: list[str], seconds: float, clients: int, seed: int, stop: asyncio.Event | None = None):
    """clients posting 1-6 inputs from pool for seconds (or until stop); (indices, status, headers, body) per request."""
    rng = np.random.default_rng(seed)
    results = []

    async def client(k: int, http: httpx.AsyncClient):
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (stop and stop.is_set()):
            indices = [int(i) for i in rng.integers(0, len(pool), int(rng.integers(1, 7)))]
            response = await http.post(url + "/embed", json={"inputs": [pool[i] for i in indices]})
            results.append((indices, response.status_code, response.headers, response.content))

    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=clients)) as http:
        await asyncio.gather(*(client(k, http) for k in range(clients)))
    return results


def test_killing_a_replica_mid_load_loses_no_request(two_replicas, tiny_embedder, corpus):
    url = two_replicas
    pool = [f"{corpus[i % len(corpus)]} #{i}" for i in range(96)]
    expected = tiny_embedder.encode(pool)
    victim = replica_names("seaembed")[0]

    rejoined: dict[str, float] = {}

    async def run():
        load = asyncio.create_task(_load(url, pool, 10.0, 16, seed=5))
        await asyncio.sleep(3.0)
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
        rejoined["killed"] = time.monotonic()
        return await load

    results = asyncio.run(run())
    failures = [(status, headers) for _i, status, headers, _b in results if status != 200]
    assert len(results) > 100
    assert len(failures) <= 0.01 * len(results), failures[:3]
    assert all(status == 503 and "retry-after" in headers for status, headers in failures)
    for indices, status, _headers, body in results:
        if status == 200:
            assert np.abs(np.array(json.loads(body)) - expected[indices]).max() <= 1e-6
    # Serve starts a replacement, which joins the deployment and the metrics
    wait_for(lambda: replaced(victim), 90, "the replacement replica")
    print(f"replica killed under load: {len(results)} requests, {len(failures)} failed; "
          f"replacement running {time.monotonic() - rejoined['killed']:.1f} s after the kill (7 s of load after it)")
    assert httpx.post(url + "/embed", json={"inputs": "after"}, timeout=30).status_code == 200
    current = {name.rsplit("#", 1)[1] for name in replica_names("seaembed")}

    def metrics_follow() -> bool:
        text = httpx.get(url + "/metrics", timeout=30).text
        labels = {line.split('replica="')[1].split('"')[0] for line in text.splitlines() if line.startswith("seaembed_batch_size_count{")}
        return labels == current

    wait_for(metrics_follow, 20, "/metrics to hold exactly the live replicas")


@pytest.mark.filterwarnings("ignore:The `metrics_interval_s` field:DeprecationWarning")
def test_autoscaling_goes_up_under_load_and_back_down(cluster, tiny_bundle, tiny_embedder):
    """Short windows so it shows in seconds; the defaults (deployment.AUTOSCALING_DEFAULTS) are slower on purpose."""
    if serve.status().applications.get("seaembed"):
        serve.delete("seaembed")  # the fixed 2-replica app holds both CPUs
    autoscaling = {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 2, "metrics_interval_s": 0.5,
                   "look_back_period_s": 2.0, "upscale_delay_s": 0.5, "downscale_delay_s": 3.0}
    app = build_app(str(tiny_bundle), ServerSettings(max_wait_ms=20), {"backend": "cpu", "threads": 1}, autoscaling=autoscaling)
    serve.run(app, name="autoscaled", route_prefix="/")
    try:
        assert running_replicas("autoscaled") == 1
        pool = [f"scale {i} " * 20 for i in range(64)]
        expected = tiny_embedder.encode(pool)
        seen = {"max": 1}

        async def run():
            stop = asyncio.Event()
            load = asyncio.create_task(_load(cluster, pool, 40.0, 24, seed=7, stop=stop))
            while not load.done():
                seen["max"] = max(seen["max"], running_replicas("autoscaled"))
                if seen["max"] == 2 and "up_at" not in seen:
                    seen["up_at"] = time.monotonic()
                    asyncio.get_running_loop().call_later(2.0, stop.set)  # both replicas serve a while, then quiet
                await asyncio.sleep(0.5)
            return await load

        started = time.monotonic()
        results = asyncio.run(run())
        assert seen["max"] == 2, "no second replica under 24 concurrent clients"
        assert all(status == 200 for _i, status, _h, _b in results)
        for indices, _status, _headers, body in results[::7]:
            assert np.abs(np.array(json.loads(body)) - expected[indices]).max() <= 1e-6
        down_s = wait_for(lambda: running_replicas("autoscaled") == 1 and len(replica_names("autoscaled")) == 1, 60, "scaling back to 1 replica")
        print(f"autoscaling: 2 replicas {seen['up_at'] - started:.1f} s into the load, back to 1 replica {down_s:.1f} s after it")
    finally:
        serve.delete("autoscaled")
