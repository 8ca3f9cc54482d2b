"""Compact embedding tables and weights: close where promised, gated on real weights, run by ORT as stored."""

from __future__ import annotations

import shutil

import numpy as np
import onnx
import pytest

from seaembed.export.compact_embeddings import compact_graph, find_word_embedding_gather, quantize_rows
from seaembed.export.quality import rankings
from seaembed.export.ranking import compare_rankings, ranking_pool
from seaembed.runtime import Embedder
from seaembed.runtime.manifest import load_manifest


def test_int8_rows_round_trip_within_half_a_step():
    rng = np.random.default_rng(0)
    table = rng.standard_normal((300, 48)).astype(np.float32) * rng.uniform(0.01, 3.0, (300, 1)).astype(np.float32)
    table[7] = 0.0
    q, scale = quantize_rows(table)
    assert q.dtype == np.int8 and scale.shape == (300, 1)
    assert np.all(np.abs(q.astype(np.float32) * scale - table) <= scale / 2 + 1e-7)
    assert np.all(q[7] == 0) and np.max(np.abs(q), axis=1)[np.arange(300) != 7].min() == 127


def _graph_copy(bundle, name, tmp_path):
    for suffix in ("", ".data"):
        shutil.copy(bundle / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    return tmp_path / name


def _run(path, ids, mask):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["sentence_embedding", "token_embeddings"], {"input_ids": ids, "attention_mask": mask})


@pytest.mark.parametrize("rows", ["int8", "fp16"])
def test_pass_finds_the_word_table_and_keeps_outputs_close(tiny_bundle, tmp_path, rows):
    path = _graph_copy(tiny_bundle, "model.fp32.onnx", tmp_path)
    before = onnx.load(str(path), load_external_data=False)
    assert find_word_embedding_gather(before).input[0] == "embeddings.word_embeddings.weight"  # not the position table
    rng = np.random.default_rng(1)
    ids = rng.integers(5, 600, (3, 17)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 9:] = 0
    ids[0, 0] = ids[1, 0] = ids[2, 0] = 0
    reference = _run(path, ids, mask)
    size_before = (tmp_path / "model.fp32.onnx.data").stat().st_size
    done = compact_graph(path, rows)
    assert done["word_embeddings"]["table"] == "embeddings.word_embeddings.weight"
    after = onnx.load(str(path), load_external_data=False)
    dtype = {"int8": onnx.TensorProto.INT8, "fp16": onnx.TensorProto.FLOAT16}[rows]
    tables = [t for t in after.graph.initializer if t.name.startswith("embeddings.word_embeddings.weight")]
    assert {t.data_type for t in tables} >= {dtype} and all(t.name != "embeddings.word_embeddings.weight" for t in tables)
    table_bytes = 600 * 32 * 4
    saved = size_before - (tmp_path / "model.fp32.onnx.data").stat().st_size
    # int8 keeps a fp32 scale per row: 1/4 + 1/32 of the table; fp16 half of it
    assert saved == pytest.approx(table_bytes * (0.75 - 1 / 32 if rows == "int8" else 0.5), abs=256)
    got = _run(path, ids, mask)
    cosine = np.sum(got[0] * reference[0], axis=1)
    assert cosine.min() >= (0.9999 if rows == "int8" else 0.999999)
    assert np.max(np.abs(got[1] - reference[1])) <= (5e-2 if rows == "int8" else 5e-3)


