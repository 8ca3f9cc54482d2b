"""Hostile-but-fair clients against the live server: every field of every route typed before use,
JSON nesting bounded, /metrics labels from a fixed set. No input may get a 500 or a traceback."""

from __future__ import annotations

import socket

import httpx
import pytest
from server_process import ServerProcess

pytest.importorskip("uvicorn", reason="the server needs seaembed[serve]")

WORK_ROUTES = {"/v1/embeddings": "input", "/embeddings": "input", "/embed": "inputs", "/": "inputs", "/invocations": "inputs", "/tokenize": "inputs"}
FIELDS = ("prompt_name", "input_type", "truncate", "normalize", "truncation_direction", "dimensions", "encoding_format", "embed_dtype", "add_special_tokens", "model")
# a value of every JSON type, including the ones that used to reach a TypeError (unhashable lists and objects)
HOSTILE = ([1], ["query"], {"a": 1}, [[["deep"]]], True, 3.5, -1, 10**30, "x" * 5000, "\u0000", None, "")


@pytest.fixture(scope="module")
def server(tiny_bundle):
    proc = ServerProcess(tiny_bundle, "--max-client-batch-size", "8")
    yield proc
    proc.stop()


def test_no_field_value_reaches_a_500(server):
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path, texts in WORK_ROUTES.items():
            for field in FIELDS:
                for value in HOSTILE:
                    response = client.post(path, json={texts: ["hello"], field: value})
                    statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
                    assert response.status_code in (200, 413, 422), (path, field, value, response.text)
                    if response.status_code == 422:
                        error = response.json()["error"]
                        message = error["message"] if isinstance(error, dict) else error
                        assert field in message, (path, field, message)
    assert statuses[422] > 100 and statuses[200] > 50  # both kinds ran
    assert "Traceback" not in server.logs() and '"level": "error"' not in server.logs()


@pytest.mark.parametrize(
    "value,needle",
    [
        ([["a", "b"]], "`inputs`[0] is a list of 2 strings; send one string per input"),
        ([True], "`inputs`[0] must be a string, got true"),
        ([None], "`inputs`[0] must be a string, got null"),
        ([{"text": "x"}], "`inputs`[0] must be a string, got an object with 1 key"),
        ([1, 2, 3], "`inputs`[0] holds token ids"),
        ([[1, 2, 3]], "`inputs`[0] holds token ids (a list of 3 numbers)"),
        (7, "`inputs` must be a string or a list of strings, got 7"),
    ],
)
def test_text_field_errors_say_what_the_value_is(server, value, needle):
    response = httpx.post(server.url + "/embed", json={"inputs": value}, timeout=30)
    assert response.status_code == 422 and needle in response.json()["error"], response.text


def test_prompt_name_as_a_list_is_a_422_on_every_route(server):
    for path in ("/embed", "/", "/tokenize"):
        response = httpx.post(server.url + path, json={"inputs": "hi", "prompt_name": [1]}, timeout=30)
        assert response.status_code == 422, (path, response.text)
        assert "`prompt_name` must be a string, got a list of 1 numbers" in response.json()["error"]


@pytest.mark.parametrize("path", list(WORK_ROUTES))
def test_deep_nesting_is_refused_without_recursion(server, path):
    for body in (b"[" * 100_000, b'{"inputs": ' + b"[" * 100_000, b'{"input": ' + b"[" * 1500 + b"]" * 1500 + b"}"):
        response = httpx.post(server.url + path, content=body, headers={"content-type": "application/json"}, timeout=30)
        assert response.status_code == 422, response.text
        assert "deeper than 1024 levels" in response.text or "must be" in response.text
    assert "RecursionError" not in server.logs()


def test_body_must_be_an_object(server):
    for body, what in ((b'["x"]', "a list of 1 strings"), (b'"x"', '"x"'), (b"null", "null")):
        response = httpx.post(server.url + "/embed", content=body, timeout=30)
        assert response.status_code == 422 and f"must be a JSON object, got {what}" in response.json()["error"]


def test_metrics_labels_come_from_a_fixed_set(server):
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.get("/embed")  # a known route, wrong method: labelled by the route
        client.get("/no-such-path")
        client.get("/metrics")
        before = client.get("/metrics").text
        for i in range(299):
            assert client.get(f"/no-such-path-{i}").status_code == 404
        after = client.get("/metrics").text
    assert "no-such-path" not in after
    assert 'seaembed_requests_total{endpoint="other",status="404"} 300' in after
    assert 'endpoint="/embed",status="405"' in after
    # 299 new paths added no line: the exposition's size depends on the routes, not on what clients ask for
    assert len(after.splitlines()) == len(before.splitlines())


def test_a_line_feed_in_the_path_cannot_write_into_metrics(server):
    # raw request: %0a decodes to a line feed in the path uvicorn hands the app
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b'GET /x%0aseaembed_injected_total%201%0a%22 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 404")
    metrics = httpx.get(server.url + "/metrics", timeout=30).text
    assert not any(line.startswith("seaembed_injected_total") for line in metrics.splitlines())
    for line in metrics.splitlines():  # every sample line is NAME{labels} VALUE
        assert line.startswith("#") or line.startswith("seaembed_"), line


def test_info_shows_model_facts_not_the_export_machine(server, tiny_bundle):
    from seaembed.runtime.manifest import load_manifest

    manifest = load_manifest(tiny_bundle)
    text = httpx.get(server.url + "/info", timeout=30).text
    info = httpx.get(server.url + "/info", timeout=30).json()
    assert info["dim"] == manifest.embedding_dim and info["max_input_length"] == manifest.max_tokens
    assert "producer" not in info["bundle"] and "source" not in info["bundle"] and "created" not in info["bundle"]
    # the server reports its own version (as TEI does); the exporting machine's packages and paths stay in manifest.json
    for secret in (str(manifest.source.get("model")), *(str(v) for k, v in manifest.producer.items() if k != "seaembed")):
        assert secret not in text, secret
