"""INT8 graphs with ONNX Runtime's quantiser.

- dynamic: weights int8 per channel, activations quantised at run time. Built from the
  fused ORT graph, so attention runs as QAttention. CPU/ORT only.
- static QDQ: symmetric int8 weights (per channel) and activations (per tensor, from a
  multilingual calibration set), Q/DQ pairs around MatMul inputs only: the layout
  TensorRT's strongly typed INT8 expects, and one ORT CPU also runs.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import onnx

from .onnx_graph import save_with_external_data


def calibration_texts() -> list[str]:
    text = resources.files("seaembed.export").joinpath("data/calibration.txt").read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


def calibration_batches(tokenizer, batch_size: int = 8) -> Iterator[dict[str, np.ndarray]]:
    """(input_ids, attention_mask) batches of the calibration set, tokenized as the runtime does.

    Every batch is padded to the same width: ORT's histogram calibrators stack activations
    across batches and need one shape.
    """
    prompts = [None, *sorted(tokenizer.prompts)]
    sequences = [tokenizer.encode(t, prompt_name=prompts[i % len(prompts)]) for i, t in enumerate(calibration_texts())]
    width = max(len(s) for s in sequences)
    for start in range(0, len(sequences) - batch_size + 1, batch_size):
        chunk = sequences[start : start + batch_size]
        input_ids = np.full((len(chunk), width), tokenizer.pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(chunk), width), dtype=np.int64)
        for row, seq in enumerate(chunk):
            input_ids[row, : len(seq)] = seq
            attention_mask[row, : len(seq)] = 1
        yield {"input_ids": input_ids, "attention_mask": attention_mask}


class _Reader:
    """onnxruntime.quantization.CalibrationDataReader over prepared batches."""

    def __init__(self, batches: list[dict[str, np.ndarray]]):
        self._batches = iter(batches)

    def get_next(self):
        return next(self._batches, None)


def _resave(tmp_model: Path, dst: Path, data_file: str) -> None:
    model = onnx.load(str(tmp_model), load_external_data=True)
    save_with_external_data(model, dst, data_file)


def quantize_dynamic_int8(src: Path, dst: Path, data_file: str, nodes_to_exclude: tuple[str, ...] = (), reduce_range: bool = True) -> None:
    """reduce_range=False with no exclusions is the all-int8 graph shipped before (kept for the benchmark's comparison row)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.onnx"
        quantize_dynamic(
            str(src),
            str(out),
            op_types_to_quantize=["MatMul", "Attention"],
            per_channel=True,
            # 7-bit weights: CPUs without VNNI multiply u8 x s8 with VPMADDUBSW, whose int16
            # pair sums saturate at full range (measured on an AVX2-only EPYC: lower cosines).
            reduce_range=reduce_range,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(nodes_to_exclude),
            use_external_data_format=True,
            # shape inference cannot type contrib-op outputs (Attention, SkipLayerNormalization)
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        _resave(out, dst, data_file)


def quantize_static_qdq(
    src: Path,
    dst: Path,
    data_file: str,
    batches: list[dict[str, np.ndarray]],
    nodes_to_exclude: tuple[str, ...] = (),
    method: str = "minmax",
) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile, "entropy": CalibrationMethod.Entropy}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "model.onnx"
        quantize_static(
            str(src),
            str(out),
            _Reader(batches),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(nodes_to_exclude),
            use_external_data_format=True,
            calibrate_method=methods[method],
            extra_options={
                "ActivationSymmetric": True,
                "WeightSymmetric": True,
                "MatMulConstBOnly": False,
                "CalibTensorRangeSymmetric": True,
                "CalibMovingAverage": False,
            },
        )
        _resave(out, dst, data_file)


def static_exclusions(path: Path) -> tuple[str, ...]:
    """MatMuls the static QDQ graph keeps in float, chosen by measurement on trained e5-small.

    Per-tensor int8 activations fail on the FFN: its input (LayerNorm output) and the GELU
    output feeding the down projection carry outlier channels. Measured on the held-out set
    (mean / min cosine, recall@1 vs FP32's 0.9318): everything int8 0.937 / 0.886 / 0.750;
    FFN down projection and attention score/context matmuls in float 0.991 / 0.980 / 0.909;
    both FFN matmuls and score/context in float 0.9988 / 0.9982 / 0.9318.
    """
    model = onnx.load(str(path), load_external_data=False)
    keep_float = (".scores", ".context", ".intermediate.dense.", ".output.dense.")
    return tuple(
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and any(k in n.name for k in keep_float) and ".attention.output.dense." not in n.name
    )


def dynamic_exclusions(path: Path) -> tuple[str, ...]:
    """MatMuls the dynamic int8 graph keeps in float: the FFN down projections.

    Their input is the GELU output, whose outlier channels a per-call int8 scale cannot hold.
    Measured on trained e5-small, AVX2-only EPYC, held-out set (mean / min cosine, recall@1 vs
    FP32's 0.9318) at batch 1 / 4 / 8 / 16: all int8 0.9968 / 0.9928 / 0.9318 at batch 1 but
    0.9091 at 4, 8 and 16 (one pair lost: the scale depends on batch-mates); FFN down in float
    0.9988 / 0.9980 / 0.9318 at every batch size.
    """
    model = onnx.load(str(path), load_external_data=False)
    return tuple(
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and n.input[1].endswith(".output.dense.weight_t") and ".attention." not in n.input[1]
    )
