"""Build the encoder's ONNX graph directly from its weights.

Writing the graph ourselves (rather than tracing PyTorch) gives one graph for every
transformers version, names we control, and precision placed where we want it: the
FP16 variant keeps LayerNorm, GELU, pooling and normalisation in FP32 (XLM-R's
LayerNorm inputs overflow FP16) and writes attention as the FP16 block TensorRT fuses
(pre-scaled Q, MatMul, additive mask, Softmax, MatMul, no casts inside). The INT8 graph
is the FP16 graph with Q/DQ pairs on the inputs of the quantised matmuls (export/qdq.py).
Parity with PyTorch is checked after export.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .checkpoint import Architecture
from .int8_scales import activation_scale, quantize_weight

OPSET = 17
QDQ_OPSET = 19  # Q/DQ with float16 scales: DequantizeLinear-19 outputs its scale's type
INPUT_NAMES = ("input_ids", "attention_mask")
OUTPUT_NAMES = ("sentence_embedding", "pooled_embedding", "token_embeddings")
_FP32_MIN = float(np.finfo(np.float32).min)
# Padded keys' additive bias in FP16: finite (float32's min is -inf there), and exp() of it is 0.
_FP16_MASK = -10000.0


class GraphBuilder:
    """Nodes and initializers of one graph, in one compute precision.

    quantized: activation key → max |x| from calibration. The matmuls fed by those
    activations get int8 weights (per output channel) and a Q/DQ pair on their input.
    record_taps: remember the tensor behind each activation key (for calibration).
    """

    def __init__(self, precision: str, quantized: dict[str, float] | None = None, record_taps: bool = False):
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"graph precision must be fp32 or fp16, got {precision!r}")
        if quantized is not None and precision != "fp16":
            raise ValueError("the Q/DQ graph is built on the fp16 layout: pass precision='fp16'")
        self.precision = precision
        self.quantized = quantized
        self.opset = QDQ_OPSET if quantized is not None else OPSET
        self.taps: dict[str, str] | None = {} if record_taps else None
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0
        self._dequantized: dict[str, str] = {}

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, name: str, array: np.ndarray) -> str:
        # ascontiguousarray would turn a 0-d scalar into shape [1] (a per-channel scale of one channel to Q/DQ)
        array = np.asarray(array) if np.ndim(array) == 0 else np.ascontiguousarray(array)
        self.initializers.append(numpy_helper.from_array(array, name))
        return name

    def weight(self, name: str, array: np.ndarray) -> str:
        """A matmul weight, stored in the compute precision."""
        dtype = np.float16 if self.precision == "fp16" else np.float32
        return self.const(name, array.astype(dtype))

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def ms_op(self, op_type: str, inputs: list[str], hint: str, **attrs) -> str:
        """An ONNX Runtime contrib op (domain com.microsoft)."""
        out = self.name(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, domain="com.microsoft", **attrs))
        return out

    def skip_layer_norm(self, x: str, skip: str, weights: dict, prefix: str, eps: float) -> str:
        """LayerNorm(x + bias + skip) in one contrib op; `prefix` names the dense layer before it."""
        gamma = self.weight(f"{prefix}.LayerNorm.weight", weights[f"{prefix}.LayerNorm.weight"])
        beta = self.weight(f"{prefix}.LayerNorm.beta", weights[f"{prefix}.LayerNorm.bias"])
        bias = self.weight(f"{prefix}.dense.bias", weights[f"{prefix}.dense.bias"])
        return self.ms_op("SkipLayerNormalization", [x, skip, gamma, beta, bias], f"{prefix}.skip_ln", epsilon=eps)

    def to_compute(self, x: str) -> str:
        return self.op("Cast", [x], "to_fp16", to=TensorProto.FLOAT16) if self.precision == "fp16" else x

    def to_fp32(self, x: str) -> str:
        return self.op("Cast", [x], "to_fp32", to=TensorProto.FLOAT) if self.precision == "fp16" else x

    @property
    def compute_np(self):
        return np.float16 if self.precision == "fp16" else np.float32

    def tap(self, x: str, key: str) -> None:
        if self.taps is not None:
            self.taps[key] = x

    def matmul(self, x: str, weight_t: np.ndarray, name: str, key: str | None = None) -> str:
        """x @ weight_t, x already in the compute precision; int8 weights and a Q/DQ input when `key` is quantised."""
        if self.quantized is None or key not in self.quantized:
            return self.op("MatMul", [x, self.weight(f"{name}.weight_t", weight_t)], f"{name}.matmul")
        q_weight, scale = quantize_weight(weight_t)
        w = self.op(
            "DequantizeLinear",
            [self.const(f"{name}.weight_int8", q_weight), self.const(f"{name}.weight_scale", scale), self.const(f"{name}.weight_zero_point", np.zeros(scale.shape, np.int8))],
            f"{name}.weight_dq",
            axis=1,  # per output channel of the [in, out] weight
        )
        return self.op("MatMul", [self._dequantized_input(x, key), w], f"{name}.matmul")

    def _dequantized_input(self, x: str, key: str) -> str:
        """One Q/DQ pair per activation (Q, K and V share theirs), per-tensor symmetric int8."""
        if key not in self._dequantized:
            scale = self.const(f"{key}.input_scale", activation_scale(self.quantized[key]))
            zero = self.const(f"{key}.input_zero_point", np.array(0, dtype=np.int8))
            q = self.op("QuantizeLinear", [x, scale, zero], f"{key}.input_q")
            self._dequantized[key] = self.op("DequantizeLinear", [q, scale, zero], f"{key}.input_dq")
        return self._dequantized[key]

    def linear(self, x: str, weight: np.ndarray, bias: np.ndarray, name: str, key: str | None = None, compute_in: bool = False) -> str:
        """x @ weight.T + bias, fp32 out; x is fp32 unless compute_in (then already in the compute precision)."""
        xc = x if compute_in else self.to_compute(x)
        y = self.matmul(xc, weight.T, name, key)
        y = self.op("Add", [y, self.weight(f"{name}.bias", bias)], f"{name}.add")
        return self.to_fp32(y)

    def layer_norm(self, x: str, weights: dict, prefix: str, eps: float) -> str:
        gamma = self.const(f"{prefix}.weight", weights[f"{prefix}.weight"])
        beta = self.const(f"{prefix}.bias", weights[f"{prefix}.bias"])
        return self.op("LayerNormalization", [x, gamma, beta], f"{prefix}", axis=-1, epsilon=eps)


def input_embeddings(g: GraphBuilder, arch: Architecture, w: dict) -> str:
    """LayerNorm(word + position + token-type row 0), as BERT/XLM-R embed their input ids."""
    word = g.op("Gather", [g.const("embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"]), "input_ids"], "word")
    pos_table = g.const("embeddings.position_embeddings.weight", w["embeddings.position_embeddings.weight"])
    if arch.family == "xlm-roberta":
        # create_position_ids_from_input_ids: non-pad tokens count up from pad_id + 1. The count runs
        # in float32 (exact below 2**24): onnx-tensorrt's CumSum takes FP32/FP16/BF16 only.
        pad = g.const("pad_id", np.array(arch.pad_id, dtype=np.int64))
        not_pad = g.op("Cast", [g.op("Not", [g.op("Equal", ["input_ids", pad])])], "not_pad", to=TensorProto.FLOAT)
        axis = g.const("axis_1", np.array(1, dtype=np.int64))
        running = g.op("Mul", [g.op("CumSum", [not_pad, axis]), not_pad])
        offset = g.op("Add", [running, g.const("pad_id_f", np.array(arch.pad_id, dtype=np.float32))])
        positions = g.op("Cast", [offset], "position_ids", to=TensorProto.INT64)
    else:
        # positions 0..seq-1: the first rows of the table, broadcast over the batch
        seq_len = g.op("Shape", ["input_ids"], "seq_len", start=1, end=2)
        zero = g.const("zero_1d", np.array([0], dtype=np.int64))
        positions = None
    if positions is not None:
        pos = g.op("Gather", [pos_table, positions], "pos")
    else:
        pos = g.op("Slice", [pos_table, zero, seq_len, zero], "pos")
    # token_type_ids are all zero for these models: row 0 of the type table.
    type_row = g.const("embeddings.token_type_row0", w["embeddings.token_type_embeddings.weight"][0])
    summed = g.op("Add", [g.op("Add", [word, pos]), type_row], "emb_sum")
    return g.layer_norm(summed, w, "embeddings.LayerNorm", arch.layer_norm_eps)


def _attention(g: GraphBuilder, x: str, mask_bias: str, arch: Architecture, w: dict, p: str) -> str:
    """Self-attention in the compute precision, as the block TensorRT fuses into one attention kernel.

    Q arrives pre-scaled (1/sqrt(d) folded into its projection, which TensorRT's fusion asks
    for), then MatMul → Add(mask) → Softmax → MatMul with no cast in between.
    """
    head_dim = arch.hidden // arch.heads
    split_shape = g.const(f"{p}.split_shape", np.array([0, 0, arch.heads, head_dim], dtype=np.int64))
    merge_shape = g.const(f"{p}.merge_shape", np.array([0, 0, arch.hidden], dtype=np.int64))
    xc = g.to_compute(x)  # one cast shared by Q, K and V
    g.tap(xc, f"{p}.attention.self")

    def project(kind: str) -> str:
        name = f"{p}.attention.self.{kind}"
        weight, bias = w[f"{name}.weight"], w[f"{name}.bias"]
        if kind == "query":
            scale = 1.0 / math.sqrt(head_dim)
            weight, bias = weight * scale, bias * scale
        y = g.matmul(xc, weight.T, name, key=f"{p}.attention.self")
        y = g.op("Add", [y, g.weight(f"{name}.bias", bias)], f"{name}.add")
        return g.op("Reshape", [y, split_shape], f"{name}.split")

    q = g.op("Transpose", [project("query")], perm=[0, 2, 1, 3])
    k = g.op("Transpose", [project("key")], perm=[0, 2, 3, 1])
    v = g.op("Transpose", [project("value")], perm=[0, 2, 1, 3])
    scores = g.op("MatMul", [q, k], f"{p}.scores")
    probs = g.op("Softmax", [g.op("Add", [scores, mask_bias], f"{p}.masked_scores")], f"{p}.softmax", axis=-1)
    context = g.op("MatMul", [probs, v], f"{p}.context")
    context = g.op("Reshape", [g.op("Transpose", [context], perm=[0, 2, 1, 3]), merge_shape], f"{p}.merge")
    g.tap(context, f"{p}.attention.output.dense")
    name = f"{p}.attention.output.dense"
    out = g.linear(context, w[f"{name}.weight"], w[f"{name}.bias"], name, key=name, compute_in=True)
    return g.layer_norm(g.op("Add", [out, x]), w, f"{p}.attention.output.LayerNorm", arch.layer_norm_eps)


def _feed_forward(g: GraphBuilder, x: str, arch: Architecture, w: dict, p: str) -> str:
    h = g.linear(x, w[f"{p}.intermediate.dense.weight"], w[f"{p}.intermediate.dense.bias"], f"{p}.intermediate.dense")
    # exact GELU: 0.5 * h * (1 + erf(h / sqrt(2)))
    erf = g.op("Erf", [g.op("Div", [h, g.const(f"{p}.sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))])])
    gelu = g.op(
        "Mul",
        [g.op("Mul", [h, g.op("Add", [erf, g.const(f"{p}.one", np.array(1.0, dtype=np.float32))])]), g.const(f"{p}.half", np.array(0.5, dtype=np.float32))],
        f"{p}.gelu",
    )
    out = g.linear(gelu, w[f"{p}.output.dense.weight"], w[f"{p}.output.dense.bias"], f"{p}.output.dense")
    return g.layer_norm(g.op("Add", [out, x]), w, f"{p}.output.LayerNorm", arch.layer_norm_eps)


def _fused_layer(g: GraphBuilder, x: str, mask_index: str, arch: Architecture, w: dict, p: str) -> str:
    """One encoder layer in ONNX Runtime's contrib ops: Attention, SkipLayerNormalization, BiasGelu.

    In the fp16 variant every tensor is fp16; ORT's CUDA SkipLayerNormalization accumulates
    its statistics in fp32, which is what keeps XLM-R's LayerNorm from overflowing.
    """
    qkv = [f"{p}.attention.self.{k}" for k in ("query", "key", "value")]
    qkv_weight = g.weight(f"{p}.attention.qkv.weight", np.concatenate([w[f"{n}.weight"].T for n in qkv], axis=1))
    qkv_bias = g.weight(f"{p}.attention.qkv.bias", np.concatenate([w[f"{n}.bias"] for n in qkv]))
    context = g.ms_op("Attention", [x, qkv_weight, qkv_bias, mask_index], f"{p}.attention", num_heads=arch.heads)
    return fused_layer_tail(g, x, context, arch, w, p)


def fused_layer_tail(g: GraphBuilder, x: str, context: str, arch: Architecture, w: dict, p: str) -> str:
    """What follows attention in a fused layer: output projection, SkipLayerNormalization, BiasGelu FFN, SkipLayerNormalization."""
    out = g.op("MatMul", [context, g.weight(f"{p}.attention.output.dense.weight_t", w[f"{p}.attention.output.dense.weight"].T)])
    x = g.skip_layer_norm(out, x, w, f"{p}.attention.output", arch.layer_norm_eps)
    hidden = g.op("MatMul", [x, g.weight(f"{p}.intermediate.dense.weight_t", w[f"{p}.intermediate.dense.weight"].T)])
    gelu = g.ms_op("BiasGelu", [hidden, g.weight(f"{p}.intermediate.dense.bias", w[f"{p}.intermediate.dense.bias"])], f"{p}.gelu")
    out = g.op("MatMul", [gelu, g.weight(f"{p}.output.dense.weight_t", w[f"{p}.output.dense.weight"].T)])
    return g.skip_layer_norm(out, x, w, f"{p}.output", arch.layer_norm_eps)


def padding_bias(g: GraphBuilder, mask_f: str) -> str:
    """Additive mask [batch, 1, 1, seq] in the compute precision: 0 where attended, very negative where padded."""
    fill = _FP32_MIN if g.precision == "fp32" else _FP16_MASK
    inverted = g.op("Sub", [g.const("one_f", np.array(1.0, dtype=np.float32)), mask_f])
    bias = g.op("Mul", [inverted, g.const("mask_fill", np.array(fill, dtype=np.float32))])
    bias = g.op("Unsqueeze", [bias, g.const("axes_1_2", np.array([1, 2], dtype=np.int64))], "mask_bias")
    return g.to_compute(bias)  # cast once, shared by every layer


def mean_pool(g: GraphBuilder, x: str, mask_f: str, normalize: bool) -> None:
    """pooled_embedding (masked mean, as sentence-transformers' Pooling) and sentence_embedding outputs."""
    mask_3d = g.op("Unsqueeze", [mask_f, g.const("axes_2", np.array([2], dtype=np.int64))], "mask_3d")
    axes_1 = g.const("axes_1", np.array([1], dtype=np.int64))
    summed = g.op("ReduceSum", [g.op("Mul", [x, mask_3d]), axes_1], "masked_sum", keepdims=0)
    counts = g.op("Max", [g.op("ReduceSum", [mask_3d, axes_1], keepdims=0), g.const("min_count", np.array(1e-9, dtype=np.float32))])
    normalize_rows(g, g.op("Div", [summed, counts], "mean_pooled"), normalize)


def normalize_rows(g: GraphBuilder, pooled: str, normalize: bool) -> None:
    # the mean before Normalize, so callers can ask for unnormalised vectors (TEI's normalize=false)
    g.nodes.append(helper.make_node("Identity", [pooled], ["pooled_embedding"], name="pooled_embedding"))
    if normalize:
        # torch.nn.functional.normalize: x / max(||x||, 1e-12); opset 18 moved ReduceL2's axes to an input
        if g.opset >= 18:
            norm = g.op("ReduceL2", [pooled, g.const("axes_1_norm", np.array([1], dtype=np.int64))], keepdims=1)
        else:
            norm = g.op("ReduceL2", [pooled], axes=[1], keepdims=1)
        norm = g.op("Max", [norm, g.const("min_norm", np.array(1e-12, dtype=np.float32))])
        pooled = g.op("Div", [pooled, norm], "normalized")
    g.nodes.append(helper.make_node("Identity", [pooled], ["sentence_embedding"], name="sentence_embedding"))


def make_model(g: GraphBuilder, name: str, inputs: list, outputs: list, contrib: bool) -> onnx.ModelProto:
    if g.taps:  # calibration graphs expose each tapped activation as an output
        for key, tensor in g.taps.items():
            g.nodes.append(helper.make_node("Identity", [tensor], [f"calibration.{key}"], name=f"calibration.{key}"))
            outputs.append(helper.make_tensor_value_info(f"calibration.{key}", TensorProto.FLOAT, None))
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.initializers)
    opsets = [helper.make_opsetid("", g.opset)] + ([helper.make_opsetid("com.microsoft", 1)] if contrib else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="seaembed")
    # IR 8 (opset 17) is readable by every ONNX Runtime >= 1.14 and TensorRT 10; opset 19 needs IR 9
    model.ir_version = 8 if g.opset <= 18 else 9
    return model


