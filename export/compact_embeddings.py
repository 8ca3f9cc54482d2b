"""Compact weight storage for the lossy graphs (a post-pass on a saved ONNX graph).

XLM-R-large's 250,002 × 1024 word-embedding table is 46 % of the model and stayed FP32 in
every graph. This pass rewrites, in any graph it is given:

- the word-embedding Gather (found by its initializer: the largest 2-D float table a Gather
  reads) as int8 rows with per-row symmetric scales, Gather(int8 rows) → Cast → Mul by the
  gathered row scale (the dynamic INT8 graph), or as FP16 rows, Gather → Cast (FP16 graphs);
- optionally the large float MatMul weights a quantised graph keeps in float (the dynamic INT8
  graph's FFN down projections), in one of three storages:
  "dq": int8 per output channel + DequantizeLinear (standard ONNX). ONNX Runtime's CPU provider
  fuses each DequantizeLinear with its MatMul into MatMulNBits (8-bit weights, blocks of 32):
  the weights stay int8 in memory and the activations are not quantised per tensor, so the
  outliers that made these matmuls float (quantize.dynamic_exclusions) stay harmless.
  "int8": int8 + Cast + Mul, "fp16": fp16 + Cast; both are folded back to FP32 weights at load
  (smaller file, but more memory after load and a slower load than the FP32 original).

Every rewrite is behind the export's accuracy gate; `check_loads` confirms ORT still parses
and optimises the graph. SEAEMBED_EXPORT_COMPACT=0 skips the pass (the pre-compaction layout,
for before/after benchmarks).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .onnx_graph import save_with_external_data

_FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16)
# weights smaller than this stay as they are: too small to matter on disk
MIN_WEIGHT_ELEMENTS = 1 << 16

# What each artifact stores compactly: (word-embedding rows, float MatMul weights).
# The static QDQ graph is left as export/qdq.py builds it (TensorRT's input, on the FP16 layout):
# on trained e5-small both int8 and fp16 rows cost it one retrieval pair of 44 (recall@1 0.9091
# vs FP32's 0.9318), past its gate; its per-tensor int8 activations sit on that edge already.
POLICY: dict[str, tuple[str, str | None]] = {
    "onnx-fp16": ("fp16", None),
    "onnx-fp16-ort": ("fp16", None),
    "onnx-int8-dynamic": ("int8", "dq"),
}
_DESCRIBE = {
    "int8": "int8 per-row symmetric scales (Gather → Cast → Mul)",
    "fp16": "fp16 rows (Gather → Cast)",
}
_DESCRIBE_WEIGHTS = {
    "dq": "int8 per output channel + DequantizeLinear (ONNX Runtime CPU: fused with its MatMul into MatMulNBits, 8-bit weights)",
    "int8": "int8 per output channel on disk, folded to fp32 by ONNX Runtime at load",
    "fp16": "fp16 on disk, folded to fp32 by ONNX Runtime at load",
}


def enabled() -> bool:
    return os.environ.get("SEAEMBED_EXPORT_COMPACT", "1") != "0"


def quantize_rows(table: np.ndarray, chunk: int = 1 << 14) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: table ≈ q * scale, q in [-127, 127], scale [rows, 1] float32.

    In chunks of rows: XLM-R-large's table is 1 GB in FP32, and whole-table temporaries would
    triple the export's peak memory.
    """
    q = np.empty(table.shape, dtype=np.int8)
    scale = np.empty((table.shape[0], 1), dtype=np.float32)
    for start in range(0, table.shape[0], chunk):
        rows = table[start : start + chunk].astype(np.float32)
        step = np.abs(rows).max(axis=1, keepdims=True) / np.float32(127.0)
        step[step == 0] = 1.0  # an all-zero row (padding) stays exactly zero
        q[start : start + chunk] = np.clip(np.rint(rows / step), -127, 127)
        scale[start : start + chunk] = step
    return q, scale


def _initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in model.graph.initializer}


def _consumers(model: onnx.ModelProto, name: str) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if name in n.input]


