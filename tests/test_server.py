"""`seaembed serve` as a real process on loopback: parity, clients, concurrency, limits, shutdown."""

from __future__ import annotations

import asyncio
import base64
import json
import signal

import httpx
import numpy as np
import pytest
from server_process import ServerProcess

pytest.importorskip("uvicorn", reason="the server needs seaembed[serve]")
pytest.importorskip("orjson", reason="the server needs seaembed[serve]")


@pytest.fixture(scope="module")
def server(tiny_bundle):
    proc = ServerProcess(tiny_bundle, "--max-client-batch-size", "64", "--max-body-bytes", "200000")
    yield proc
    proc.stop()


def post(server, path, body=None, content=None, headers=None):
    return httpx.post(server.url + path, json=body, content=content, headers=headers, timeout=60)


def test_openai_endpoint_equals_embedder(server, tiny_embedder, corpus):
    texts = [t for t in corpus if t][:20]
    response = post(server, "/v1/embeddings", {"input": texts, "model": "x", "input_type": "query"})
    assert response.status_code == 200, response.text
    body = response.json()
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert [d["index"] for d in body["data"]] == list(range(len(texts)))
    assert np.max(np.abs(got - tiny_embedder.encode(texts, prompt_name="query"))) <= 1e-6
    expected_tokens = sum(len(tiny_embedder.tokenizer.encode(t, prompt_name="query")) for t in texts)
    assert body["usage"] == {"prompt_tokens": expected_tokens, "total_tokens": expected_tokens}


def test_dimensions_truncates_and_renormalizes(server, tiny_embedder):
    body = post(server, "/v1/embeddings", {"input": "hello", "dimensions": 8}).json()
    vector = np.array(body["data"][0]["embedding"])
    full = tiny_embedder.encode("hello")[:8]
    assert vector.shape == (8,) and np.allclose(vector, full / np.linalg.norm(full), atol=1e-6)


def test_tei_embed_normalize_and_prompt(server, tiny_embedder):
    texts = ["Selamat pagi", "สวัสดีครับ"]
    raw = post(server, "/embed", {"inputs": texts, "normalize": False, "prompt_name": "passage"}).json()
    assert np.allclose(raw, tiny_embedder.encode(texts, prompt_name="passage", normalize=False), atol=1e-5)
    single = post(server, "/embed", {"inputs": "Selamat pagi"}).json()
    assert np.allclose(single[0], tiny_embedder.encode("Selamat pagi"), atol=1e-6)


def test_truncation_is_explicit_and_reported(server, tiny_embedder):
    long_text = "word " * 700
    refused = post(server, "/embed", {"inputs": ["ok", long_text]})
    assert refused.status_code == 422
    assert refused.json()["input_index"] == 1 and "at most 512" in refused.json()["error"]
    right = post(server, "/embed", {"inputs": ["ok", long_text], "truncate": True})
    assert right.status_code == 200 and right.headers["x-seaembed-truncated-inputs"] == "1"
    assert np.allclose(right.json()[1], tiny_embedder.encode(long_text), atol=1e-6)
    left = post(server, "/embed", {"inputs": "start " + long_text + " end", "truncate": True, "truncation_direction": "Left"})
    ids = tiny_embedder.tokenizer.encode("start " + long_text + " end", direction="left")
    assert np.allclose(left.json()[0], tiny_embedder.embed_ids([ids])[0], atol=1e-6)


def test_tokenize_info_health_metrics(server, tiny_embedder):
    tokens = post(server, "/tokenize", {"inputs": "xin chào"}).json()[0]
    assert [t["id"] for t in tokens] == tiny_embedder.tokenizer.encode("xin chào")
    assert tokens[0]["special"] and not tokens[1]["special"]
    info = httpx.get(server.url + "/info").json()
    assert info["dim"] == 32 and info["max_input_length"] == 512 and info["precision"] == "fp32"
    assert info["bundle"]["artifacts"][0]["parity"]["max_abs_diff"] < 1e-5
    assert httpx.get(server.url + "/health").json() == {"status": "ok"}
    metrics = httpx.get(server.url + "/metrics").text
    assert 'seaembed_requests_total{endpoint="/v1/embeddings",status="200"}' in metrics
    assert "seaembed_batch_size_bucket" in metrics and "seaembed_input_tokens_count" in metrics


