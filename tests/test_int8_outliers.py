"""The dynamic INT8 graph's FFN split (export/int8_outliers.py): exact in float, int8 everywhere else, gated,
and the graph shipped before it when the split one misses the gate."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from seaembed.export import int8_outliers
from seaembed.export.parity import ParityError
from seaembed.runtime import Embedder
from seaembed.runtime.manifest import load_manifest


def _run(model_or_path, feeds) -> np.ndarray:
    import onnxruntime as ort

    source = model_or_path.SerializeToString() if isinstance(model_or_path, onnx.ModelProto) else str(model_or_path)
    session = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
    return session.run(["sentence_embedding"], feeds)[0]


def _feeds(tokenizer, texts) -> dict[str, np.ndarray]:
    from seaembed.runtime.batching import pad_batch

    return dict(zip(("input_ids", "attention_mask"), pad_batch([tokenizer.encode(t) for t in texts], tokenizer.pad_id), strict=True))


@pytest.fixture(scope="module")
def tiny_fused(tmp_path_factory, tiny_checkpoint):
    from seaembed.export import export_bundle

    out = tmp_path_factory.mktemp("split") / "bundle"
    export_bundle(str(tiny_checkpoint), out, precisions=("fp32",))
    return out


def test_split_graph_equals_the_float_graph_before_quantisation(tiny_fused, corpus):
    """Zeroed up-projection columns give GELU(0) = 0 in the main path; the side path adds those channels back."""
    source = tiny_fused / "model.fp32.ort.onnx"
    original = onnx.load(str(source))
    split = onnx.load(str(source))
    blocks = int8_outliers.ffn_blocks(split)
    assert len(blocks) == 2  # one FFN per layer of the tiny model
    width = numpy_helper.to_array(next(i for i in split.graph.initializer if i.name == blocks[0].up.input[1])).shape[1]
    peaks = [np.random.default_rng(seed).random(width) for seed in range(len(blocks))]
    float_matmuls = int8_outliers.split_outlier_channels(split, blocks, peaks, channels=5)
    assert len(float_matmuls) == 4
    weights = {i.name: numpy_helper.to_array(i) for i in split.graph.initializer}
    chosen = np.sort(np.argsort(-peaks[0])[:5])
    assert not weights[blocks[0].up.input[1]][:, chosen].any() and not weights[blocks[0].down.input[1]][chosen].any()
    assert weights[blocks[0].down.name + "_outliers_w1"].shape == (weights[blocks[0].up.input[1]].shape[0], 5)
    tokenizer = Embedder.load(tiny_fused).tokenizer
    feeds = _feeds(tokenizer, corpus[:6])
    assert np.max(np.abs(_run(split, feeds) - _run(original, feeds))) < 1e-5


def test_calibration_peaks_find_the_outlier_channels_of_trained_e5_small(e5_small_bundle):
    """Trained e5-small's GELU outputs peak 10x above the typical channel in a few channels: those are the ones split off."""
    from seaembed.export.quantize import calibration_batches

    source = e5_small_bundle / "model.fp32.ort.onnx"
    blocks = int8_outliers.ffn_blocks(onnx.load(str(source), load_external_data=False))
    assert len(blocks) == 12
    tokenizer = Embedder.load(e5_small_bundle, artifact="onnx-fp32-ort").tokenizer
    peaks = int8_outliers.channel_peaks(source, [b.activation for b in blocks], calibration_batches(tokenizer))
    assert [p.shape for p in peaks] == [(1536,)] * 12
    ratios = [p.max() / np.percentile(p, 99) for p in peaks]
    assert max(ratios) > 10  # measured: layer 4 peaks at 69 where 99 % of channels stay under 3.7
    for peak in peaks:  # the split takes each layer's largest peaks
        kept = np.sort(peak)[-int8_outliers.OUTLIER_CHANNELS :]
        assert peak.argmax() in np.flatnonzero(np.isin(peak, kept))


def test_e5_small_int8_graph_is_int8_but_for_the_side_paths(e5_small_bundle):
    """The trained model keeps the split recipe (measured: mean cosine 0.9986, recall@1 = FP32's, top-1 agreement
    0.86 on an EPYC Zen 4): every big MatMul int8, two 32-channel float MatMuls per layer."""
    entry = next(a for a in load_manifest(e5_small_bundle).artifacts if a.name == "onnx-int8-dynamic")
    assert entry.parity["passed"] is True
    graph = onnx.load(str(e5_small_bundle / entry.file), load_external_data=False)
    ops = [n.op_type for n in graph.graph.node]
    if entry.details["recipe"] == "ffn-down-float":
        # Kept on the Zen 4 it was measured on; a near-tie retrieval pair may flip on another CPU's float kernels.
        # Then the export must have shipped the earlier graph, gated, with the split graph's miss recorded.
        assert "misses the accuracy gate" in entry.details["split_ffn_missed_gate"]
        assert ops.count("DequantizeLinear") == 12 and not any("_outliers_" in n.name for n in graph.graph.node)
        return
    assert entry.details["recipe"] == "split-ffn" and entry.details["ffn_split"] == 12
    assert ops.count("QAttention") == 12 and ops.count("MatMulInteger") == 36  # attention out, FFN up, FFN down
    float_matmuls = [n for n in graph.graph.node if n.op_type == "MatMul"]
    assert len(float_matmuls) == 24 and all("_outliers_" in n.name for n in float_matmuls)
    assert "DequantizeLinear" not in ops  # nothing left for the float-weight storage pass