def find_word_embedding_gather(model: onnx.ModelProto) -> onnx.NodeProto | None:
    """The Gather reading the largest 2-D float initializer: the word-embedding table."""
    inits = _initializers(model)
    candidates = [
        n
        for n in model.graph.node
        if n.op_type == "Gather" and n.input[0] in inits and len(inits[n.input[0]].dims) == 2 and inits[n.input[0]].data_type in _FLOATS
    ]
    return max(candidates, key=lambda n: inits[n.input[0]].dims[0], default=None)


def _replace_node(model: onnx.ModelProto, old: onnx.NodeProto, new: list[onnx.NodeProto]) -> None:
    at = next(i for i, n in enumerate(model.graph.node) if n.name == old.name and list(n.output) == list(old.output))
    del model.graph.node[at]
    for offset, node in enumerate(new):
        model.graph.node.insert(at + offset, node)


def _swap_initializer(model: onnx.ModelProto, old_name: str, new: list[onnx.TensorProto]) -> None:
    """Replace one initializer by index: rebuilding the list would copy every weight (GBs) each time."""
    at = next(i for i, t in enumerate(model.graph.initializer) if t.name == old_name)
    del model.graph.initializer[at]
    model.graph.initializer.extend(new)


def compact_word_embeddings(model: onnx.ModelProto, rows: str) -> dict | None:
    """Rewrite the word-embedding Gather to store `rows` ("int8" or "fp16"); None if there is nothing to do."""
    gather = find_word_embedding_gather(model)
    if gather is None:
        return None
    table_name, ids = gather.input[0], gather.input[1]
    if len(_consumers(model, table_name)) != 1:
        raise ValueError(f"{table_name} feeds more than its Gather (tied weights?); compacting it would change the other use")
    table_proto = _initializers(model)[table_name]
    out_type = table_proto.data_type
    if rows == "fp16" and out_type == TensorProto.FLOAT16:
        return None
    table = numpy_helper.to_array(table_proto)
    out = gather.output[0]
    axis = [a for a in gather.attribute if a.name == "axis"]
    if axis and helper.get_attribute_value(axis[0]) != 0:
        raise ValueError(f"Gather {gather.name} reads {table_name} along axis {helper.get_attribute_value(axis[0])}, not rows")
    if rows == "int8":
        q, scale = quantize_rows(table)
        np_out = helper.tensor_dtype_to_np_dtype(out_type)
        inits = [numpy_helper.from_array(q, f"{table_name}.int8"), numpy_helper.from_array(scale.astype(np_out), f"{table_name}.row_scale")]
        nodes = [
            helper.make_node("Gather", [f"{table_name}.int8", ids], [f"{out}.int8"], name=f"{gather.name}.int8_rows"),
            helper.make_node("Cast", [f"{out}.int8"], [f"{out}.rows"], name=f"{gather.name}.dequant_cast", to=out_type),
            helper.make_node("Gather", [f"{table_name}.row_scale", ids], [f"{out}.scale"], name=f"{gather.name}.row_scale"),
            helper.make_node("Mul", [f"{out}.rows", f"{out}.scale"], [out], name=f"{gather.name}.dequant"),
        ]
    elif rows == "fp16":
        inits = [numpy_helper.from_array(table.astype(np.float16), f"{table_name}.fp16")]
        nodes = [
            helper.make_node("Gather", [f"{table_name}.fp16", ids], [f"{out}.fp16"], name=f"{gather.name}.fp16_rows"),
            helper.make_node("Cast", [f"{out}.fp16"], [out], name=f"{gather.name}.to_float", to=out_type),
        ]
    else:
        raise ValueError(f"word-embedding rows can be stored as int8 or fp16, not {rows!r}")
    _replace_node(model, gather, nodes)
    _swap_initializer(model, table_name, inits)
    return {"table": table_name, "shape": list(table.shape), "rows": _DESCRIBE[rows]}


