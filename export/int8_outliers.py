"""The FFN's outlier channels, kept float, so the rest of the FFN runs int8.

The FFN down projection's input (the GELU output) has a few channels whose values on some tokens (the
sequence's special tokens) are 10-70x the rest: trained e5-small's layer 4 peaks at 69 where 99 % of
channels stay under 3.7. An int8 scale sized for them leaves the other channels a few levels, which is
why the down projections used to stay float (a third of the FFN's multiply-adds). Here the
`OUTLIER_CHANNELS` channels with the largest calibration peaks leave the int8 path altogether:

    up:   MatMul(h, W1) -> act(., c)                  W1 and an added c zeroed there: act(0) = 0 for GELU
    down: MatMul(., W2)                               W2 with the outlier rows zeroed
    side: MatMul(h, W1[:, o]) -> act(., c[o]) -> MatMul(., W2[o, :])   float, o = the outliers
    out:  Add(down, side)

`act` is whatever elementwise chain joins the two MatMuls: BiasGelu in the ORT-fused graph (the dynamic
INT8 graph's source), Add-Div-Erf-Add-Mul-Mul in the plain graph (OpenVINO's source); `c` are its
per-channel constants (the up projection's bias). The float side path is 2 x 32 / 4096 of the FFN's work
at XLM-R-large's size and touches no full-width tensor; the int8 GEMMs see activations without the
outliers, and their weight scales no longer cover the outlier rows. Exact before quantisation: W2's
zeroed rows drop whatever the main path leaves in those channels.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

OUTLIER_CHANNELS = 32
# Ops a channel passes through on its own: the chain can be cloned for a subset of channels.
ELEMENTWISE = frozenset({"Add", "Sub", "Mul", "Div", "Erf", "Tanh", "Sigmoid", "Pow", "Sqrt", "Relu", "Gelu", "BiasGelu", "FastGelu"})
MAX_CHAIN = 12
# Where a per-channel constant is added, the main path's copy is zeroed (so the outlier channels carry act(0) = 0
# into the int8 GEMM, not act(bias)); a constant a channel is multiplied or divided by stays as it is: 0 x c = 0,
# and a zeroed divisor would make inf x 0 = NaN in the down projection.
ADDITIVE = frozenset({"Add", "Sub", "BiasGelu", "FastGelu"})


@dataclass(frozen=True)
class FfnBlock:
    """One layer's FFN: MatMul(h, W1) -> an elementwise chain -> MatMul(., W2), weights constant."""

    up: onnx.NodeProto
    chain: tuple[onnx.NodeProto, ...]  # in graph order
    down: onnx.NodeProto

    @property
    def activation(self) -> str:
        """The down projection's input (the GELU output), whose channel peaks pick the outliers."""
        return self.down.input[0]


def ffn_blocks(model: onnx.ModelProto) -> list[FfnBlock]:
    """Every FFN of that shape in graph order. Nothing else matches: attention's MatMuls are joined by
    Reshape/Transpose/Softmax, the embeddings and pooling by no constant-weight MatMul pair."""
    weights = {i.name: i for i in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in model.graph.output}
    position = {id(node): i for i, node in enumerate(model.graph.node)}
    blocks = []
    for down in model.graph.node:
        if down.op_type != "MatMul" or down.input[1] not in weights:
            continue
        block = _block_ending_at(down, weights, producer)
        if block is not None and _is_closed(block, weights, consumers, graph_outputs):
            blocks.append(FfnBlock(block.up, tuple(sorted(block.chain, key=lambda n: position[id(n)])), block.down))
    return blocks


def _block_ending_at(down: onnx.NodeProto, weights: dict, producer: dict) -> FfnBlock | None:
    chain: list[onnx.NodeProto] = []
    ups: set[int] = set()
    pending = [down.input[0]]
    while pending:
        node = producer.get(pending.pop())
        if node is None:
            return None  # a graph input
        if node.op_type == "MatMul" and node.input[1] in weights:
            ups.add(id(node))
            up = node
        elif node.op_type in ELEMENTWISE and node.domain in ("", "ai.onnx", "com.microsoft"):
            if all(node is not seen for seen in chain):
                chain.append(node)
                pending += [i for i in node.input if i and i not in weights]
        else:
            return None
        if len(chain) > MAX_CHAIN:
            return None
    if len(ups) != 1 or not chain:
        return None
    return FfnBlock(up, tuple(chain), down)


def _is_closed(block: FfnBlock, weights: dict, consumers: dict, graph_outputs: set[str]) -> bool:
    """Nothing outside the block reads the up projection, the chain or its per-channel constants, and every
    constant of the chain is a scalar or one value per channel: zeroing channels changes nothing else."""
    width = weights[block.up.input[1]].dims[-1]
    if weights[block.down.input[1]].dims[0] != width:
        return False
    inside = {id(n) for n in (*block.chain, block.down)}
    for node in (block.up, *block.chain):
        if any(o in graph_outputs or any(id(c) not in inside for c in consumers.get(o, [])) for o in node.output):
            return False
    for node in block.chain:
        for name in node.input:
            if name not in weights:
                continue
            dims = list(weights[name].dims)
            if int(np.prod(dims)) == 1:
                continue
            if dims[-1] != width or int(np.prod(dims)) != width:
                return False
            if any(id(c) not in inside for c in consumers.get(name, [])):
                return False
    return True


