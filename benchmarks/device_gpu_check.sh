#!/usr/bin/env bash
# One prepared run on a lent GPU machine (no network): install the carried onnxruntime-gpu
# wheel, then benchmarks/bench_gpu.py on a model with SEA-LION-E5's shape built there.
# Carried beforehand under .device/: ort.part.* (the wheel, split) and tokenizer.json.
set -uo pipefail
OUT=${OUT:-/tmp/out}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
python3 -c "import tensorrt; print('tensorrt', tensorrt.__version__)" >> "$OUT/device.txt" 2>&1 || echo "no tensorrt module" >> "$OUT/device.txt"
command -v trtexec >> "$OUT/device.txt" || echo "no trtexec" >> "$OUT/device.txt"
wheel=/tmp/onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl
cat .device/ort.part.* > "$wheel"
expected=05d548956197b9d01f59b625de740e0d6be3593f874e241a12dc0362650ecdf7
if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$expected" ]; then
  echo "reassembled wheel is incomplete (machine changed between carries?): $(ls .device)" | tee -a "$OUT/device.txt"; exit 3
fi
python3 -m pip uninstall -y -q onnxruntime
python3 -m pip install -q --no-deps "$wheel" 2>&1 | tail -2
# seaembed as a namespace package by links: nothing to build on a machine with no network
mkdir -p /tmp/pkg/seaembed && ln -sfn "$PWD/export" /tmp/pkg/seaembed/export && ln -sfn "$PWD/runtime" /tmp/pkg/seaembed/runtime
export PYTHONPATH=/tmp/pkg
mkdir -p /tmp/tok && cp .device/tokenizer.json /tmp/tok/
python3 -c "import onnxruntime as o; o.preload_dlls(); print(o.__version__, o.get_available_providers())" 2>&1 | tee -a "$OUT/device.txt"
PYTHONUNBUFFERED=1 timeout 480 python3 benchmarks/bench_gpu.py --make-large --tokenizer-dir /tmp/tok --artifacts onnx-fp16 --out "$OUT" 2>&1 | grep -v "Loading weights" | tail -60
