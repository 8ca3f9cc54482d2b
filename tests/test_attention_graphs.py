"""The opt-in CUDA attention graphs (issue 13), tested where ONNX Runtime's CPU can: packing, graphs, buckets.

MultiHeadAttention has a CPU kernel (FP32), so the MHA graph runs here as written.
PackedMultiHeadAttention has none: the packed graph is run with attention="dense" (the same
graph with plain block-diagonal attention), which exercises the packed inputs, positions and
per-sequence pooling; the PackedMultiHeadAttention node is checked against ORT's schema.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from tiny_graphs import pad, ragged_batch, run_graph, tiny_architecture, tiny_weights

from seaembed.export.attention_graphs import build_mha_graph, build_packed_graph
from seaembed.export.onnx_graph import build_encoder_graph
from seaembed.runtime.backends.cuda_graphs import BUCKET_BATCHES, BUCKET_LENGTHS, bucket_for, pad_to_bucket
from seaembed.runtime.packing import pack, plan_packed_batches, unpack

FAMILIES = ("xlm-roberta", "bert")
LENGTHS = [5, 33, 2, 17, 9]  # odd batch, a 2-token input, uneven lengths


def test_pack_matches_ort_packed_attention_layout():
    """The example in ORT's PackedMultiHeadAttention schema: lengths 1, 2, 4 (max 4)."""
    feeds = pack([[10], [20, 21], [30, 31, 32, 33]])
    assert feeds["input_ids"].tolist() == [10, 20, 21, 30, 31, 32, 33]
    assert feeds["token_offset"].reshape(-1).tolist() == [0, 4, 5, 8, 9, 10, 11, 1, 2, 3, 6, 7]
    assert feeds["cumulative_sequence_length"].tolist() == [0, 1, 3, 7]
    assert feeds["token_offset"].dtype == np.int32 and feeds["input_ids"].dtype == np.int64


def test_unpack_restores_the_padded_batch():
    sequences = [[5, 6, 7], [8], [9, 10, 11, 12, 13]]
    feeds = pack(sequences)
    ids, mask = pad(sequences, pad_id=1)
    restored = unpack(feeds["input_ids"], feeds, fill=1)
    assert np.array_equal(restored, ids)
    assert np.array_equal(unpack(np.ones(len(feeds["input_ids"]), dtype=np.int64), feeds), mask)
    with pytest.raises(ValueError, match="no empty sequence"):
        pack([[1], []])


def test_packed_batches_keep_a_real_token_budget():
    lengths = [500, 10, 300, 20, 200, 600]
    plan = plan_packed_batches(lengths, max_sequences=8, max_tokens=700)
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
    assert plan[0] == [5]  # longest first
    for batch in plan:
        assert sum(lengths[i] for i in batch) <= 700 or len(batch) == 1
    assert plan_packed_batches([3] * 10, max_sequences=4, max_tokens=10**6) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


@pytest.mark.parametrize("family", FAMILIES)
def test_mha_and_packed_graphs_match_the_padded_graph(family):
    arch = tiny_architecture(family)
    weights = tiny_weights(arch)
    sequences = ragged_batch(arch, LENGTHS)
    if family == "xlm-roberta":
        sequences[1][4] = arch.pad_id  # a literal <pad> inside a text: positions must skip it as HF does
    ids, mask = pad(sequences, arch.pad_id)
    padded_feeds = {"input_ids": ids, "attention_mask": mask}
    for output in ("sentence_embedding", "pooled_embedding"):
        reference = run_graph(build_encoder_graph(arch, weights, True, "fp32"), padded_feeds, output)
        mha = run_graph(build_mha_graph(arch, weights, True, "fp32"), padded_feeds, output)
        packed = run_graph(build_packed_graph(arch, weights, True, "fp32", attention="dense"), pack(sequences), output)
        assert np.abs(mha - reference).max() < 1e-5
        assert np.abs(packed - reference).max() < 1e-5
    # one input alone equals the same input inside the batch (reference: the last output, pooled_embedding)
    alone = run_graph(build_packed_graph(arch, weights, True, "fp32", attention="dense"), pack(sequences[3:4]), "pooled_embedding")
    assert np.abs(alone[0] - reference[3]).max() < 1e-5


def test_fp16_cuda_graphs_use_the_fast_attention_ops():
    import onnxruntime as ort

    arch = tiny_architecture("xlm-roberta")
    weights = tiny_weights(arch)
    mha = build_mha_graph(arch, weights, True, "fp16")
    packed = build_packed_graph(arch, weights, True, "fp16")
    for model in (mha, packed):
        onnx.checker.check_model(model)
        assert not any(n.op_type == "Attention" for n in model.graph.node)  # the legacy op that picks the math kernel
    mha_nodes = [n for n in mha.graph.node if n.op_type == "MultiHeadAttention"]
    packed_nodes = [n for n in packed.graph.node if n.op_type == "PackedMultiHeadAttention"]
    assert len(mha_nodes) == len(packed_nodes) == arch.layers
    assert mha_nodes[0].input[4].startswith("key_lengths")  # 1D key lengths [batch], right padding
    schemas = {s.name: s for s in ort.capi.onnxruntime_pybind11_state.get_all_operator_schema() if s.domain == "com.microsoft"}
    expected = [i.name for i in schemas["PackedMultiHeadAttention"].inputs]
    node = packed_nodes[0]
    assert expected[4:6] == ["token_offset", "cumulative_sequence_length"]
    assert list(node.input[4:6]) == ["token_offset", "cumulative_sequence_length"]
    assert {i.name: i.type.tensor_type.elem_type for i in packed.graph.input} == {
        "input_ids": onnx.TensorProto.INT64, "token_offset": onnx.TensorProto.INT32, "cumulative_sequence_length": onnx.TensorProto.INT32,
    }


def test_cuda_graph_buckets_pad_without_changing_embeddings():
    assert bucket_for(1, 12) == (1, 16) and bucket_for(3, 17) == (4, 32) and bucket_for(8, 128) == (8, 128)
    assert bucket_for(BUCKET_BATCHES[-1] + 1, 8) is None and bucket_for(1, BUCKET_LENGTHS[-1] + 1) is None
    arch = tiny_architecture("xlm-roberta")
    model = build_encoder_graph(arch, tiny_weights(arch), True, "fp32")
    ids, mask = pad(ragged_batch(arch, [11, 4, 7]), arch.pad_id)
    bucketed = pad_to_bucket(ids, mask, bucket_for(*ids.shape))
    assert bucketed[0].shape == (4, 16)
    plain = run_graph(model, {"input_ids": ids, "attention_mask": mask})
    padded = run_graph(model, {"input_ids": bucketed[0], "attention_mask": bucketed[1]})
    assert np.abs(padded[:3] - plain).max() < 1e-6
