"""The server's request path without the model: POST /v1/embeddings through the ASGI app in this
process (body read, JSON parse and validation, tokenization on the tokenizer pool, the dynamic
batcher and its engine thread, response formatting), on a 0-layer width-32 XLM-R bundle with the
real 250k vocabulary (workload.tiny_bundle), whose engine call costs next to nothing.
No socket and no HTTP parser: those are uvicorn's, measured end to end by benchmarks/bench_server.py.
"""

from __future__ import annotations

import base64

import numpy as np
import orjson
import pytest

INPUTS = 8


@pytest.fixture(scope="module")
def texts(corpus) -> list[str]:
    return corpus[-INPUTS:]


@pytest.mark.benchmark(group="server: request path")
@pytest.mark.parametrize("encoding", ["float", "base64"])
def bench_openai_embeddings(benchmark, server, tiny_embedder, texts, encoding):
    body = orjson.dumps({"model": "bench", "input": texts, "encoding_format": encoding})
    benchmark.extra_info.update(role="guarded", inputs=len(texts), body_bytes=len(body))
    status, payload = benchmark(server.request, "POST", "/v1/embeddings", body)
    assert status == 200, payload[:300]
    rows = [item["embedding"] for item in orjson.loads(payload)["data"]]
    if encoding == "base64":
        rows = [np.frombuffer(base64.b64decode(row), dtype="<f4") for row in rows]
    np.testing.assert_allclose(np.asarray(rows, dtype=np.float32), tiny_embedder.encode(texts), atol=1e-5)
