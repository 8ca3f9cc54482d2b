"""The pieces of `serve --ray` that need no cluster: the proxy's replay middleware and the /metrics merge."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from seaembed.runtime.server.metrics import server_metrics
from seaembed.runtime.server.ray_serve.metrics_board import merge_replica_texts, with_label
from seaembed.runtime.server.ray_serve.retry import RetryOnReplicaLoss


class FlakyProxy:
    """Stands in for Serve's proxy: the first `failures` calls end without a response, as the
    proxy does when the replica under a request dies; later calls echo the body."""

    def __init__(self, failures: int):
        self.failures = failures
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send):
        message = await receive()
        self.bodies.append(message["body"])
        if len(self.bodies) <= self.failures:
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": message["body"], "more_body": True})
        await send({"type": "http.response.body", "body": b""})


class ClientLeavesProxy(FlakyProxy):
    """Serve's proxy when the client disconnects: it waits for the disconnect and ends without a response."""

    async def __call__(self, scope, receive, send):
        message = await receive()
        self.bodies.append(message["body"])
        assert (await receive())["type"] == "http.disconnect"


def call(app, path: str, chunks: list[bytes], then_disconnect: bool = False) -> list[dict]:
    sent: list[dict] = []
    incoming = [{"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)]

    async def receive():
        if incoming:
            return incoming.pop(0)
        if then_disconnect:
            return {"type": "http.disconnect"}
        await asyncio.sleep(3600)  # the client stays connected

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    asyncio.run(app(scope, receive, send))
    return sent


def test_a_request_whose_replica_died_is_replayed_once_with_its_body():
    proxy = FlakyProxy(failures=1)
    sent = call(RetryOnReplicaLoss(proxy), "/embed", [b'{"inputs": ', b'"x"}'])
    assert proxy.bodies == [b'{"inputs": "x"}'] * 2
    assert sent[0]["status"] == 200 and b"".join(m.get("body", b"") for m in sent[1:]) == b'{"inputs": "x"}'


class StreamingProxy:
    """Serve's proxy reading a body as it streams: records every chunk it was handed."""

    def __init__(self):
        self.chunks: list[bytes] = []

    async def __call__(self, scope, receive, send):
        while True:
            message = await receive()
            self.chunks.append(message["body"])
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 413, "headers": []})
        await send({"type": "http.response.body", "body": b"too large"})


def test_a_body_over_the_replay_limit_is_not_held_but_passed_on_whole(monkeypatch):
    from seaembed.runtime.server.ray_serve import retry

    monkeypatch.setattr(retry, "REPLAY_BODY_LIMIT", 10)
    proxy = StreamingProxy()
    chunks = [b"0123456789", b"abcdefghij", b"klmnopqrst", b"end"]
    sent = call(RetryOnReplicaLoss(proxy), "/embed", chunks)
    assert b"".join(proxy.chunks) == b"".join(chunks)  # every byte reached the app, in order, once
    assert len(proxy.chunks) == 3  # the first two chunks were held (11+ bytes > limit), then it streamed
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [413]


def test_a_client_that_left_is_not_replayed_nor_answered():
    proxy = ClientLeavesProxy(failures=0)
    assert call(RetryOnReplicaLoss(proxy), "/embed", [b"{}"], then_disconnect=True) == []
    assert len(proxy.bodies) == 1


@pytest.mark.parametrize("path,openai", [("/embed", False), ("/v1/embeddings", True), ("/embeddings", True)])
def test_two_lost_attempts_answer_503_with_retry_after_in_the_route_shape(path, openai):
    proxy = FlakyProxy(failures=2)
    sent = call(RetryOnReplicaLoss(proxy), path, [b"{}"])
    assert len(proxy.bodies) == 2
    start, body = sent
    headers = dict(start["headers"])
    assert start["status"] == 503 and headers[b"retry-after"] == b"1"
    assert int(headers[b"content-length"]) == len(body["body"])
    payload = orjson.loads(body["body"])
    if openai:
        assert payload["error"]["code"] == 503 and "retry in 1 s" in payload["error"]["message"]
    else:
        assert payload["error_type"] == "Unhealthy" and "retry in 1 s" in payload["error"]


