"""Which baseline applies: the CPU's model name, the ISA features that pick its kernels, and the CPUs
this process may use (batch benchmarks run one thread per CPU), as one file-name-safe slug."""

from __future__ import annotations

import re

from seaembed.runtime.cpus import available_cpus, cpu_isa, cpu_model


def cpu_kind() -> str:
    """e.g. "amd-epyc-avx2-avx512f-avx512-vnni-avx512-bf16-2cpu"."""
    flags = [flag for flag, present in cpu_isa().items() if present]
    words = [cpu_model(), *flags, f"{available_cpus()}cpu"]
    return re.sub(r"[^a-z0-9]+", "-", " ".join(words).lower()).strip("-")
