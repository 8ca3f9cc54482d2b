"""INT8 graphs: the calibration set, and the dynamic graph with ONNX Runtime's quantiser.

- dynamic: weights int8 per channel, activations quantised at run time. Built from the
  fused ORT graph, so attention runs as QAttention. CPU/ORT only.
- static QDQ (TensorRT's INT8 input) is written by the graph builder on the FP16 layout,
  calibrated on calibration_batches(): see export/qdq.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import numpy as np
import onnx

from . import int8_outliers
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


def quantize_dynamic_int8_split_ffn(src: Path, dst: Path, data_file: str, tokenizer, channels: int = int8_outliers.OUTLIER_CHANNELS) -> int:
    """The dynamic int8 graph with every MatMul int8, the FFNs' outlier channels on a float side path
    (export/int8_outliers.py); returns how many FFNs were split (0: none matched, the graph is quantised whole)."""
    model = onnx.load(str(src), load_external_data=False)
    blocks = int8_outliers.ffn_blocks(model)
    peaks = int8_outliers.channel_peaks(src, [b.activation for b in blocks], calibration_batches(tokenizer)) if blocks else []
    model = onnx.load(str(src), load_external_data=True)
    blocks = int8_outliers.ffn_blocks(model)
    float_matmuls = int8_outliers.split_outlier_channels(model, blocks, peaks, channels)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        split = Path(tmp) / "split.onnx"
        save_with_external_data(model, split, "split.onnx.data")
        del model
        quantize_dynamic_int8(split, dst, data_file, nodes_to_exclude=tuple(float_matmuls))
    return len(blocks)


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
