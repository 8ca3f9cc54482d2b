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


__all__ = ["available_cpus", "cgroup_cpu_limit"]
