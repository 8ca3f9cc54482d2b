"""Every graph meant for TensorRT passes onnx-tensorrt's operator table and the strongly typed rules (no TensorRT needed)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from tiny_graphs import pad, ragged_batch, tiny_architecture, tiny_weights

from seaembed.export import qdq
from seaembed.export.onnx_graph import build_encoder_graph
from seaembed.export.tensorrt_readiness import check_file, check_model, operator_table

FAMILIES = ("xlm-roberta", "bert")


def _calibrated(family: str) -> tuple:
    arch = tiny_architecture(family)
    weights = tiny_weights(arch)
    ids, mask = pad(ragged_batch(arch, [7, 19, 4, 12]), arch.pad_id)
    checkpoint = SimpleNamespace(architecture=arch, weights=weights, normalize=True)
    return arch, weights, qdq.calibrate(checkpoint, [{"input_ids": ids, "attention_mask": mask}])


def test_table_says_where_it_comes_from():
    table = operator_table()
    assert "onnx-tensorrt" in table["source"] and table["tensorrt"].startswith("10.")
    assert table["operators"]["CumSum"]["types"] == ["FP32", "FP16", "BF16"]  # no INT64: the slip this test guards
    assert table["operators"]["QuantizeLinear"]["supported"] and "INT8" in table["operators"]["DequantizeLinear"]["types"]
    assert (table["opset_min"], table["opset_max"]) == (9, 20)


@pytest.mark.parametrize("family", FAMILIES)
def test_fp16_and_int8_qdq_graphs_are_tensorrt_ready(family):
    arch, weights, amax = _calibrated(family)
    fp16 = build_encoder_graph(arch, weights, True, "fp16")
    int8 = build_encoder_graph(arch, weights, True, "fp16", quantized=amax)
    assert check_model(fp16) == []
    assert check_model(int8) == []
    ops = [n.op_type for n in int8.graph.node]
    # per layer: one Q/DQ pair for the Q/K/V input, one for the attention output projection; 4 int8 weights
    assert ops.count("QuantizeLinear") == 2 * arch.layers and ops.count("DequantizeLinear") == 6 * arch.layers
    assert "CumSum" not in ops or family == "xlm-roberta"


def test_exported_graphs_are_tensorrt_ready(tiny_bundle, e5_small_bundle):
    """The files a real export writes, XLM-R (tiny random) and BERT (trained e5-small, with the INT8 Q/DQ graph)."""
    for path in (tiny_bundle / "model.fp16.onnx", e5_small_bundle / "model.fp16.onnx", e5_small_bundle / "model.int8.qdq.onnx"):
        assert check_file(path) == [], path.name


def test_fp16_attention_is_the_block_tensorrt_fuses():
    """MatMul → Add(mask) → Softmax → MatMul, all FP16, no Cast inside; Q pre-scaled (no Mul/Div on the scores)."""
    arch = tiny_architecture("xlm-roberta")
    model = onnx.shape_inference.infer_shapes(build_encoder_graph(arch, tiny_weights(arch), True, "fp16"))
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    producer = {o: n for n in model.graph.node for o in n.output}
    softmaxes = [n for n in model.graph.node if n.op_type == "Softmax"]
    assert len(softmaxes) == arch.layers
    for softmax in softmaxes:
        add = producer[softmax.input[0]]
        scores = producer[add.input[0]]
        assert (add.op_type, scores.op_type) == ("Add", "MatMul")
        assert {types[softmax.output[0]], types[add.output[0]], types[scores.output[0]]} == {TensorProto.FLOAT16}
    casts = [n for n in model.graph.node if n.op_type == "Cast"]
    # embeddings/mask/position casts, one input cast per sublayer, one output cast per linear
    assert all(producer.get(c.input[0]) is None or producer[c.input[0]].op_type != "Cast" for c in casts)


def test_fp16_and_int8_graphs_match_fp32(tmp_path):
    """The layouts the readiness rules force still compute the same embeddings (ORT CPU)."""
    from tiny_graphs import run_graph

    for family in FAMILIES:
        arch, weights, amax = _calibrated(family)
        ids, mask = pad(ragged_batch(arch, [5, 23, 9, 2], seed=7), arch.pad_id)
        feeds = {"input_ids": ids, "attention_mask": mask}
        ref = run_graph(build_encoder_graph(arch, weights, True, "fp32"), feeds)
        for kwargs, min_cos in (({}, 0.9999), ({"quantized": amax}, 0.99)):  # int8 on random weights: a loose check
            got = run_graph(build_encoder_graph(arch, weights, True, "fp16", **kwargs), feeds)
            assert np.all(np.isfinite(got))
            assert np.min(np.sum(ref * got, axis=1)) >= min_cos, (family, kwargs.keys())


# -- the checker fails on the slips it exists for ------------------------------------------------


def _model(nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "bad", inputs, outputs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_int64_cumsum_in_an_exported_graph_fails():
    """The old XLM-R position ids: CumSum over int64. Patch today's graph back to it and the check must fail."""
    arch = tiny_architecture("xlm-roberta")
    model = build_encoder_graph(arch, tiny_weights(arch), True, "fp16")
    for node in model.graph.node:
        if node.op_type == "Cast" and node.output[0].startswith("not_pad"):
            node.attribute[0].i = TensorProto.INT64
        if node.name.startswith("position_ids"):  # Cast(float → int64) becomes Identity-like int64 → int64
            node.attribute[0].i = TensorProto.INT64
        if node.input and node.input[-1] == "pad_id_f":
            node.input[-1] = "pad_id"
    problems = check_model(model)
    assert any("CumSum" in p and "INT64" in p for p in problems), problems


