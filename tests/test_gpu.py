"""GPU backends (run on a machine with an NVIDIA GPU; skipped with the reason elsewhere).

Both model families: the trained e5-small (BERT) and a tiny random XLM-R (whose position ids,
computed in-graph, are where the families differ). TensorRT engines: tests/test_tensorrt.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from seaembed.runtime import Embedder

FAMILIES = {"bert": "e5_small", "xlm-roberta": "tiny"}


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def gpu_case(request, tmp_path_factory):
    """(bundle with fp16 + the opt-in CUDA attention graphs, sentence-transformers reference) per family."""
    from seaembed.export import export_bundle

    prefix = FAMILIES[request.param]
    checkpoint = request.getfixturevalue(f"{prefix}_checkpoint")
    out = tmp_path_factory.mktemp(f"gpu-bundle-{request.param}") / "bundle"
    precisions = ("fp32", "fp16", "int8") if request.param == "bert" else ("fp32", "fp16")
    export_bundle(str(checkpoint), out, precisions=precisions, cuda_attention=("mha", "packed"))
    return out, request.getfixturevalue(f"{prefix}_st")


@pytest.mark.gpu
@pytest.mark.parametrize("artifact", ["onnx-fp16-ort", "onnx-fp16", "onnx-fp16-mha", "onnx-fp16-packed"])
def test_cuda_fp16_graphs_match_sentence_transformers_fp32(gpu_case, corpus, artifact):
    bundle, st = gpu_case
    embedder = Embedder.load(bundle, backend="cuda", artifact=artifact)
    assert embedder.backend.artifact.precision == "fp16"
    got = embedder.encode(corpus, prompt_name="query", batch_size=16)
    expected = st.encode(corpus, prompt_name="query")
    assert np.all(np.isfinite(got))
    assert np.min(np.sum(got * expected, axis=1)) >= 0.9999


@pytest.mark.gpu
def test_packed_backend_never_pads_and_agrees_with_padded(gpu_case, corpus):
    bundle, _ = gpu_case
    packed = Embedder.load(bundle, backend="cuda", artifact="onnx-fp16-packed")
    padded = Embedder.load(bundle, backend="cuda", artifact="onnx-fp16-ort")
    assert packed.backend.ragged and packed.backend.describe()["padded_artifact"] == "onnx-fp16-mha"
    a, b = packed.encode(corpus, batch_size=64), padded.encode(corpus, batch_size=64)
    assert np.min(np.sum(a * b, axis=1)) >= 0.9999
    one = packed.encode(corpus[:1])  # below PACKED_MIN_BATCH: the padded companion graph
    assert np.sum(one[0] * a[0]) >= 0.9999


@pytest.mark.gpu
def test_cuda_graphs_replay_short_batches(gpu_case, corpus, monkeypatch):
    bundle, st = gpu_case
    monkeypatch.setenv("SEAEMBED_CUDA_GRAPHS", "1")
    embedder = Embedder.load(bundle, backend="cuda")
    if not embedder.backend.describe().get("cuda_graphs"):
        pytest.skip("ORT could not capture this graph (a node runs on the CPU); see the warning")
    queries = corpus[:3]
    first, again = embedder.encode(queries), embedder.encode(queries)  # capture, then replay
    expected = st.encode(queries)
    assert np.array_equal(first, again)
    assert np.min(np.sum(again * expected, axis=1)) >= 0.9999


@pytest.mark.gpu
def test_default_fp16_path_is_mha_packed_and_cuda_graphs(gpu_case, corpus, monkeypatch):
    """Issue 22's defaults: mha for padded batches, packed above the padding threshold, CUDA graphs on; all exact."""
    bundle, st = gpu_case
    monkeypatch.delenv("SEAEMBED_CUDA_GRAPHS", raising=False)
    monkeypatch.delenv("SEAEMBED_CUDA_PACKED_WASTE", raising=False)
    for precision in (None, "fp16"):
        embedder = Embedder.load(bundle, backend="cuda", precision=precision)
        info = embedder.backend.describe()
        assert info["artifact"] == "onnx-fp16-mha" and info["packed_artifact"] == "onnx-fp16-packed" and embedder.backend.ragged
    assert info["cuda_graphs"] in ("onnx-fp16-mha", "onnx-fp16-ort"), "no FP16 graph ORT could capture; see the warning"
    expected = st.encode(corpus, prompt_name="query")
    for batch_size in (1, 4, 64):  # CUDA graphs; packed or mha by padding; both at 64
        got = embedder.encode(corpus, prompt_name="query", batch_size=batch_size)
        assert np.all(np.isfinite(got)) and np.min(np.sum(got * expected, axis=1)) >= 0.9999
    monkeypatch.setenv("SEAEMBED_CUDA_GRAPHS", "0")
    assert Embedder.load(bundle, backend="cuda").backend.describe()["cuda_graphs"] is None
    named = Embedder.load(bundle, backend="cuda", artifact="onnx-fp16-ort").backend
    assert named.artifact.name == "onnx-fp16-ort" and not named.ragged


@pytest.mark.gpu
def test_auto_backend_says_what_it_picked(gpu_case):
    embedder = Embedder.load(gpu_case[0], backend="auto")
    assert embedder.backend.name in ("tensorrt", "cuda")
