"""Operating the live server: API keys on every route, configuration from the environment, stalled and
abandoned connections, and SIGTERM drains (one process and --workers 2) under a small load."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest
from server_process import ServerProcess

from seaembed.runtime.cli.commands import build_parser
from seaembed.runtime.cli.serve_command import SERVE_FLAGS, apply_environment
from seaembed.runtime.cli.support import CliError

pytest.importorskip("uvicorn", reason="the server needs seaembed[serve]")

KEYS = ("env-key-1", "env-key-2")
FILE_KEY = "file-key-3"
# route → (method, body, error shape) for every route the server has
ROUTES = {
    "/v1/embeddings": ("POST", {"input": "hi"}, "openai"),
    "/embeddings": ("POST", {"input": "hi"}, "openai"),
    "/embed": ("POST", {"inputs": "hi"}, "tei"),
    "/": ("POST", {"inputs": "hi"}, "tei"),
    "/invocations": ("POST", {"inputs": "hi"}, "tei"),
    "/tokenize": ("POST", {"inputs": "hi"}, "tei"),
    "/info": ("GET", None, "tei"),
    "/metrics": ("GET", None, "tei"),
    "/health": ("GET", None, "tei"),
    "/ready": ("GET", None, "tei"),
    "/ping": ("GET", None, "tei"),
}
OPEN = {"/health", "/ready", "/ping"}


@pytest.fixture(scope="module")
def keyed_server(tiny_bundle, tmp_path_factory):
    key_file = tmp_path_factory.mktemp("keys") / "keys.txt"
    key_file.write_text(f"# one key per line\n{FILE_KEY}\n")
    env = {"SEAEMBED_API_KEY": ",".join(KEYS), "SEAEMBED_API_KEY_FILE": str(key_file), "SEAEMBED_MAX_CLIENT_BATCH_SIZE": "3"}
    proc = ServerProcess(tiny_bundle, env=env)
    yield proc
    proc.stop()


def _call(client, path, key):
    method, body, _shape = ROUTES[path]
    headers = {} if key is None else {"authorization": f"Bearer {key}"}
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize("key", [None, "wrong-key", KEYS[0], KEYS[1], FILE_KEY])
def test_api_key_matrix(keyed_server, key):
    right = key in (*KEYS, FILE_KEY)
    with httpx.Client(base_url=keyed_server.url, timeout=30) as client:
        for path, (_method, _body, shape) in ROUTES.items():
            response = _call(client, path, key)
            if path in OPEN or path == "/metrics" or right:  # /metrics is open unless --metrics-auth
                assert response.status_code == 200, (path, key, response.text)
                continue
            assert response.status_code == 401, (path, key, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            body = response.json()
            if shape == "openai":
                assert body["error"]["code"] == "invalid_api_key" and body["error"]["type"] == "invalid_request_error"
            else:
                assert body["error_type"] == "Unauthorized" and "Authorization: Bearer" in body["error"]
        assert client.get("/", headers={}).status_code == 200  # GET / is health, open like /health
        bad_scheme = client.post("/embed", json={"inputs": "hi"}, headers={"authorization": f"Basic {KEYS[0]}"})
        assert bad_scheme.status_code == 401
    logs = keyed_server.logs()
    assert not any(k in logs for k in (*KEYS, FILE_KEY))  # keys are never logged


def test_environment_configures_the_live_server(keyed_server):
    # SEAEMBED_MAX_CLIENT_BATCH_SIZE=3 from the environment
    response = httpx.post(keyed_server.url + "/embed", json={"inputs": ["a", "b", "c", "d"]}, headers={"authorization": f"Bearer {KEYS[0]}"}, timeout=30)
    assert response.status_code == 413 and "maximum allowed batch size 3" in response.text


def test_metrics_auth_guards_metrics(tiny_bundle):
    proc = ServerProcess(tiny_bundle, "--api-key", "k-metrics", "--metrics-auth")
    try:
        assert httpx.get(proc.url + "/metrics", timeout=30).status_code == 401
        assert httpx.get(proc.url + "/metrics", headers={"authorization": "Bearer k-metrics"}, timeout=30).status_code == 200
        assert httpx.get(proc.url + "/health", timeout=30).status_code == 200
    finally:
        proc.stop()


def _env_value(flag):
    """A valid value for the flag that differs from its default, as text and as parsed."""
    samples = {
        "--host": ("0.0.0.0", "0.0.0.0"), "--port": ("9999", 9999), "--served-model-name": ("m", "m"),
        "--log-level": ("WARNING", "warning"), "--api-key-file": ("/keys", "/keys"),
    }
    if flag.name in samples:
        return samples[flag.name]
    if isinstance(flag.default, bool):
        return ("false" if flag.default else "true"), not flag.default
    if isinstance(flag.default, float):
        return "7.5", 7.5
    return "7", 7


def test_every_serve_flag_reads_its_environment_variable(tiny_bundle):
    parser = build_parser()
    for flag in SERVE_FLAGS:
        text, expected = _env_value(flag)
        args = parser.parse_args(["serve", str(tiny_bundle)])
        apply_environment(args, {flag.env: text})
        assert getattr(args, flag.dest) == expected, flag.name
        # a flag given on the command line wins over the variable
        given = parser.parse_args(["serve", str(tiny_bundle), flag.name, text])
        apply_environment(given, {flag.env: "nonsense"})
        assert getattr(given, flag.dest) == expected, flag.name
    args = parser.parse_args(["serve"])
    apply_environment(args, {"SEAEMBED_BUNDLE": str(tiny_bundle), "SEAEMBED_API_KEY": "a,b"})
    assert args.bundle == str(tiny_bundle) and args.api_key == ["a,b"]


@pytest.mark.parametrize("env,needle", [({"SEAEMBED_PORT": "http"}, "SEAEMBED_PORT='http'"), ({"SEAEMBED_BATCHING": "maybe"}, "SEAEMBED_BATCHING"), ({"SEAEMBED_DRAIN_S": "-1"}, "SEAEMBED_DRAIN_S")])
def test_a_bad_environment_value_is_a_usage_error_naming_it(tiny_bundle, env, needle):
    args = build_parser().parse_args(["serve", str(tiny_bundle)])
    with pytest.raises(CliError) as caught:
        apply_environment(args, env)
    assert caught.value.code == 2 and needle in str(caught.value)


def test_readme_lists_every_serve_variable():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme[readme.index("### Serve flags") :]
    table = table[: table.index("\n## ")]
    for flag in SERVE_FLAGS:
        assert f"`{flag.name}`" in table and f"`{flag.env}`" in table, flag.name
    for extra in ("`--api-key`", "`SEAEMBED_API_KEY`", "`SEAEMBED_BUNDLE`", "`SEAEMBED_BACKEND`", "`SEAEMBED_THREADS`"):
        assert extra in table, extra


def _closed_by_server(sock: socket.socket, deadline: float) -> bool:
    """True once the server has closed the connection (EOF or reset), reading whatever it sent first."""
    sock.settimeout(max(0.05, deadline - time.monotonic()))
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_stalled_connections_are_closed_and_capped(tiny_bundle):
    proc = ServerProcess(tiny_bundle, "--header-timeout-s", "1", "--body-timeout-s", "1", "--keep-alive-s", "1", "--max-connections", "40")
    try:
        stalled = []
        for i in range(30):
            sock = socket.create_connection(("127.0.0.1", proc.port))
            if i % 3 == 0:
                sock.sendall(b"POST /embed HTTP/1.1\r\nhost: x\r\n")  # half a head
            elif i % 3 == 1:
                sock.sendall(b'POST /embed HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"inputs": ')  # half a body
            stalled.append(sock)  # the rest: connected, silent
        # while they stall, the server serves others
        assert httpx.post(proc.url + "/embed", json={"inputs": "still serving"}, timeout=30).status_code == 200
        # beyond --max-connections: 503 at once, with Retry-After
        extra = [socket.create_connection(("127.0.0.1", proc.port)) for _ in range(15)]
        busy = [s.recv(4096) for s in extra[-3:]]
        assert all(b.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in b for b in busy), busy
        started = time.monotonic()
        assert all(_closed_by_server(s, started + 5) for s in stalled + extra)
        closed_after = time.monotonic() - started
        assert closed_after < 3.5, closed_after  # 1 s deadlines, checked from a loaded test machine
        half_body = socket.create_connection(("127.0.0.1", proc.port))
        half_body.sendall(b'POST /embed HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{"inputs": ')
        half_body.settimeout(5)
        reply = b""
        while chunk := half_body.recv(65536):  # the server closes after a 408
            reply += chunk
        assert reply.startswith(b"HTTP/1.1 408") and b"--body-timeout-s" in reply
        # keep-alive: an idle connection after a response is closed after --keep-alive-s
        idle = socket.create_connection(("127.0.0.1", proc.port))
        idle.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        assert _closed_by_server(idle, time.monotonic() + 4)
        for sock in [*stalled, *extra, half_body, idle]:
            sock.close()
        assert httpx.get(proc.url + "/health", timeout=30).status_code == 200
    finally:
        proc.stop()
    assert "Traceback" not in proc.logs()


def _metric(text: str, name: str) -> float:
    pattern = re.compile(rf"^{re.escape(name)} (\S+)$", re.M)
    return sum(float(m) for m in pattern.findall(text))


def test_abandoned_requests_are_not_computed(tiny_bundle):
    # a long batching window: requests wait for company, and their clients leave meanwhile
    proc = ServerProcess(tiny_bundle, "--max-wait-ms", "1500", "--max-batch-size", "64")
    try:
        before = _metric(httpx.get(proc.url + "/metrics", timeout=30).text, "seaembed_batch_size_sum")
        leaving = []
        for i in range(10):
            body = json.dumps({"inputs": [f"abandoned {i}", f"abandoned {i} again"]}).encode()
            sock = socket.create_connection(("127.0.0.1", proc.port))
            sock.sendall(b"POST /embed HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            leaving.append(sock)
        time.sleep(0.3)
        for sock in leaving:
            sock.close()
        kept = httpx.post(proc.url + "/embed", json={"inputs": ["kept"]}, timeout=30)
        assert kept.status_code == 200
        metrics = httpx.get(proc.url + "/metrics", timeout=30).text
        computed = _metric(metrics, "seaembed_batch_size_sum") - before
        assert computed == 1, metrics  # the kept input only: 20 abandoned inputs cost no engine time
        assert 'seaembed_requests_total{endpoint="/embed",status="499"} 10' in metrics
    finally:
        proc.stop()


async def _load_through_sigterm(proc: ServerProcess, clients: int, signal_after: int) -> dict:
    """Clients send requests back to back; SIGTERM once signal_after have been answered; /ready polled throughout."""
    sent_before, failed_before, ready_codes = [], [], []
    signalled_at: list[float] = []
    stop = asyncio.Event()

    async def client(index: int):
        async with httpx.AsyncClient(timeout=30) as http:
            i = 0
            while not stop.is_set():
                started = time.monotonic()
                before = not signalled_at
                try:
                    response = await http.post(proc.url + "/embed", json={"inputs": [f"load {index} {i}", "second text"]})
                    ok = response.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if before:
                    sent_before.append(started)
                    if not ok:
                        failed_before.append((index, i))
                if signalled_at and not ok:
                    return  # the port closed after the drain: this client is done
                i += 1

    async def poll_ready():
        async with httpx.AsyncClient(timeout=5) as http:
            while not stop.is_set():
                try:
                    code = (await http.get(proc.url + "/ready")).status_code
                except httpx.HTTPError:
                    code = None
                ready_codes.append((bool(signalled_at), code))
                await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(client(i)) for i in range(clients)] + [asyncio.create_task(poll_ready())]
    deadline = time.monotonic() + 60
    while len(sent_before) < signal_after and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    signalled_at.append(time.monotonic())
    proc.process.send_signal(signal.SIGTERM)
    await asyncio.get_running_loop().run_in_executor(None, proc.process.wait, 60)
    stop.set()
    await asyncio.gather(*tasks)
    return {"sent_before": len(sent_before), "failed_before": failed_before, "ready": ready_codes}


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_drains_under_load(tiny_bundle, workers):
    proc = ServerProcess(tiny_bundle, "--workers", str(workers), "--drain-s", "1.5", env={"SEAEMBED_DRAIN_S": None})
    result = asyncio.run(_load_through_sigterm(proc, clients=8, signal_after=40))
    code = proc.stop()
    assert code == 0, proc.logs()
    assert result["sent_before"] >= 40 and result["failed_before"] == [], result
    after = [c for signalled, c in result["ready"] if signalled]
    assert 503 in after and 200 not in after[after.index(503):], after  # not ready from the drain on
    assert any(c == 200 for signalled, c in result["ready"] if not signalled)
    logs = proc.logs()
    assert '"event": "draining"' in logs and "Traceback" not in logs


def test_a_busy_port_is_a_usage_error_before_the_model_loads(tiny_bundle):
    import subprocess
    import sys

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        for extra in ([], ["--workers", "2"]):
            result = subprocess.run(
                [sys.executable, "-m", "seaembed.runtime.cli", "serve", str(tiny_bundle), "--port", str(port), *extra],
                capture_output=True, text=True, timeout=60,
            )
            assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
            assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "warm" not in result.stderr
