"""The client libraries people already use, driven against the real `seaembed serve` process.

Each result must equal Embedder.encode of the same texts with the prompt the client asked
for (≤ 1e-6). The clients come from the `clients` extra (`make test` installs it). LangChain's
HuggingFaceEndpointEmbeddings is not here: langchain-huggingface 1.2 refuses URLs ("must be a
HuggingFace repo ID, not a URL") and pins huggingface-hub<2 (README, "Use from your stack").
"""

from __future__ import annotations

import base64

import numpy as np
import pytest
from server_process import ServerProcess

pytest.importorskip("uvicorn", reason="the server needs seaembed[serve]")

TEXTS = ["Apa ibu kota Indonesia?", "Thủ đô của Việt Nam là Hà Nội.", "กรุงเทพมหานครเป็นเมืองหลวง"]


@pytest.fixture(scope="module")
def server(tiny_bundle):
    proc = ServerProcess(tiny_bundle)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def expected(tiny_embedder):
    return {prompt: tiny_embedder.encode(TEXTS, prompt_name=prompt) for prompt in (None, "query", "passage")}


def close(got, want) -> bool:
    got = np.asarray(got, dtype=np.float32)
    return got.shape == want.shape and float(np.max(np.abs(got - want))) <= 1e-6


def test_openai_client_float_and_base64(server, expected):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    for encoding in ("float", "base64"):
        result = client.embeddings.create(model="seaembed", input=TEXTS, encoding_format=encoding, extra_body={"input_type": "query"})
        rows = [d.embedding for d in result.data]
        if encoding == "base64":  # the client returns the string as sent when asked for base64 explicitly
            rows = [np.frombuffer(base64.b64decode(r), dtype="<f4") if isinstance(r, str) else r for r in rows]
        assert close(rows, expected["query"]), encoding
    default = client.embeddings.create(model="seaembed", input=TEXTS)  # the client asks for base64 and decodes it
    assert close([d.embedding for d in default.data], expected[None])


def test_huggingface_hub_inference_client(server, tiny_embedder, expected):
    hub = pytest.importorskip("huggingface_hub")
    by_base_url = hub.InferenceClient(base_url=server.url)  # posts to "/", as TEI serves it
    got = by_base_url.feature_extraction(TEXTS, prompt_name="query", normalize=True, truncate=True, truncation_direction="right")
    assert close(got, expected["query"])
    by_model_url = hub.InferenceClient(model=server.url + "/embed")
    assert close(by_model_url.feature_extraction(TEXTS, prompt_name="passage"), expected["passage"])
    raw = by_model_url.feature_extraction(TEXTS, normalize=False)
    assert close(raw, tiny_embedder.encode(TEXTS, normalize=False))
    long_text = "kata " * 700
    left = by_base_url.feature_extraction(long_text, truncate=True, truncation_direction="left")
    ids = tiny_embedder.tokenizer.encode(long_text, direction="left")
    assert close(left, tiny_embedder.embed_ids([ids]))


def test_llamaindex_text_embeddings_inference(server, expected):
    tei = pytest.importorskip("llama_index.embeddings.text_embeddings_inference")
    # LlamaIndex joins instruction and text with one space: "query:" gives E5's "query: " prompt
    model = tei.TextEmbeddingsInference(model_name="seaembed", base_url=server.url, query_instruction="query:", text_instruction="passage:")
    assert close([model.get_query_embedding(t) for t in TEXTS], expected["query"])
    assert close(model.get_text_embedding_batch(TEXTS), expected["passage"])


def test_langchain_openai_embeddings(server, expected):
    langchain_openai = pytest.importorskip("langchain_openai")

    def embeddings(input_type: str):
        # check_embedding_ctx_length=False: otherwise LangChain downloads tiktoken's cl100k vocabulary
        # and sends cl100k token ids, which mean nothing to this model (the server refuses them)
        return langchain_openai.OpenAIEmbeddings(
            model="seaembed", base_url=server.url + "/v1", api_key="unused", check_embedding_ctx_length=False,
            model_kwargs={"extra_body": {"input_type": input_type}},
        )

    assert close(embeddings("passage").embed_documents(TEXTS), expected["passage"])
    assert close([embeddings("query").embed_query(t) for t in TEXTS], expected["query"])

