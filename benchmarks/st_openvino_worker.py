"""Runs in a separate venv with sentence-transformers 5 + optimum-intel[openvino] + datasets (optimum-intel
needs transformers < 5.6): times sentence-transformers' own OpenVINO backend, FP32 and its static INT8
(export_static_quantized_openvino_model), offline: the calibration set is our calibration.txt as a local
dataset folder instead of the hub's glue/sst2 default.

python st_openvino_worker.py MODEL_DIR WORKLOADS.json OUT.json CALIBRATION.txt
"""

import importlib.util
import json
import os
import sys
import tempfile
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

model_dir, workloads_path, out_path, calibration = map(Path, sys.argv[1:5])
spec = importlib.util.spec_from_file_location("bench", Path(__file__).resolve().parent.parent / "runtime" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
payload = json.loads(workloads_path.read_text())
texts, n_tokens, batch_size, threads = payload["texts"], payload["tokens"], payload["batch_size"], payload["threads"]
probe = texts["passages_512"][:4] + texts["mixed_corpus"][:12]

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer, export_static_quantized_openvino_model  # noqa: E402

torch.set_num_threads(threads)
# same engine settings as seaembed's backend: one stream, `threads` threads, FP32 (no silent bf16 on AMX)
ov_config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
results = {}


def run(name: str, model) -> None:
    results[name] = bench.measure(lambda t: model.encode(t, batch_size=batch_size), texts, n_tokens)
    results[name]["vectors"] = model.encode(probe, batch_size=batch_size).tolist()
    print(name, {k: v for k, v in results[name].items() if k != "vectors"}, flush=True)


with tempfile.TemporaryDirectory() as tmp:
    work = Path(tmp) / "model"
    work.mkdir()
    for item in model_dir.iterdir():  # links, not copies: the large model is 2.2 GB
        (work / item.name).symlink_to(item)
    model = SentenceTransformer(str(work), backend="openvino", device="cpu", model_kwargs={"ov_config": ov_config})
    if not payload.get("int8_only"):
        run("sentence-transformers OpenVINO FP32", model)
    exported = Path(tmp) / "exported"
    model.save_pretrained(str(exported))
    lines = [line for line in calibration.read_text(encoding="utf-8").splitlines() if line.strip()]
    data = Path(tmp) / "calibration"
    data.mkdir()
    (data / "train.jsonl").write_text("".join(json.dumps({"sentence": line}) + "\n" for line in lines), encoding="utf-8")
    try:
        from optimum.intel import OVQuantizationConfig

        export_static_quantized_openvino_model(
            model,
            OVQuantizationConfig(num_samples=len(lines)),
            str(exported),
            dataset_name=str(data),
            dataset_config_name="default",
            dataset_split="train",
            column_name="sentence",
        )
        int8 = SentenceTransformer(
            str(exported), backend="openvino", device="cpu",
            model_kwargs={"file_name": "openvino/openvino_model_qint8_quantized.xml", "ov_config": ov_config},
        )
        run("sentence-transformers OpenVINO static INT8", int8)
    except Exception as err:  # noqa: BLE001 - recorded in the results, not hidden
        traceback.print_exc()
        results["sentence-transformers OpenVINO static INT8"] = {"skipped": f"{type(err).__name__}: {err}"}
out_path.write_text(json.dumps(results))