def compact_float_weights(model: onnx.ModelProto, storage: str) -> dict | None:
    """Store 2-D FP32 MatMul weights (≥ MIN_WEIGHT_ELEMENTS) as `storage` ("dq", "int8" or "fp16"; see the module doc)."""
    inits = _initializers(model)
    done = 0
    for name, proto in list(inits.items()):
        users = _consumers(model, name)
        if (
            proto.data_type != TensorProto.FLOAT
            or len(proto.dims) != 2
            or int(np.prod(proto.dims)) < MIN_WEIGHT_ELEMENTS
            or not users
            or any(u.op_type != "MatMul" or list(u.input).index(name) != 1 for u in users)
        ):
            continue
        weight = numpy_helper.to_array(proto)
        if storage == "int8":
            scale = np.abs(weight).max(axis=0, keepdims=True) / 127.0  # [1, N]: one scale per output channel
            scale[scale == 0] = 1.0
            q = np.clip(np.rint(weight / scale), -127, 127).astype(np.int8)
            new = [numpy_helper.from_array(q, f"{name}.int8"), numpy_helper.from_array(scale.astype(np.float32), f"{name}.scale")]
            nodes = [
                helper.make_node("Cast", [f"{name}.int8"], [f"{name}.cast"], name=f"{name}.dequant_cast", to=TensorProto.FLOAT),
                helper.make_node("Mul", [f"{name}.cast", f"{name}.scale"], [name], name=f"{name}.dequant"),
            ]
        elif storage == "dq":
            scale = np.abs(weight).max(axis=0) / 127.0  # [N]: one scale per output channel
            scale[scale == 0] = 1.0
            q = np.clip(np.rint(weight / scale), -127, 127).astype(np.int8)
            new = [
                numpy_helper.from_array(q, f"{name}.int8"),
                numpy_helper.from_array(scale.astype(np.float32), f"{name}.scale"),
                numpy_helper.from_array(np.zeros(scale.shape, dtype=np.int8), f"{name}.zero_point"),
            ]
            nodes = [helper.make_node("DequantizeLinear", [f"{name}.int8", f"{name}.scale", f"{name}.zero_point"], [name], name=f"{name}.dequant", axis=1)]
        elif storage == "fp16":
            new = [numpy_helper.from_array(weight.astype(np.float16), f"{name}.fp16")]
            nodes = [helper.make_node("Cast", [f"{name}.fp16"], [name], name=f"{name}.to_float", to=TensorProto.FLOAT)]
        else:
            raise ValueError(f"float weights can be stored as dq, int8 or fp16, not {storage!r}")
        # the weight's name becomes the folded node's output: every MatMul keeps reading `name`
        _swap_initializer(model, name, new)
        model.graph.node.insert(0, nodes[-1])
        if len(nodes) == 2:
            model.graph.node.insert(0, nodes[0])
        done += 1
    return {"matmul_weights": done, "storage": _DESCRIBE_WEIGHTS[storage]} if done else None


def compact_graph(path: Path, rows: str, float_weights: str | None = None, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> dict:
    """Rewrite the graph at `path` (+ its .data file) in place; returns what was done (for the manifest)."""
    path = Path(path)
    model = onnx.load(str(path), load_external_data=True)
    done = {}
    table = compact_word_embeddings(model, rows)
    if table:
        done["word_embeddings"] = table
    if float_weights:
        weights = compact_float_weights(model, float_weights)
        if weights:
            done["float_weights"] = weights
    if not done:
        return {}
    data_file = path.name + ".data"
    mode = path.stat().st_mode & 0o777
    # write beside the original, then replace it: never half a graph under the artifact's name
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".compact-") as tmp:
        save_with_external_data(model, Path(tmp) / path.name, data_file)
        del model
        for name in (data_file, path.name):
            (Path(tmp) / name).chmod(mode)
            os.replace(Path(tmp) / name, path.parent / name)
    onnx.checker.check_model(str(path))
    check_loads(path, providers)
    return done


def check_loads(path: Path, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> None:
    """ONNX Runtime must parse and fully optimise the graph (constant folding included) where it runs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    ort.InferenceSession(str(path), options, providers=list(providers))


def compact_artifact(path: Path, artifact_name: str, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> dict:
    """The export's entry point: apply POLICY[artifact_name] to the saved graph (no-op for FP32)."""
    if artifact_name not in POLICY or not enabled():
        return {}
    rows, float_weights = POLICY[artifact_name]
    return compact_graph(path, rows, float_weights, providers)


def storage_details(done: dict) -> dict:
    """The manifest's record of a compaction ({} when nothing was compacted)."""
    return {"storage": done} if done else {}
