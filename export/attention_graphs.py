"""FP16 graphs for ONNX Runtime's CUDA EP whose attention avoids ORT's unfused "math" kernel.

ORT's legacy contrib `Attention` on Hopper falls back to the math kernel whenever a padding
mask is present. These variants use the attention ops that run the fast kernels there:

- mha: `MultiHeadAttention` with a 1D key-length mask (right padding), which ORT can run with
  cuDNN SDPA (`sdpa_kernel` provider option) or its memory-efficient/flash kernels. Same
  inputs and outputs as the other padded graphs.
- packed: padding-free. Inputs are the batch's tokens concatenated (`input_ids` [tokens]),
  `token_offset` [batch, max_len] (where each packed token sat in the padded layout, then the
  padding positions, as ORT's RemovePadding writes it) and `cumulative_sequence_length`
  [batch + 1]; attention is `PackedMultiHeadAttention` (variable-length FlashAttention),
  and mean pooling runs per sequence on the packed output. runtime/packing.py builds the inputs.

Both are off by default (`seaembed export --cuda-attention mha,packed`); they are ORT-CUDA
graphs: ORT's CPU has no PackedMultiHeadAttention, so `attention="dense"` writes the packed
graph with plain ONNX block-diagonal attention instead, for testing everything else on a CPU.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .checkpoint import Architecture
from .onnx_graph import (
    GraphBuilder,
    fused_layer_tail,
    input_embeddings,
    make_model,
    mean_pool,
    normalize_rows,
)

VARIANTS = ("mha", "packed")
PACKED_INPUTS = ("input_ids", "token_offset", "cumulative_sequence_length")


def _qkv(g: GraphBuilder, x: str, w: dict, p: str, hidden: int) -> tuple[list[str], str]:
    """One [hidden, 3·hidden] projection split into Q, K, V (bias left to the attention op)."""
    names = [f"{p}.attention.self.{k}" for k in ("query", "key", "value")]
    weight = g.weight(f"{p}.attention.qkv.weight", np.concatenate([w[f"{n}.weight"].T for n in names], axis=1))
    bias = g.weight(f"{p}.attention.qkv.bias", np.concatenate([w[f"{n}.bias"] for n in names]))
    qkv = g.op("MatMul", [x, weight], f"{p}.qkv")
    split = g.const(f"{p}.qkv_split", np.array([hidden] * 3, dtype=np.int64))
    outs = [g.name(f"{p}.{k}") for k in ("q", "k", "v")]
    g.nodes.append(helper.make_node("Split", [qkv, split], outs, name=g.name(f"{p}.split"), axis=-1))
    return outs, bias


def _dense_packed_attention(g: GraphBuilder, q: str, k: str, v: str, bias: str, block_bias: str, arch: Architecture, p: str) -> str:
    """Plain-ONNX attention over packed tokens [1, T, D] with a block-diagonal mask (CPU tests)."""
    head = arch.hidden // arch.heads
    heads_shape = g.const(f"{p}.heads_shape", np.array([0, arch.heads, head], dtype=np.int64))
    biases = [g.op("Slice", [bias, g.const(f"{p}.b{i}0", np.array([i * arch.hidden])), g.const(f"{p}.b{i}1", np.array([(i + 1) * arch.hidden]))]) for i in range(3)]
    q, k, v = (g.op("Reshape", [g.op("Squeeze", [g.op("Add", [t, b]), g.const(f"{p}.sq{i}", np.array([0]))]), heads_shape]) for i, (t, b) in enumerate(zip((q, k, v), biases, strict=True)))
    q = g.op("Mul", [g.op("Transpose", [q], perm=[1, 0, 2]), g.const(f"{p}.scale", np.array(1 / np.sqrt(head), dtype=g.compute_np))])
    scores = g.op("Add", [g.op("MatMul", [q, g.op("Transpose", [k], perm=[1, 2, 0])]), block_bias])
    context = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), g.op("Transpose", [v], perm=[1, 0, 2])])
    merged = g.op("Reshape", [g.op("Transpose", [context], perm=[1, 0, 2]), g.const(f"{p}.merge", np.array([1, -1, arch.hidden], dtype=np.int64))])
    return merged


def _layer(g: GraphBuilder, x: str, attend, arch: Architecture, w: dict, p: str) -> str:
    """One encoder layer in ORT contrib ops; `attend(q, k, v, bias, prefix)` is the attention op."""
    (q, k, v), bias = _qkv(g, x, w, p, arch.hidden)
    return fused_layer_tail(g, x, attend(q, k, v, bias, p), arch, w, p)


def build_mha_graph(arch: Architecture, weights: dict, normalize: bool, precision: str = "fp16") -> onnx.ModelProto:
    """(input_ids, attention_mask) → embeddings, attention as MultiHeadAttention with key lengths [batch]."""
    g = GraphBuilder(precision)
    mask_f = g.op("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    key_lengths = g.op("Cast", [g.op("ReduceSum", ["attention_mask", g.const("axes_1k", np.array([1], dtype=np.int64))], keepdims=0)], "key_lengths", to=TensorProto.INT32)

    def attend(q, k, v, bias, p):
        return g.ms_op("MultiHeadAttention", [q, k, v, bias, key_lengths], f"{p}.mha", num_heads=arch.heads)

    x = g.to_compute(input_embeddings(g, arch, weights))
    for layer in range(arch.layers):
        x = _layer(g, x, attend, arch, weights, f"encoder.layer.{layer}")
    x = g.to_fp32(x)
    g.nodes.append(helper.make_node("Identity", [x], ["token_embeddings"], name="token_embeddings"))
    mean_pool(g, x, mask_f, normalize)
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in ("input_ids", "attention_mask")]
    outputs = [
        helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", arch.hidden]),
        helper.make_tensor_value_info("pooled_embedding", TensorProto.FLOAT, ["batch", arch.hidden]),
        helper.make_tensor_value_info("token_embeddings", TensorProto.FLOAT, ["batch", "sequence", arch.hidden]),
    ]
    return make_model(g, f"seaembed_{arch.family}_{precision}_mha", inputs, outputs, contrib=True)


def _packed_embeddings(g: GraphBuilder, arch: Architecture, w: dict) -> tuple[str, str]:
    """Token embeddings [1, T, D] (fp32, after LayerNorm) and each token's sequence index [T]."""
    tokens = g.op("Shape", ["input_ids"], "tokens")
    width = g.op("Cast", [g.op("Shape", ["token_offset"], "max_len", start=1, end=2)], to=TensorProto.INT32)
    flat = g.op("Reshape", ["token_offset", g.const("flat", np.array([-1], dtype=np.int64))])
    offsets = g.op("Slice", [flat, g.const("zero_1d", np.array([0], dtype=np.int64)), tokens], "packed_offsets")
    sequence = g.op("Div", [offsets, width], "sequence_index")  # padded offset = sequence × max_len + position
    if arch.family == "xlm-roberta":
        # non-pad tokens count up from pad_id + 1 within each sequence: a running count over the
        # packed tokens minus the count before the sequence's first token (float32: exact below 2**24)
        pad = g.const("pad_id", np.array(arch.pad_id, dtype=np.int64))
        not_pad = g.op("Cast", [g.op("Not", [g.op("Equal", ["input_ids", pad])])], "not_pad", to=TensorProto.FLOAT)
        running = g.op("CumSum", [not_pad, g.const("axis_0", np.array(0, dtype=np.int64))])
        before = g.op("Sub", [running, not_pad])
        start = g.op("Gather", ["cumulative_sequence_length", sequence], "sequence_start")
        count = g.op("Mul", [g.op("Sub", [running, g.op("Gather", [before, start])]), not_pad])
        offset = g.op("Add", [count, g.const("pad_id_f", np.array(arch.pad_id, dtype=np.float32))])
        positions = g.op("Cast", [offset], "position_ids", to=TensorProto.INT64)
    else:
        positions = g.op("Mod", [offsets, width], "position_ids")
    word = g.op("Gather", [g.const("embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"]), "input_ids"], "word")
    pos = g.op("Gather", [g.const("embeddings.position_embeddings.weight", w["embeddings.position_embeddings.weight"]), positions], "pos")
    type_row = g.const("embeddings.token_type_row0", w["embeddings.token_type_embeddings.weight"][0])
    summed = g.op("Unsqueeze", [g.op("Add", [g.op("Add", [word, pos]), type_row]), g.const("axes_0", np.array([0], dtype=np.int64))], "emb_sum")
    return g.layer_norm(summed, w, "embeddings.LayerNorm", arch.layer_norm_eps), sequence