def test_float_weights_stay_int8_and_run_as_8bit_matmuls(e5_small_bundle, tmp_path):
    """The dynamic INT8 graph's fallback recipe (export/builders/onnx_int8_dynamic.py) keeps the FFN down projections
    float and stores them as int8 + DequantizeLinear: ONNX Runtime's CPU provider must run them as MatMulNBits on 8-bit
    weights (not fold them back to FP32 at load). Built here as the export builds it, from the bundle's fused graph."""
    import onnxruntime as ort

    from seaembed.export.compact_embeddings import compact_artifact, storage_details
    from seaembed.export.quantize import dynamic_exclusions, quantize_dynamic_int8

    source, path = e5_small_bundle / "model.fp32.ort.onnx", tmp_path / "model.int8.dynamic.onnx"
    quantize_dynamic_int8(source, path, path.name + ".data", nodes_to_exclude=dynamic_exclusions(source))
    storage = storage_details(compact_artifact(path, "onnx-int8-dynamic"))["storage"]
    assert storage["float_weights"]["matmul_weights"] == 12  # one FFN down projection per layer
    assert storage["word_embeddings"]["shape"] == [250037, 384]
    stored = onnx.load(str(path), load_external_data=False)
    types = {t.name: t.data_type for t in stored.graph.initializer}
    assert types["embeddings.word_embeddings.weight.int8"] == onnx.TensorProto.INT8
    assert sum(n.op_type == "DequantizeLinear" for n in stored.graph.node) == 12
    from seaembed.runtime.backends.onnx_cpu import MATMULNBITS_ACCURACY_LEVEL, OnnxCpuBackend

    options = OnnxCpuBackend.session_options(1)  # as the runtime and the export gate configure it
    # set explicitly, not left to ORT's default (which is 4 today): the gated level survives an ORT upgrade
    assert options.get_session_config_entry("session.qdq_matmulnbits_accuracy_level") == str(MATMULNBITS_ACCURACY_LEVEL) == "4"
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    options.add_session_config_entry("session.optimized_model_external_initializers_file_name", "optimized.onnx.data")
    options.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx"), load_external_data=False)
    nbits = [n for n in optimized.graph.node if n.op_type == "MatMulNBits"]
    assert len(nbits) == 12 and not any(n.op_type == "DequantizeLinear" for n in optimized.graph.node)
    for node in nbits:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attributes["bits"] == 8 and (attributes["K"], attributes["N"]) == (1536, 384)
        assert attributes["accuracy_level"] == MATMULNBITS_ACCURACY_LEVEL  # the level the gate measured


def test_compact_tables_are_recorded_and_shrink_the_files(e5_small_bundle):
    manifest = load_manifest(e5_small_bundle)
    by_name = {a.name: a for a in manifest.artifacts}
    assert by_name["onnx-fp16"].details["storage"]["word_embeddings"]["rows"].startswith("fp16 rows")
    assert by_name["onnx-int8-dynamic"].details["storage"]["word_embeddings"]["rows"].startswith("int8 per-row")
    assert all("storage" not in by_name[n].details for n in ("onnx-fp32", "onnx-fp32-ort", "onnx-int8-qdq"))

    def data_bytes(name):
        return (e5_small_bundle / (by_name[name].file + ".data")).stat().st_size

    # e5-small: the 96M-parameter table is 82 % of the model; before compaction fp16 was 0.59× and
    # dynamic int8 0.91× the FP32 file
    assert data_bytes("onnx-fp16") < 0.51 * data_bytes("onnx-fp32")
    assert data_bytes("onnx-int8-dynamic") < 0.27 * data_bytes("onnx-fp32")


@pytest.fixture(scope="module")
def pool_and_fp32(e5_small_bundle, retrieval_pairs):
    queries, pool = [p["query"] for p in retrieval_pairs], ranking_pool(retrieval_pairs)
    fp32 = Embedder.load(e5_small_bundle, artifact="onnx-fp32")
    return queries, pool, rankings(fp32.encode_query(queries), fp32.encode_document(pool))


# The export gates the INT8 graphs' ranking against PyTorch (export/ranking.py); this checks every
# lossy graph, FP16 included, against the bundle's own FP32 graph on the same pool. The export's
# own figures on this model (AVX2 EPYC): dynamic int8 0.886 / 0.936 before compaction, 0.909 /
# 0.925 after; static QDQ 0.955 / 0.952 (benchmarks/results/edge_e5-small.md).
@pytest.mark.parametrize(
    ("artifact", "min_top1", "min_overlap"),
    [("onnx-fp16", 0.97, 0.97), ("onnx-int8-dynamic", 0.85, 0.85), ("onnx-int8-qdq", 0.85, 0.85)],
)
def test_lossy_graphs_rank_a_passage_pool_like_fp32(e5_small_bundle, pool_and_fp32, artifact, min_top1, min_overlap, record_property):
    queries, pool, reference = pool_and_fp32
    candidate = Embedder.load(e5_small_bundle, artifact=artifact)
    measured = compare_rankings(reference, rankings(candidate.encode_query(queries), candidate.encode_document(pool, batch_size=16)))
    record_property(artifact, measured)
    print(f"{artifact}: {measured}")
    assert measured["pool"] >= 300
    assert measured["top1_agreement"] >= min_top1
    assert measured["overlap_at_10"] >= min_overlap