def test_a_split_graph_missing_its_gate_ships_the_float_ffn_down_graph(tiny_checkpoint, tmp_path, monkeypatch):
    """The gate's verdict is forced (a random tiny model has no quality to gate); the fallback graph is built,
    gated and loaded for real, and the manifest says why it was kept."""
    from seaembed.export import export_bundle
    from seaembed.export.builders import onnx_int8_dynamic

    real_gate = onnx_int8_dynamic.gate_int8_graph
    verdicts = []

    def gate(context, name, graph_file, details, batch_capped):
        verdicts.append(details["recipe"])
        if details["recipe"] == "split-ffn":
            raise ParityError("onnx-int8-dynamic misses the accuracy gate on 88 held-out texts: recall@1 0.9091 is 2.3 points below FP32's 0.9318")
        return real_gate(context, name, graph_file, details, batch_capped)

    monkeypatch.setattr(onnx_int8_dynamic, "gate_int8_graph", gate)
    out = tmp_path / "bundle"
    export_bundle(str(tiny_checkpoint), out, precisions=("fp32", "int8"), accuracy_gates=False)
    assert verdicts == ["split-ffn", "ffn-down-float"]
    entry = next(a for a in load_manifest(out).artifacts if a.name == "onnx-int8-dynamic")
    assert entry.details["recipe"] == "ffn-down-float" and entry.details["matmuls_kept_float"] == 2
    assert "recall@1 0.9091" in entry.details["split_ffn_missed_gate"]
    graph = onnx.load(str(out / entry.file), load_external_data=False)
    assert not any("_outliers_" in n.name for n in graph.graph.node)
    vectors = Embedder.load(out, artifact="onnx-int8-dynamic").encode(["query: a test", "passage: another"])
    assert vectors.shape[0] == 2 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)


def _chain_graph(extra_reader: bool) -> onnx.ModelProto:
    """h[*, 8] -> MatMul W1[8, 16] -> Add b -> Div d (per channel) -> Tanh -> Mul 0.5 -> MatMul W2[16, 8]."""
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    weights = {
        "w1": rng.normal(size=(8, 16)),
        "b": rng.normal(size=16),
        "d": rng.uniform(0.5, 2.0, size=16),
        "half": np.array(0.5),
        "w2": rng.normal(size=(16, 8)),
    }
    nodes = [
        helper.make_node("MatMul", ["h", "w1"], ["up"], name="up"),
        helper.make_node("Add", ["up", "b"], ["biased"], name="bias"),
        helper.make_node("Div", ["biased", "d"], ["scaled"], name="scale"),
        helper.make_node("Tanh", ["scaled"], ["act"], name="tanh"),
        helper.make_node("Mul", ["act", "half"], ["halved"], name="halve"),
        helper.make_node("MatMul", ["halved", "w2"], ["y"], name="down"),
    ]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    if extra_reader:  # something outside the FFN reads the chain: zeroing channels would change it
        nodes.append(helper.make_node("Identity", ["scaled"], ["leak"], name="leak"))
        outputs.append(helper.make_tensor_value_info("leak", TensorProto.FLOAT, None))
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("h", TensorProto.FLOAT, [None, 8])],
        outputs,
        [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_any_elementwise_chain_splits_exactly_and_a_divisor_is_never_zeroed():
    """The plain graph's GELU is a chain of elementwise ops; a per-channel bias is zeroed in the main path, a
    per-channel divisor is not (a zero divisor would give inf x 0 = NaN in the down projection)."""
    import onnxruntime as ort

    assert int8_outliers.ffn_blocks(_chain_graph(extra_reader=True)) == []
    model = _chain_graph(extra_reader=False)
    original = model.SerializeToString()
    blocks = int8_outliers.ffn_blocks(model)
    assert len(blocks) == 1 and [n.op_type for n in blocks[0].chain] == ["Add", "Div", "Tanh", "Mul"]
    peak = np.zeros(16)
    peak[[3, 11]] = 1
    assert int8_outliers.split_outlier_channels(model, blocks, [peak], channels=2) == ["down_outliers_up", "down_outliers_down"]
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    assert not weights["b"][[3, 11]].any() and weights["d"][[3, 11]].all()
    assert weights["down_outliers_d"].shape == (2,) and "down_outliers_half" not in weights  # scalars are shared
    h = {"h": np.random.default_rng(1).normal(size=(5, 8)).astype(np.float32)}
    before = ort.InferenceSession(original, providers=["CPUExecutionProvider"]).run(["y"], h)[0]
    after = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(["y"], h)[0]
    assert np.isfinite(after).all() and np.max(np.abs(after - before)) < 1e-5