def _pool_packed(g: GraphBuilder, x: str, normalize: bool) -> None:
    """Mean over each sequence's tokens: a [batch, T] membership matrix times the [T, D] output."""
    cu = "cumulative_sequence_length"
    last = g.const("minus_1", np.array([-1], dtype=np.int64))
    starts = g.op("Slice", [cu, g.const("zero_s", np.array([0], dtype=np.int64)), last], "starts")
    ends = g.op("Slice", [cu, g.const("one_s", np.array([1], dtype=np.int64)), g.const("big", np.array([2**31 - 1], dtype=np.int64))], "ends")
    total = g.op("Squeeze", [g.op("Slice", [cu, last, g.const("big2", np.array([2**31 - 1], dtype=np.int64))]), g.const("axes_0s", np.array([0], dtype=np.int64))])
    t = g.op("Unsqueeze", [g.op("Range", [g.const("zero_i", np.array(0, dtype=np.int32)), total, g.const("one_i", np.array(1, dtype=np.int32))]), g.const("axes_0t", np.array([0], dtype=np.int64))])
    column = g.const("axes_1c", np.array([1], dtype=np.int64))
    member = g.op("And", [g.op("GreaterOrEqual", [t, g.op("Unsqueeze", [starts, column])]), g.op("Less", [t, g.op("Unsqueeze", [ends, column])])])
    tokens = g.op("Squeeze", [x, g.const("axes_0x", np.array([0], dtype=np.int64))])
    summed = g.op("MatMul", [g.op("Cast", [member], to=TensorProto.FLOAT), tokens], "sequence_sums")
    counts = g.op("Cast", [g.op("Unsqueeze", [g.op("Sub", [ends, starts]), column])], to=TensorProto.FLOAT)
    counts = g.op("Max", [counts, g.const("min_count", np.array(1e-9, dtype=np.float32))])
    normalize_rows(g, g.op("Div", [summed, counts], "mean_pooled"), normalize)