@pytest.mark.parametrize(
    "path,body,status,needle",
    [
        ("/embed", {"inputs": []}, 422, "empty list"),
        ("/embed", {"inputs": ["fine", ""]}, 422, "`inputs`[1] is an empty string"),
        ("/embed", {"inputs": ["x"] * 65}, 413, "batch size 65 > maximum allowed batch size 64"),
        ("/embed", {"inputs": 5}, 422, "must be a string or a list of strings"),
        ("/embed", {"inputs": "x", "normalize": "yes"}, 422, "`normalize` must be true or false"),
        ("/embed", {"inputs": "x", "prompt_name": "summary"}, 422, "not defined by this model"),
        ("/embed", {"inputs": "x", "truncation_direction": "Middle"}, 422, "truncation_direction"),
        ("/v1/embeddings", {"input": [[1, 2, 3]]}, 422, "token ids"),
        ("/v1/embeddings", {"input": "x", "dimensions": 33}, 422, "from 1 to 32"),
        ("/v1/embeddings", {"input": "x", "encoding_format": "int8"}, 422, "encoding_format"),
        ("/v1/embeddings", {"input": "x", "input_type": "code"}, 422, "input_type"),
        ("/v1/embeddings", {}, 422, "`input` must be a string or a list"),
    ],
)
def test_bad_inputs_get_clear_errors(server, path, body, status, needle):
    response = post(server, path, body)
    assert response.status_code == status, response.text
    text = response.text
    assert needle in text
    if path.startswith("/v1/"):
        assert response.json()["error"]["type"] == "invalid_request_error"


def test_bad_bytes_get_clear_errors(server):
    invalid_utf8 = post(server, "/embed", content=b'{"inputs": "caf\xe9"}', headers={"content-type": "application/json"})
    assert invalid_utf8.status_code == 422 and "not valid UTF-8" in invalid_utf8.text
    not_json = post(server, "/embed", content=b"{inputs: x", headers={"content-type": "application/json"})
    assert not_json.status_code == 422 and "not valid JSON" in not_json.text
    surrogate = post(server, "/embed", content=b'{"inputs": ["ok", "bad \\ud800 text"]}', headers={"content-type": "application/json"})
    assert surrogate.status_code == 422 and surrogate.json()["input_index"] == 1
    assert "lone surrogate U+D800" in surrogate.text
    too_big = post(server, "/embed", {"inputs": "x" * 300_000})
    assert too_big.status_code == 413 and "exceeds 200000 bytes" in too_big.text
    # the server is still healthy afterwards
    assert post(server, "/embed", {"inputs": "still here"}).status_code == 200


def test_concurrent_requests_get_their_own_answers(server, tiny_embedder, corpus):
    rng = np.random.default_rng(3)
    requests = []
    for i in range(48):
        size = int(rng.integers(1, 9))
        requests.append([f"{corpus[(i + k) % len(corpus)]} #{i}-{k}" for k in range(size)])

    async def run():
        async with httpx.AsyncClient(timeout=60) as client:
            async def one(texts):
                r = await client.post(server.url + "/embed", json={"inputs": texts, "truncate": True})
                return texts, r

            return await asyncio.gather(*(one(t) for t in requests))

    for texts, response in asyncio.run(run()):
        assert response.status_code == 200, response.text
        assert np.max(np.abs(np.array(response.json()) - tiny_embedder.encode(texts))) <= 1e-5
    metrics = httpx.get(server.url + "/metrics").text
    sizes = [line for line in metrics.splitlines() if line.startswith("seaembed_batch_size_count")]
    assert sizes


def test_full_queue_answers_429_and_loses_nothing_else(tiny_bundle, tiny_embedder):
    proc = ServerProcess(tiny_bundle, "--max-client-batch-size", "4", "--max-queue-inputs", "4", "--max-wait-ms", "100")
    try:
        async def run():
            async with httpx.AsyncClient(timeout=60) as client:
                texts = ["a b c", "d e", "f", "g h i j"]
                return await asyncio.gather(*(client.post(proc.url + "/embed", json={"inputs": texts}) for _ in range(12)))

        responses = asyncio.run(run())
        codes = [r.status_code for r in responses]
        assert 429 in codes and 200 in codes and set(codes) <= {200, 429}
        expected = tiny_embedder.encode(["a b c", "d e", "f", "g h i j"])
        for r in responses:
            if r.status_code == 200:
                assert np.allclose(r.json(), expected, atol=1e-6)
            else:
                assert r.json()["error_type"] == "Overloaded" and "retry later" in r.json()["error"]
                assert r.headers["retry-after"] == "1"
    finally:
        proc.stop()


def test_graceful_shutdown_finishes_queued_work(tiny_bundle, tiny_embedder):
    proc = ServerProcess(tiny_bundle, "--max-wait-ms", "200")

    async def run():
        async with httpx.AsyncClient(timeout=60) as client:
            tasks = [asyncio.create_task(client.post(proc.url + "/embed", json={"inputs": [f"text {i}"]})) for i in range(10)]
            await asyncio.sleep(0.1)  # requests are queued, waiting for the batch window
            proc.process.send_signal(signal.SIGTERM)
            return await asyncio.gather(*tasks)

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200] * 10
    for i, r in enumerate(responses):
        assert np.allclose(r.json()[0], tiny_embedder.encode(f"text {i}"), atol=1e-6)
    assert proc.process.wait(30) == 0  # a drained stop is a success (runner.py)
    assert '"event": "stopped"' in proc.logs()


