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


# The instruction-set features that decide which int8/bf16 kernels a CPU runs (x86 /proc/cpuinfo names).
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


def cpu_isa(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> dict[str, bool]:
    """Which of ISA_FLAGS this CPU has (all False where /proc/cpuinfo is unreadable, e.g. not Linux).

    SEAEMBED_CPU_ISA (comma-separated flags) overrides it, so tests can act out other CPUs.
    """
    override = os.environ.get("SEAEMBED_CPU_ISA")
    if override is not None:
        present = {f.strip() for f in override.split(",") if f.strip()}
    else:
        present = set()
        try:
            for line in Path(cpuinfo).read_text().splitlines():
                if line.startswith(("flags", "Features")):  # x86 / ARM
                    present = set(line.split(":", 1)[1].split())
                    break
        except OSError:
            pass
    return {flag: flag in present for flag in ISA_FLAGS}


def has_bf16(isa: dict[str, bool] | None = None) -> bool:
    """True where the CPU computes in BF16 natively (AVX512-BF16 or AMX-BF16); elsewhere bf16 is emulated or ignored."""
    isa = cpu_isa() if isa is None else isa
    return any(isa.get(flag, False) for flag in BF16_FLAGS)


def has_int8_dot(isa: dict[str, bool] | None = None) -> bool:
    """True where the CPU has int8 dot-product units (VNNI or AMX); without them int8 GEMMs take a generic path."""
    isa = cpu_isa() if isa is None else isa
    return any(isa.get(flag, False) for flag in INT8_DOT_FLAGS)


def cpu_model() -> str:
    """The CPU's marketing name (/proc/cpuinfo 'model name'), or the platform's processor string."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


__all__ = ["available_cpus", "cgroup_cpu_limit", "cpu_isa", "has_bf16", "has_int8_dot", "cpu_model", "ISA_FLAGS", "BF16_FLAGS", "INT8_DOT_FLAGS"]