def build_packed_graph(arch: Architecture, weights: dict, normalize: bool, precision: str = "fp16", attention: str = "packed") -> onnx.ModelProto:
    """(input_ids [T], token_offset [B, S], cumulative_sequence_length [B+1]) → embeddings [B, D]."""
    if attention not in ("packed", "dense"):
        raise ValueError(f"attention must be 'packed' (PackedMultiHeadAttention, CUDA) or 'dense' (plain ONNX, CPU tests), got {attention!r}")
    g = GraphBuilder(precision)
    x, sequence = _packed_embeddings(g, arch, weights)
    two_d = g.const("packed_2d", np.array([-1, arch.hidden], dtype=np.int64))
    three_d = g.const("packed_3d", np.array([1, -1, arch.hidden], dtype=np.int64))
    if attention == "dense":
        different = g.op("Not", [g.op("Equal", [g.op("Unsqueeze", [sequence, g.const("ax1", np.array([1]))]), g.op("Unsqueeze", [sequence, g.const("ax0", np.array([0]))])])])
        block_bias = g.to_compute(g.op("Mul", [g.op("Cast", [different], to=TensorProto.FLOAT), g.const("mask_fill", np.array(-10000.0, dtype=np.float32))]))

        def attend(q, k, v, bias, p):
            return _dense_packed_attention(g, q, k, v, bias, block_bias, arch, p)
    else:

        def attend(q, k, v, bias, p):
            q, k, v = (g.op("Reshape", [t, two_d]) for t in (q, k, v))
            out = g.ms_op("PackedMultiHeadAttention", [q, k, v, bias, "token_offset", "cumulative_sequence_length"], f"{p}.packed_mha", num_heads=arch.heads)
            return g.op("Reshape", [out, three_d])

    x = g.to_compute(x)
    for layer in range(arch.layers):
        x = _layer(g, x, attend, arch, weights, f"encoder.layer.{layer}")
    _pool_packed(g, g.to_fp32(x), normalize)
    inputs = [
        helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["tokens"]),
        helper.make_tensor_value_info("token_offset", TensorProto.INT32, ["batch", "max_len"]),
        helper.make_tensor_value_info("cumulative_sequence_length", TensorProto.INT32, ["batch_plus_1"]),
    ]
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", arch.hidden]) for n in ("sentence_embedding", "pooled_embedding")]
    return make_model(g, f"seaembed_{arch.family}_{precision}_packed_{attention}", inputs, outputs, contrib=True)
