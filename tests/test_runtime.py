"""The runtime against sentence-transformers: same vectors, same order, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seaembed.runtime import BundleError, Embedder, InputTooLongError
from seaembed.runtime.integrity import VerifiedFiles


def _mixed_lengths(corpus):
    return corpus + ["short", "a much longer text " * 20, "x"]


@pytest.mark.parametrize("prompt_name", [None, "query", "passage"])
@pytest.mark.parametrize("batch_size", [1, 3, 17])
def test_equals_sentence_transformers(tiny_embedder, tiny_st, corpus, prompt_name, batch_size):
    texts = _mixed_lengths(corpus)
    expected = tiny_st.encode(texts, prompt_name=prompt_name, batch_size=batch_size)
    got = tiny_embedder.encode(texts, prompt_name=prompt_name, batch_size=batch_size)
    assert got.dtype == np.float32 and got.shape == expected.shape
    assert np.max(np.abs(got - expected)) <= 1e-5
    assert np.min(np.sum(got * expected, axis=1)) >= 0.99999


def test_batched_equals_alone(tiny_embedder, corpus):
    texts = _mixed_lengths(corpus)
    batched = tiny_embedder.encode(texts, batch_size=17)
    alone = np.stack([tiny_embedder.encode(t) for t in texts])
    assert np.max(np.abs(batched - alone)) <= 1e-6


def test_encode_query_and_document_use_model_prompts(tiny_embedder, tiny_st):
    q = tiny_embedder.encode_query(["where is Singapore"])
    d = tiny_embedder.encode_document(["Singapore is in Southeast Asia"])
    assert np.allclose(q, tiny_st.encode(["where is Singapore"], prompt_name="query"), atol=1e-5)
    assert np.allclose(d, tiny_st.encode(["Singapore is in Southeast Asia"], prompt_name="passage"), atol=1e-5)


def test_single_string_and_empty_list_shapes(tiny_embedder):
    assert tiny_embedder.encode("hello").shape == (32,)
    assert tiny_embedder.encode([]).shape == (0, 32)


def test_unnormalized_is_the_plain_mean_of_token_embeddings(tiny_embedder, tiny_st, corpus):
    texts = corpus[:9]
    token_embeddings = tiny_st.encode(texts, output_value="token_embeddings")
    expected = np.stack([t.numpy().mean(axis=0) for t in token_embeddings])
    got = tiny_embedder.encode(texts, normalize=False)
    assert np.max(np.abs(got - expected)) <= 1e-5
    assert not np.allclose(np.linalg.norm(got, axis=1), 1.0)


def test_too_long_input_truncates_or_refuses(tiny_embedder, tiny_st):
    text = "hello world " * 600
    assert np.allclose(tiny_embedder.encode(text), tiny_st.encode(text), atol=1e-5)
    with pytest.raises(InputTooLongError, match="input 1 has .* tokens but the model accepts at most 512"):
        tiny_embedder.encode(["fine", text], truncate=False)


def test_token_budget_batching_gives_the_same_vectors(tiny_embedder, corpus):
    texts = _mixed_lengths(corpus)
    plain = tiny_embedder.encode(texts, batch_size=64)
    budgeted = tiny_embedder.encode(texts, batch_size=64, max_batch_tokens=300)
    assert np.max(np.abs(plain - budgeted)) <= 1e-6


@pytest.mark.parametrize("artifact", ["onnx-fp32", "onnx-fp32-ort"])
def test_both_fp32_graphs_equal_sentence_transformers(tiny_bundle, tiny_st, corpus, artifact):
    embedder = Embedder.load(tiny_bundle, artifact=artifact)
    assert embedder.backend.artifact.name == artifact
    assert np.max(np.abs(embedder.encode(corpus, batch_size=5) - tiny_st.encode(corpus, batch_size=5))) <= 1e-5


def test_default_cpu_graph_is_the_fused_fp32_one(tiny_embedder):
    assert tiny_embedder.backend.artifact.name == "onnx-fp32-ort"


def test_fp16_graph_runs_on_cpu_close_to_fp32(tiny_bundle, tiny_st, corpus):
    embedder = Embedder.load(tiny_bundle, precision="fp16")
    assert embedder.backend.artifact.precision == "fp16"
    got = embedder.encode(corpus)
    expected = tiny_st.encode(corpus)
    assert np.all(np.isfinite(got))
    assert np.min(np.sum(got * expected, axis=1)) >= 0.9999


def test_tampered_file_is_refused(tiny_bundle, tmp_path):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    for artifact in ("onnx-fp32", "onnx-fp32-ort"):
        data = bundle / f"{Embedder.load(tiny_bundle, artifact=artifact).backend.artifact.file}.data"
        raw = bytearray(data.read_bytes())
        raw[100] ^= 0xFF
        data.write_bytes(bytes(raw))
        with pytest.raises(BundleError, match=f"{data.name} has sha256 .* re-export"):
            Embedder.load(bundle, artifact=artifact)


def test_wrong_format_version_is_refused(tiny_bundle, tmp_path):
    import shutil

    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format_version"] = 99
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format_version 99; this seaembed reads version 1"):
        Embedder.load(bundle)


def test_verified_files_are_not_rehashed(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("SEAEMBED_CACHE_DIR", str(tmp_path / "cache"))
    Embedder.load(tiny_bundle)
    record = VerifiedFiles()
    manifest = json.loads((tiny_bundle / "manifest.json").read_text())
    default = next(a for a in manifest["artifacts"] if a["name"] == "onnx-fp32-ort")
    data = tiny_bundle / f"{default['file']}.data"
    sha = default["sha256"][data.name]
    assert record.is_verified(data, sha)
    assert not record.is_verified(data, "0" * 64)


def test_missing_bundle_and_unknown_backend_are_clear(tiny_bundle, tmp_path):
    with pytest.raises(BundleError, match="does not exist"):
        Embedder.load(tmp_path / "nothing")
    with pytest.raises(ValueError, match="unknown backend 'gpu'; choose from"):
        Embedder.load(tiny_bundle, backend="gpu")
    with pytest.raises(Exception, match="runs precisions \\['fp16', 'fp32', 'int8'\\], not 'int4'"):
        Embedder.load(tiny_bundle, precision="int4")
    with pytest.raises(Exception, match="no artifact this backend can run at precision 'int8'"):
        Embedder.load(tiny_bundle, precision="int8")
    with pytest.raises(Exception, match="no artifact named 'onnx-fp8'"):
        Embedder.load(tiny_bundle, artifact="onnx-fp8")


def test_batch_tokenizer_api_equals_encode_one_by_one(tiny_embedder, corpus):
    tokenizer = tiny_embedder.tokenizer
    texts = corpus[:20] + ["ab " * 400, "x", "ab " * 300 + "tail"]
    for direction in ("right", "left"):
        expected = [tokenizer.encode(t, prompt_name="query", direction=direction) for t in texts]
        assert tokenizer.encode_batch(texts, prompt_name="query", direction=direction) == expected
        ids, truncated = tokenizer.encode_batch_truncating(texts, prompt_name="query", direction=direction)
        assert ids == expected
        too_long = []
        for i, text in enumerate(texts):
            try:
                tokenizer.encode(text, prompt_name="query", truncate=False)
            except InputTooLongError:
                too_long.append(i)
        assert truncated == too_long and too_long == [20, 22]
    with pytest.raises(InputTooLongError) as err:
        tokenizer.encode_batch(texts, truncate=False)
    assert err.value.index == 20
