"""The FFN's outlier channels, kept float, so the rest of the FFN runs int8 with per-call activation scales.

The FFN down projection's input (the GELU output) has a few channels whose values on some tokens (the
sequence's special tokens) are 10-70x the rest: trained e5-small's layer 4 peaks at 69 where 99 % of
channels stay under 3.7. A per-call int8 scale sized for them leaves the other channels a few levels,
which is why the down projections used to stay float (a third of the FFN's multiply-adds). Here the
`OUTLIER_CHANNELS` channels with the largest calibration peaks leave the int8 path altogether:

    up:   MatMul(h, W1) -> BiasGelu(., b1)         W1, b1 with the outlier columns zeroed: GELU(0) = 0
    down: MatMul(., W2)                            W2 with the outlier rows zeroed
    side: MatMul(h, W1[:, o]) -> BiasGelu(., b1[o]) -> MatMul(., W2[o, :])   float, o = the outliers
    out:  Add(down, side)

The float side path is 2 x 32 / 4096 of the FFN's work at XLM-R-large's size and touches no
full-width tensor; the int8 GEMMs see activations without the outliers, and their weight scales no
longer cover the outlier rows.
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


@dataclass(frozen=True)
class FfnBlock:
    """One layer's FFN in the ORT-fused graph: MatMul(h, W1) -> BiasGelu(., b1) -> MatMul(., W2)."""

    up: onnx.NodeProto
    gelu: onnx.NodeProto
    down: onnx.NodeProto

    @property
    def activation(self) -> str:
        """The GELU output: the down projection's input, whose channel peaks pick the outliers."""
        return self.gelu.output[0]


def ffn_blocks(model: onnx.ModelProto) -> list[FfnBlock]:
    """Every FFN of that shape with constant weights, in graph order (nothing else matches)."""
    initializers = {i.name for i in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    blocks = []
    for down in model.graph.node:
        if down.op_type != "MatMul" or down.input[1] not in initializers:
            continue
        gelu = producer.get(down.input[0])
        if gelu is None or gelu.op_type != "BiasGelu" or gelu.input[1] not in initializers:
            continue
        up = producer.get(gelu.input[0])
        if up is not None and up.op_type == "MatMul" and up.input[1] in initializers:
            blocks.append(FfnBlock(up, gelu, down))
    return blocks


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
        w1, b1, w2 = (numpy_helper.to_array(weights[name]) for name in (block.up.input[1], block.gelu.input[1], block.down.input[1]))
        if peak.shape != (w1.shape[1],):
            raise ValueError(f"{block.gelu.name}: {peak.shape[0]} channel peaks for {w1.shape[1]} channels")
        outliers = np.sort(np.argsort(-peak, kind="stable")[: min(channels, peak.shape[0])])
        prefix = block.down.name + "_outliers"
        side = {f"{prefix}_w1": w1[:, outliers], f"{prefix}_b1": b1[outliers], f"{prefix}_w2": w2[outliers, :]}
        w1, b1, w2 = w1.copy(), b1.copy(), w2.copy()
        w1[:, outliers], b1[outliers], w2[outliers, :] = 0, 0, 0
        for name, value in ((block.up.input[1], w1), (block.gelu.input[1], b1), (block.down.input[1], w2)):
            weights[name].CopyFrom(numpy_helper.from_array(value, name))
        model.graph.initializer.extend(numpy_helper.from_array(np.ascontiguousarray(v), k) for k, v in side.items())
        result = block.down.output[0]
        block.down.output[0] = f"{prefix}_int8_part"
        new_nodes = [
            helper.make_node("MatMul", [block.up.input[0], f"{prefix}_w1"], [f"{prefix}_up"], name=f"{prefix}_up"),
            helper.make_node("BiasGelu", [f"{prefix}_up", f"{prefix}_b1"], [f"{prefix}_gelu"], name=f"{prefix}_gelu", domain="com.microsoft"),
            helper.make_node("MatMul", [f"{prefix}_gelu", f"{prefix}_w2"], [f"{prefix}_down"], name=f"{prefix}_down"),
            helper.make_node("Add", [block.down.output[0], f"{prefix}_down"], [result], name=f"{prefix}_sum"),
        ]
        position = next(i for i, node in enumerate(model.graph.node) if node.name == block.down.name) + 1
        for offset, node in enumerate(new_nodes):
            model.graph.node.insert(position + offset, node)
        float_matmuls += [f"{prefix}_up", f"{prefix}_down"]
    return float_matmuls