def build_encoder_graph(
    arch: Architecture,
    weights: dict[str, np.ndarray],
    normalize: bool,
    precision: str = "fp32",
    fused: bool = False,
    quantized: dict[str, float] | None = None,
    record_taps: bool = False,
) -> onnx.ModelProto:
    """ONNX graph: (input_ids, attention_mask) → (sentence_embedding, pooled_embedding, token_embeddings).

    fused=True writes ONNX Runtime's contrib ops (com.microsoft Attention, SkipLayerNormalization,
    BiasGelu): an ORT-only graph. In fp32 it serves the CPU; in fp16 the CUDA execution
    provider (whose fused attention kernels need it), and it cannot run on ORT's CPU.
    quantized (fp16 only): the INT8 Q/DQ graph, see export/qdq.py. record_taps: calibration outputs.
    """
    g = GraphBuilder(precision, quantized=quantized, record_taps=record_taps)
    mask_f = g.op("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    x = input_embeddings(g, arch, weights)
    if fused:
        mask_index = g.op("Cast", ["attention_mask"], "mask_index", to=TensorProto.INT32)
        x = g.to_compute(x)
        for layer in range(arch.layers):
            x = _fused_layer(g, x, mask_index, arch, weights, f"encoder.layer.{layer}")
        x = g.to_fp32(x)
    else:
        mask_bias = padding_bias(g, mask_f)
        for layer in range(arch.layers):
            prefix = f"encoder.layer.{layer}"
            x = _attention(g, x, mask_bias, arch, weights, prefix)
            x = _feed_forward(g, x, arch, weights, prefix)
    g.nodes.append(helper.make_node("Identity", [x], ["token_embeddings"], name="token_embeddings"))
    mean_pool(g, x, mask_f, normalize)

    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"]) for n in INPUT_NAMES]
    outputs = [
        helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", arch.hidden]),
        helper.make_tensor_value_info("pooled_embedding", TensorProto.FLOAT, ["batch", arch.hidden]),
        helper.make_tensor_value_info("token_embeddings", TensorProto.FLOAT, ["batch", "sequence", arch.hidden]),
    ]
    kind = "int8_qdq" if quantized is not None else precision
    return make_model(g, f"seaembed_{arch.family}_{kind}{'_fused' if fused else ''}", inputs, outputs, contrib=fused)


def save_with_external_data(model: onnx.ModelProto, path, data_file_name: str) -> None:
    """Save the graph with every weight in one same-directory data file (the real model is 2.2 GB)."""
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data_file_name,
        size_threshold=1024,  # small constants (shapes, axes) stay inline for shape inference
    )