def test_merged_metrics_parse_and_keep_every_replica_sample():
    parser = pytest.importorskip("prometheus_client.parser")
    texts = {}
    for replica, requests in (("a1", 3), ("b2", 5)):
        metrics = server_metrics()
        for _ in range(requests):
            metrics.inc("seaembed_requests_total", endpoint="/embed", status="200")
            metrics.observe("seaembed_batch_size", 4)
        metrics.set("seaembed_queue_inputs", requests)
        texts[replica] = metrics.render()
    merged = merge_replica_texts(texts)
    families = {f.name: f for f in parser.text_string_to_metric_families(merged)}
    requests = [s for s in families["seaembed_requests"].samples if s.name == "seaembed_requests_total"]
    assert sorted((s.labels["replica"], s.value) for s in requests) == [("a1", 3.0), ("b2", 5.0)]
    counts = {s.labels["replica"]: s.value for s in families["seaembed_batch_size"].samples if s.name == "seaembed_batch_size_count"}
    assert counts == {"a1": 3.0, "b2": 5.0}
    assert {s.labels["replica"]: s.value for s in families["seaembed_queue_inputs"].samples} == {"a1": 3.0, "b2": 5.0}
    assert families["seaembed_replicas"].samples[0].value == 2


def test_with_label_keeps_existing_labels_and_escapes():
    assert with_label('m{a="b"} 1', "replica", 'x"y') == 'm{replica="x\\"y",a="b"} 1'
    assert with_label("m 2.5", "replica", "r") == 'm{replica="r"} 2.5'


def test_serve_ray_flags_parse_both_ways_and_exclude_each_other(capsys):
    from seaembed.runtime.cli.commands import build_parser

    parser = build_parser()
    assert parser.parse_args(["serve", "b", "--ray"]).ray is True
    assert parser.parse_args(["serve", "b", "--ray", "false"]).ray is False
    assert parser.parse_args(["serve", "b"]).ray is False
    args = parser.parse_args(["serve", "b", "--ray", "--ray-address", "auto", "--autoscale", "1:4"])
    assert (args.ray_address, args.autoscale, args.replicas) == ("auto", "1:4", None)
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "b", "--ray", "--replicas", "2", "--autoscale", "1:2"])
    with pytest.raises(SystemExit):
        parser.parse_args(["serve", "b", "--ray", "--replicas", "0"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_serve_ray_flags_read_their_variables(monkeypatch):
    from seaembed.runtime.cli.commands import build_parser

    monkeypatch.setenv("SEAEMBED_RAY", "true")
    monkeypatch.setenv("SEAEMBED_RAY_ADDRESS", "auto")
    monkeypatch.setenv("SEAEMBED_AUTOSCALE", "1:3")
    args = build_parser().parse_args(["serve", "b"])
    assert (args.ray, args.ray_address, args.autoscale, args.replicas) == (True, "auto", "1:3", None)
    assert build_parser().parse_args(["serve", "b", "--ray", "false"]).ray is False  # a flag given wins


@pytest.mark.parametrize("value,message", [("4", "MIN:MAX"), ("a:b", "MIN:MAX"), ("3:1", "MIN <= MAX"), ("0:0", "MAX >= 1")])
def test_autoscale_values_are_checked(value, message):
    from seaembed.runtime.server.ray_serve.launch import parse_autoscale

    with pytest.raises(ValueError, match=message):
        parse_autoscale(value)


def test_autoscale_knobs_come_from_the_environment(monkeypatch):
    from seaembed.runtime.server.ray_serve import AUTOSCALING_DEFAULTS
    from seaembed.runtime.server.ray_serve.launch import parse_autoscale

    assert parse_autoscale("1:4") == {**AUTOSCALING_DEFAULTS, "min_replicas": 1, "max_replicas": 4}
    monkeypatch.setenv("SEAEMBED_RAY_AUTOSCALING", '{"target_ongoing_requests": 8}')
    assert parse_autoscale("0:2")["target_ongoing_requests"] == 8
    monkeypatch.setenv("SEAEMBED_RAY_AUTOSCALING", "[1]")
    with pytest.raises(ValueError, match="JSON object"):
        parse_autoscale("1:2")


def test_serve_config_builder_takes_server_settings_and_refuses_unknown_args(tiny_bundle):
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install 'seaembed[ray]')")
    from ray.serve import Application

    from seaembed.runtime.server.ray_serve import app_builder

    app = app_builder({"bundle": str(tiny_bundle), "replicas": 2, "max_batch_size": 8, "auto_truncate": True})
    assert isinstance(app, Application)
    with pytest.raises(ValueError, match="unknown seaembed Serve args \\['max_batch'\\]"):
        app_builder({"bundle": str(tiny_bundle), "max_batch": 8})
    with pytest.raises(ValueError, match="args.bundle"):
        app_builder({"replicas": 2})
    with pytest.raises(ValueError, match="max_queue_inputs"):
        app_builder({"bundle": str(tiny_bundle), "max_queue_inputs": 1})