def test_bad_graphs_are_refused_with_the_reason():
    f32, f16 = TensorProto.FLOAT, TensorProto.FLOAT16
    x16 = helper.make_tensor_value_info("x", f16, [2, 4])
    cases = {
        "round trip": (
            [helper.make_node("Cast", ["x"], ["a"], name="up", to=f32), helper.make_node("Cast", ["a"], ["y"], name="down", to=f16)],
            [x16], [helper.make_tensor_value_info("y", f16, [2, 4])], [], "round trip",
        ),
        "mixed types": (
            [helper.make_node("Add", ["x", "b"], ["y"], name="add")],
            [x16, helper.make_tensor_value_info("b", f32, [2, 4])], [helper.make_tensor_value_info("y", f16, [2, 4])], [], "explicit Cast",
        ),
        "contrib op": (
            [helper.make_node("BiasGelu", ["x", "x"], ["y"], name="gelu", domain="com.microsoft")],
            [x16], [helper.make_tensor_value_info("y", f16, [2, 4])], [], "not supported by onnx-tensorrt",
        ),
    }
    scale = helper.make_tensor("s", f32, [4], [0.1] * 4)
    zero = helper.make_tensor("z", TensorProto.INT8, [4], [0] * 4)
    one = helper.make_tensor("z1", TensorProto.INT8, [], [1])
    s1 = helper.make_tensor("s1", f32, [], [0.1])
    w = helper.make_tensor("w", f32, [4, 4], [0.5] * 16)
    x32 = helper.make_tensor_value_info("x", f32, [2, 4])
    y32 = helper.make_tensor_value_info("y", f32, [2, 4])
    cases["per-channel activation"] = (
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"], name="q", axis=1), helper.make_node("DequantizeLinear", ["q", "s", "z"], ["y"], name="dq", axis=1)],
        [x32], [y32], [scale, zero], "per-channel",
    )
    cases["nonzero zero point"] = (
        [helper.make_node("QuantizeLinear", ["x", "s1", "z1"], ["q"], name="q"), helper.make_node("DequantizeLinear", ["q", "s1", "z1"], ["y"], name="dq")],
        [x32], [y32], [s1, one], "zero point",
    )
    z0 = helper.make_tensor("z0", TensorProto.INT8, [], [0])
    cases["output quantisation"] = (
        [helper.make_node("MatMul", ["x", "w"], ["m"], name="mm"), helper.make_node("QuantizeLinear", ["m", "s1", "z0"], ["q"], name="q"), helper.make_node("DequantizeLinear", ["q", "s1", "z0"], ["y"], name="dq")],
        [x32], [y32], [w, s1, z0], "output of MatMul",
    )
    for label, (nodes, inputs, outputs, inits, expected) in cases.items():
        problems = check_model(_model(nodes, inputs, outputs, inits))
        assert any(expected in p for p in problems), (label, problems)