def test_logs_are_json_lines(server):
    post(server, "/embed", {"inputs": "log me"})
    lines = [json.loads(line) for line in server.logs().splitlines() if line.startswith("{")]
    requests = [entry for entry in lines if entry.get("event") == "request"]
    assert requests and {"method", "path", "status", "ms"} <= set(requests[-1])


def test_tei_routes_a_stock_client_calls(server, tiny_embedder):
    texts = ["Selamat pagi", "xin chào"]
    embed = post(server, "/embed", {"inputs": texts, "prompt_name": "query"}).json()
    for path in ("/", "/invocations"):  # TEI's root and SageMaker routes embed, for an embedding model
        response = post(server, path, {"inputs": texts, "prompt_name": "query"})
        assert response.status_code == 200 and response.json() == embed, path
    assert np.allclose(embed, tiny_embedder.encode(texts, prompt_name="query"), atol=1e-6)
    assert httpx.get(server.url + "/").status_code == 200 and httpx.get(server.url + "/ping").status_code == 200
    openai = post(server, "/embeddings", {"input": texts}).json()  # TEI's OpenAI route without /v1
    assert np.allclose([d["embedding"] for d in openai["data"]], tiny_embedder.encode(texts), atol=1e-6)
    info = httpx.get(server.url + "/info").json()
    assert info["model_type"] == {"embedding": {"pooling": "mean"}} and info["max_client_batch_size"] == 64
    missing = post(server, "/embed_sparse", {"inputs": "x"})
    assert missing.status_code == 404 and missing.json()["error_type"] == "Validation"
    wrong_method = httpx.delete(server.url + "/embed")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.json()["error"]


def test_output_formats_keep_what_they_promise(server, tiny_embedder):
    texts = ["Selamat pagi", "สวัสดีครับ", "query about durian"]
    full = tiny_embedder.encode(texts)
    signs = np.packbits(full > 0, axis=1)

    def openai(fmt, dtype=None):
        body = {"input": texts, "encoding_format": fmt, **({"embed_dtype": dtype} if dtype else {})}
        response = post(server, "/v1/embeddings", body)
        assert response.status_code == 200, response.text
        return [d["embedding"] for d in response.json()["data"]]

    assert np.array_equal(np.array(openai("float"), dtype=np.float32), full)  # exact: shortest float32 text
    assert np.array_equal(np.stack([np.frombuffer(base64.b64decode(r), "<f4") for r in openai("base64")]), full)
    half = np.stack([np.frombuffer(base64.b64decode(r), "<f2") for r in openai("base64", "float16")])
    assert np.array_equal(half, full.astype(np.float16))
    assert np.array_equal(np.array(openai("float", "float16"), dtype=np.float16), full.astype(np.float16))
    assert np.array_equal(np.array(openai("ubinary"), dtype=np.uint8), signs)  # 32 dims → 4 bytes, high bit first
    assert np.array_equal(np.array(openai("binary"), dtype=np.int16), signs.astype(np.int16) - 128)
    tei = post(server, "/embed", {"inputs": texts, "encoding_format": "ubinary"}).json()
    assert np.array_equal(np.array(tei, dtype=np.uint8), signs)
    # TEI ignores encoding_format on /embed and answers floats; huggingface_hub relies on that
    assert np.allclose(post(server, "/embed", {"inputs": texts, "encoding_format": "base64"}).json(), full, atol=1e-6)
    refused = post(server, "/v1/embeddings", {"input": "x", "encoding_format": "ubinary", "embed_dtype": "float16"})
    assert refused.status_code == 422 and "1 bit per dimension" in refused.text


def test_over_length_error_names_what_works_on_each_route(server):
    long_text = "word " * 700
    openai = post(server, "/v1/embeddings", {"input": ["ok", long_text]})
    assert openai.status_code == 422 and openai.json()["input_index"] == 1
    message = openai.json()["error"]["message"]
    assert "--auto-truncate true" in message and "truncate=True" not in message
    tei = post(server, "/embed", {"inputs": long_text}).json()["error"]
    assert '"truncate": true' in tei


def test_workers_share_the_port_and_stop_together(tiny_bundle, tiny_embedder):
    proc = ServerProcess(tiny_bundle, "--workers", "2")
    try:
        async def run():
            async with httpx.AsyncClient(timeout=60) as client:
                return await asyncio.gather(*(client.post(proc.url + "/embed", json={"inputs": [f"text {i}"]}) for i in range(16)))

        for i, response in enumerate(asyncio.run(run())):
            assert response.status_code == 200 and np.allclose(response.json()[0], tiny_embedder.encode(f"text {i}"), atol=1e-6)
        started = [json.loads(line) for line in proc.logs().splitlines() if '"workers_started"' in line]
        assert started and started[0]["workers"] == 2 and len(started[0]["pids"]) == 2
    finally:
        code = proc.stop()
    assert code == 0 and open(proc.log_path).read().count('"event": "stopped"') == 3  # two workers, then the supervisor
