"""Runs in a separate venv with transformers 4.x + sentence-transformers 5.x + optimum-onnx (their ONNX
backend needs transformers < 4.58): times sentence-transformers' own ONNX FP32 and its qint8 for the
config the driver picked for this CPU (avx512_vnni, avx512 or avx2).

python st_onnx_worker.py MODEL_DIR WORKLOADS.json OUT.json
"""

import importlib.util
import json
import shutil
import sys
import tempfile
from pathlib import Path

model_dir, workloads_path, out_path = map(Path, sys.argv[1:4])
spec = importlib.util.spec_from_file_location("bench", Path(__file__).resolve().parent.parent / "runtime" / "bench.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
payload = json.loads(workloads_path.read_text())
texts, n_tokens, batch_size = payload["texts"], payload["tokens"], payload["batch_size"]
qint8_config = payload.get("qint8_config", "avx512_vnni")

import torch  # noqa: E402
from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model  # noqa: E402

torch.set_num_threads(payload["threads"])
results = {}
with tempfile.TemporaryDirectory() as tmp:
    work = Path(tmp) / "model"
    work.mkdir()
    for item in model_dir.iterdir():  # links, not copies: the large model is 2.2 GB
        (work / item.name).symlink_to(item)
    model = SentenceTransformer(str(work), backend="onnx", device="cpu")
    model.save_pretrained(str(Path(tmp) / "exported"))
    export_dynamic_quantized_onnx_model(model, qint8_config, str(Path(tmp) / "exported"))
    # The file is named after the weight type the config picks (qint8 for avx512*, quint8 for avx2).
    quantized = next((Path(tmp) / "exported" / "onnx").glob(f"model_*_{qint8_config}.onnx"))
    rows = (("sentence-transformers ONNX FP32", {}), (f"sentence-transformers ONNX {quantized.stem.split('_')[1]} ({qint8_config})", {"file_name": f"onnx/{quantized.name}"}))
    for name, kwargs in rows:
        if payload.get("int8_only") and not kwargs:
            continue
        m = SentenceTransformer(str(Path(tmp) / "exported"), backend="onnx", device="cpu", model_kwargs=kwargs)
        results[name] = bench.measure(lambda t, m=m: m.encode(t, batch_size=batch_size), texts, n_tokens)
        results[name]["vectors"] = m.encode(texts["passages_512"][:4] + texts["mixed_corpus"][:12], batch_size=batch_size).tolist()
        print(name, {k: v for k, v in results[name].items() if k != "vectors"}, flush=True)
out_path.write_text(json.dumps(results))
shutil.rmtree(Path(tmp), ignore_errors=True)
