"""Will TensorRT's ONNX parser take this graph, strongly typed? Checked without TensorRT.

Every node's op type and tensor types are checked against onnx-tensorrt's operator table
(export/data/onnx_tensorrt_ops.json, generated from its docs/operators.md; the source and
version are in the file), plus the rules a strongly typed network imposes on the graph:
- no implicit type promotion: the data inputs of an op share one type (casts are explicit);
- no redundant cast round trips (fp16 → fp32 → fp16 with nothing between);
- Q/DQ: int8 zero points equal to 0, each activation Q feeding only DQ, per-channel scales
  only on constant weights, Q input and DQ output of the scale's type, and no Q on a MatMul
  output (TensorRT fuses Q/DQ on matmul inputs);
- axes / axis inputs the table says must be initializers are initializers;
- standard ONNX domain only (no com.microsoft contrib ops), opset within the table's range.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path

import onnx
from onnx import TensorProto

TYPE_NAMES = {
    TensorProto.FLOAT: "FP32", TensorProto.FLOAT16: "FP16", TensorProto.BFLOAT16: "BF16", TensorProto.INT32: "INT32",
    TensorProto.INT64: "INT64", TensorProto.INT8: "INT8", TensorProto.UINT8: "UINT8", TensorProto.BOOL: "BOOL",
    TensorProto.DOUBLE: "DOUBLE",
}
# inputs that carry indices, shapes, axes or quantisation parameters rather than the op's data
_NON_DATA_INPUTS = {
    "Gather": {1}, "GatherElements": {1}, "Slice": {1, 2, 3, 4}, "Reshape": {1}, "Unsqueeze": {1}, "Squeeze": {1},
    "CumSum": {1}, "ReduceSum": {1}, "ReduceL2": {1}, "ReduceMean": {1}, "ReduceMax": {1}, "Expand": {1}, "Tile": {1},
    "Split": {1}, "Where": {0}, "QuantizeLinear": {1, 2}, "DequantizeLinear": {1, 2}, "ConstantOfShape": {0}, "Pad": {1, 2, 3},
}
# ops whose output type is not the data type the table lists (comparisons give BOOL, Shape INT64, Q/DQ convert)
_UNCHECKED_OUTPUTS = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Shape", "Size", "QuantizeLinear", "DequantizeLinear"}
# ops whose data inputs must share one type in a strongly typed network
_SAME_TYPE = {"Add", "Sub", "Mul", "Div", "Max", "Min", "Pow", "MatMul", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Concat", "Sum", "Where", "LayerNormalization"}
# (op, input index) that must be initializers
_CONSTANT_INPUTS = {("CumSum", 1), ("ReduceSum", 1), ("ReduceL2", 1), ("ReduceMean", 1), ("Unsqueeze", 1), ("Squeeze", 1), ("QuantizeLinear", 1), ("QuantizeLinear", 2), ("DequantizeLinear", 1), ("DequantizeLinear", 2)}


@lru_cache(maxsize=1)
def operator_table() -> dict:
    text = resources.files("seaembed.export").joinpath("data/onnx_tensorrt_ops.json").read_text(encoding="utf-8")
    return json.loads(text)


class _Graph:
    def __init__(self, model: onnx.ModelProto):
        self.problems: list[str] = []
        try:
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        except onnx.shape_inference.InferenceError as err:  # a graph TensorRT's parser would not type either
            self.problems.append(f"ONNX shape inference fails: {str(err).splitlines()[0]}")
            inferred = model
        graph = inferred.graph
        self.initializers = {t.name: t for t in graph.initializer}
        self.types = {t.name: t.data_type for t in graph.initializer}
        for value in [*graph.input, *graph.value_info, *graph.output]:
            if value.type.tensor_type.elem_type:
                self.types[value.name] = value.type.tensor_type.elem_type
        self.producer = {out: node for node in graph.node for out in node.output}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in graph.node:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.nodes = list(graph.node)

    def type_name(self, tensor: str) -> str:
        return TYPE_NAMES.get(self.types.get(tensor, 0), f"unknown({self.types.get(tensor)})")

    def is_zero_int8(self, tensor: str) -> bool:
        init = self.initializers.get(tensor)
        return init is not None and init.data_type == TensorProto.INT8 and not onnx.numpy_helper.to_array(init).any()

    def is_scalar(self, tensor: str) -> bool:
        init = self.initializers.get(tensor)
        return init is not None and len(init.dims) == 0


def _attr(node: onnx.NodeProto, name: str, default=None):
    for attribute in node.attribute:
        if attribute.name == name:
            return onnx.helper.get_attribute_value(attribute)
    return default


def _check_types(g: _Graph, node: onnx.NodeProto, supported: set[str]) -> list[str]:
    problems = []
    skip = _NON_DATA_INPUTS.get(node.op_type, set())
    tensors = [(f"input {i}", t) for i, t in enumerate(node.input) if t and i not in skip]
    if node.op_type not in _UNCHECKED_OUTPUTS:
        tensors += [(f"output {i}", t) for i, t in enumerate(node.output) if t]
    for where, tensor in tensors:
        kind = g.type_name(tensor)
        if kind not in supported:
            problems.append(f"{node.op_type} node {node.name!r}: {where} {tensor!r} is {kind}; onnx-tensorrt's {node.op_type} takes {', '.join(sorted(supported))}")
    if node.op_type in _SAME_TYPE:
        kinds = {g.type_name(t) for i, t in enumerate(node.input) if t and i not in skip}
        if len(kinds) > 1:
            problems.append(f"{node.op_type} node {node.name!r} mixes {sorted(kinds)}: a strongly typed network needs an explicit Cast")
    return problems


def _check_qdq(g: _Graph, node: onnx.NodeProto) -> list[str]:
    problems = []
    x, scale = node.input[0], node.input[1]
    zero = node.input[2] if len(node.input) > 2 else ""
    if zero and not g.is_zero_int8(zero):
        problems.append(f"{node.op_type} {node.name!r}: zero point {zero!r} must be an int8 initializer of zeros (symmetric int8)")
    float_side = x if node.op_type == "QuantizeLinear" else node.output[0]
    if g.types.get(float_side) != g.types.get(scale):
        problems.append(f"{node.op_type} {node.name!r}: {float_side!r} is {g.type_name(float_side)} but its scale is {g.type_name(scale)}")
    if node.op_type == "QuantizeLinear":
        if not g.is_scalar(scale):
            problems.append(f"QuantizeLinear {node.name!r}: activations are quantised per tensor; per-channel scales belong on weights only")
        producer = g.producer.get(x)
        if producer is not None and producer.op_type == "MatMul":
            problems.append(f"QuantizeLinear {node.name!r} quantises the output of MatMul {producer.name!r}: TensorRT fuses Q/DQ on matmul inputs only")
        if any(c.op_type != "DequantizeLinear" for c in g.consumers.get(node.output[0], [])):
            problems.append(f"QuantizeLinear {node.name!r} feeds something other than DequantizeLinear")
    else:
        from_weight = x in g.initializers
        producer = g.producer.get(x)
        if not from_weight and (producer is None or producer.op_type != "QuantizeLinear"):
            problems.append(f"DequantizeLinear {node.name!r}: input is neither a weight nor a QuantizeLinear output")
        if not g.is_scalar(scale) and not from_weight:
            problems.append(f"DequantizeLinear {node.name!r}: per-channel scale on an activation (per-channel only on weights)")
    return problems


def check_model(model: onnx.ModelProto) -> list[str]:
    """Every reason TensorRT (10.x/11.x, strongly typed) would refuse or mistype this graph; empty when ready."""
    table = operator_table()
    problems = []
    for opset in model.opset_import:
        if opset.domain not in ("", "ai.onnx"):
            problems.append(f"opset domain {opset.domain!r}: TensorRT's parser has only the standard ONNX operators")
        elif not table["opset_min"] <= opset.version <= table["opset_max"]:
            problems.append(f"opset {opset.version} is outside onnx-tensorrt's {table['opset_min']}-{table['opset_max']}")
    g = _Graph(model)
    problems += g.problems
    for node in g.nodes:
        entry = table["operators"].get(node.op_type)
        if node.domain not in ("", "ai.onnx") or entry is None or not entry["supported"]:
            problems.append(f"{node.domain or 'onnx'}::{node.op_type} node {node.name!r} is not supported by onnx-tensorrt")
            continue
        problems += _check_types(g, node, set(entry["types"]))
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            problems += _check_qdq(g, node)
        if node.op_type == "Cast":
            inner = g.producer.get(node.input[0])
            if inner is not None and inner.op_type == "Cast" and g.types.get(inner.input[0]) == _attr(node, "to"):
                problems.append(f"Cast {inner.name!r} → Cast {node.name!r} is a {g.type_name(inner.input[0])} round trip with nothing between")
        for index, tensor in enumerate(node.input):
            if (node.op_type, index) in _CONSTANT_INPUTS and tensor and tensor not in g.initializers:
                problems.append(f"{node.op_type} {node.name!r}: input {index} ({tensor!r}) must be an initializer for TensorRT")
    return problems


def check_file(path: Path) -> list[str]:
    return check_model(onnx.load(str(path), load_external_data=False))


def table_summary() -> str:
    table = operator_table()
    return f"onnx-tensorrt table {table['source']} (TensorRT {table['tensorrt']}, opset {table['opset_min']}-{table['opset_max']})"
