"""How many CPUs this process may really use: affinity mask and cgroup quota, not the host's count.

Containers with CPU limits are where production runs; `os.cpu_count()` reports the host
and oversubscribes them (threads fighting for a 2-CPU quota on a 64-core host).
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def _cgroup_v2_limit(root: Path) -> float | None:
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def _cgroup_v1_limit(root: Path) -> float | None:
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def cgroup_cpu_limit(root: str | os.PathLike = "/sys/fs/cgroup") -> float | None:
    """The CPU quota of this process's cgroup (v2 `cpu.max`, else v1 CFS), in CPUs; None when unlimited."""
    root = Path(root)
    limit = _cgroup_v2_limit(root)
    return limit if limit is not None else _cgroup_v1_limit(root)


def available_cpus() -> int:
    """CPUs this process may run on: the affinity mask, capped by the cgroup quota (rounded up), at least 1.

    SEAEMBED_CPUS overrides it (for tests and for hosts whose limits are set elsewhere).
    """
    override = os.environ.get("SEAEMBED_CPUS")
    if override:
        return max(1, int(override))
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        count = os.cpu_count() or 1
    quota = cgroup_cpu_limit()
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return max(1, count)


# The instruction-set features that decide which int8/bf16 kernels a CPU runs, by their /proc/cpuinfo names.
X86_ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
# aarch64: NEON (asimd), int8 dot products (asimddp: SDOT/UDOT; i8mm: SMMLA), bf16, SVE.
ARM_ISA_FLAGS = ("asimd", "asimddp", "i8mm", "bf16", "sve", "sve2")
ISA_FLAGS = X86_ISA_FLAGS + ARM_ISA_FLAGS
# BF16 here means what OpenVINO computes BF16 on: its CPU plugin lists BF16 inference for x86-64 only, so an
# Arm core's `bf16` is reported but does not make a BF16 artifact runnable.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
X86_INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
INT8_DOT_FLAGS = X86_INT8_DOT_FLAGS + ("asimddp", "i8mm")


def _is_aarch64() -> bool:
    import platform

    return platform.machine().lower() in ("aarch64", "arm64")


def _cpuinfo_features(cpuinfo: str | os.PathLike) -> set[str]:
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            if line.startswith(("flags", "Features")):  # x86 / ARM
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_features(cpuinfo: str | os.PathLike | None = None) -> set[str]:
    """The feature names of `cpuinfo` (a recorded /proc/cpuinfo), or of this machine's CPU.

    On aarch64 the kernel's HWCAP words are read first: /proc/cpuinfo prints them, and under qemu-user
    emulation /proc/cpuinfo is the host's file while HWCAP describes the emulated CPU.
    """
    if cpuinfo is None:
        if _is_aarch64():
            from .arm_cpu import live_hwcap_features

            hwcap = live_hwcap_features()
            if hwcap is not None:
                return hwcap
        cpuinfo = "/proc/cpuinfo"
    return _cpuinfo_features(cpuinfo)


def cpu_isa(cpuinfo: str | os.PathLike | None = None) -> dict[str, bool]:
    """Which of ISA_FLAGS this CPU (or a recorded `cpuinfo`) has; all False where that is unreadable.

    SEAEMBED_CPU_ISA (comma-separated flags) overrides it, so tests can act out other CPUs.
    """
    override = os.environ.get("SEAEMBED_CPU_ISA")
    present = {f.strip() for f in override.split(",") if f.strip()} if override is not None else cpu_features(cpuinfo)
    return {flag: flag in present for flag in ISA_FLAGS}


def has_bf16(isa: dict[str, bool] | None = None) -> bool:
    """True where OpenVINO computes in BF16 natively (AVX512-BF16 or AMX-BF16); elsewhere bf16 is emulated or ignored."""
    isa = cpu_isa() if isa is None else isa
    return any(isa.get(flag, False) for flag in BF16_FLAGS)


def has_int8_dot(isa: dict[str, bool] | None = None) -> bool:
    """True where the CPU has int8 dot-product units (x86 VNNI/AMX, Arm SDOT/SMMLA); without them int8 GEMMs
    take a generic path."""
    isa = cpu_isa() if isa is None else isa
    return any(isa.get(flag, False) for flag in INT8_DOT_FLAGS)


def has_x86_int8_dot(isa: dict[str, bool] | None = None) -> bool:
    """True where the int8 dot products are x86's (VNNI/AMX), the ones OpenVINO's INT8 kernels use."""
    isa = cpu_isa() if isa is None else isa
    return any(isa.get(flag, False) for flag in X86_INT8_DOT_FLAGS)


def isa_line(isa: dict[str, bool] | None = None) -> str:
    """The features that decide int8/bf16 speed, for `seaembed info` and benchmark headers."""
    isa = cpu_isa() if isa is None else isa
    flags = ARM_ISA_FLAGS if any(isa.get(f, False) for f in ARM_ISA_FLAGS) else X86_ISA_FLAGS
    shown = ", ".join(f"{f} {'yes' if isa.get(f) else 'no'}" for f in flags)
    return f"{shown}; int8 dot products {'yes' if has_int8_dot(isa) else 'no'}"


def cpu_model(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU's marketing name (x86 'model name'; on Arm the board and core from the MIDR fields),
    or the platform's processor string."""
    import platform

    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        text = ""
    from .arm_cpu import model_from_cpuinfo

    arm = model_from_cpuinfo(text)
    if arm is not None:
        return arm
    for line in text.splitlines():
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
            # qemu-user shows the host's /proc/cpuinfo to the emulated program
            return f"emulated aarch64 on {name}" if _is_aarch64() else name
    return platform.processor() or platform.machine()


__all__ = [
    "available_cpus", "cgroup_cpu_limit", "cpu_features", "cpu_isa", "has_bf16", "has_int8_dot", "has_x86_int8_dot", "isa_line",
    "cpu_model", "ISA_FLAGS", "X86_ISA_FLAGS", "ARM_ISA_FLAGS", "BF16_FLAGS", "INT8_DOT_FLAGS", "X86_INT8_DOT_FLAGS",
]