def channel_peaks(source: Path, activations: list[str], batches: Iterable[dict[str, np.ndarray]]) -> list[np.ndarray]:
    """Max |value| per channel of each tensor in `activations` (e.g. FfnBlock.activation) over the real tokens of
    `batches` (the calibration set), one array per tensor.

    source: the float graph file the tensors are in. The probe (that graph with them as outputs) is written
    beside it, so its external weight file resolves without being copied.
    """
    import onnxruntime as ort

    probe = onnx.load(str(source), load_external_data=False)
    del probe.graph.output[:]
    probe.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None) for name in activations)
    options = ort.SessionOptions()
    # the graph is already fused; further rewrites could rename or fold the probed tensors
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    with tempfile.NamedTemporaryFile(dir=source.parent, prefix=".peaks-", suffix=".onnx") as probe_file:
        onnx.save(probe, probe_file.name)
        session = ort.InferenceSession(probe_file.name, options, providers=["CPUExecutionProvider"])
    peaks: list[np.ndarray | None] = [None] * len(activations)
    for batch in batches:
        real = batch["attention_mask"].astype(bool)
        for i, values in enumerate(session.run(list(activations), batch)):
            peak = np.abs(values[real]).max(axis=0)
            peaks[i] = peak if peaks[i] is None else np.maximum(peaks[i], peak)
    if any(p is None for p in peaks):
        raise ValueError("channel_peaks: no calibration batch")
    return peaks


def split_outlier_channels(model: onnx.ModelProto, blocks: list[FfnBlock], peaks: list[np.ndarray], channels: int = OUTLIER_CHANNELS) -> list[str]:
    """Rewrite each block as the module docstring draws it (in place); returns the float side MatMuls' names,
    which the quantiser must leave float."""
    weights = {i.name: i for i in model.graph.initializer}
    float_matmuls = []
    for block, peak in zip(blocks, peaks, strict=True):
        w1, w2 = numpy_helper.to_array(weights[block.up.input[1]]), numpy_helper.to_array(weights[block.down.input[1]])
        width = w1.shape[1]
        if peak.shape != (width,):
            raise ValueError(f"{block.down.name}: {peak.shape[0]} channel peaks for {width} channels")
        outliers = np.sort(np.argsort(-peak, kind="stable")[: min(channels, width)])
        prefix = block.down.name + "_outliers"
        side = {f"{prefix}_w1": w1[:, outliers], f"{prefix}_w2": w2[outliers, :]}
        kept = {block.up.input[1]: w1.copy(), block.down.input[1]: w2.copy()}
        kept[block.up.input[1]][:, outliers] = 0
        kept[block.down.input[1]][outliers, :] = 0
        multiplied = {name for node in block.chain if node.op_type not in ADDITIVE for name in node.input}
        renamed = {block.up.output[0]: f"{prefix}_up"}
        nodes = [helper.make_node("MatMul", [block.up.input[0], f"{prefix}_w1"], [f"{prefix}_up"], name=f"{prefix}_up")]
        for step, node in enumerate(block.chain):
            inputs = []
            for name in node.input:
                if name in renamed:
                    inputs.append(renamed[name])
                elif name in weights and int(np.prod(weights[name].dims)) > 1:  # one value per channel (checked by ffn_blocks)
                    value = numpy_helper.to_array(weights[name])
                    side[f"{prefix}_{name}"] = value[..., outliers]
                    if name not in multiplied:
                        kept[name] = value.copy()
                        kept[name][..., outliers] = 0
                    inputs.append(f"{prefix}_{name}")
                else:
                    inputs.append(name)
            outputs = [f"{prefix}_{o}" for o in node.output]
            renamed.update(zip(node.output, outputs, strict=True))
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            nodes.append(helper.make_node(node.op_type, inputs, outputs, name=f"{prefix}_{node.name or node.op_type + str(step)}", domain=node.domain, **attributes))
        for name, value in kept.items():
            weights[name].CopyFrom(numpy_helper.from_array(value, name))
        model.graph.initializer.extend(numpy_helper.from_array(np.ascontiguousarray(v), k) for k, v in side.items())
        result = block.down.output[0]
        block.down.output[0] = f"{prefix}_int8_part"
        nodes += [
            helper.make_node("MatMul", [renamed[block.down.input[0]], f"{prefix}_w2"], [f"{prefix}_down"], name=f"{prefix}_down"),
            helper.make_node("Add", [block.down.output[0], f"{prefix}_down"], [result], name=f"{prefix}_sum"),
        ]
        position = next(i for i, node in enumerate(model.graph.node) if node.name == block.down.name) + 1
        for offset, node in enumerate(nodes):
            model.graph.node.insert(position + offset, node)
        float_matmuls += [f"{prefix}_up", f"{prefix}_down"]
    return float_matmuls
