"""The int8 dot-product peak of the cores a benchmark uses: cores × int8 ops per cycle × measured clock.

Ops per cycle per core (an op is one multiply or one add; a u8×s8 MAC counts 2), from the ISA and the
core's microarchitecture, as vendors document the throughput of their int8 dot-product instructions:
- AMX-INT8 (Sapphire Rapids and later): TDPBUSD, 1,024 MACs a cycle → 2,048.
- AVX512-VNNI on Intel server cores: two 512-bit VPDPBUSD a cycle (ports 0 and 5) → 256.
- AVX512-VNNI on AMD Zen 4 (family 0x19): 512-bit ops run as two 256-bit halves, two pipes → one zmm
  VPDPBUSD a cycle → 128. Zen 5 (family 0x1a) has full-width pipes → 256.
- AVX-VNNI (256-bit, client cores): two ymm VPDPBUSD a cycle → 128.
- AVX2 without VNNI: VPMADDUBSW + VPMADDWD + VPADDD per 32 MACs, two ports → 64.
- Arm: SDOT (asimddp) 128-bit, two pipes → 64; SMMLA (i8mm) → 128.

Clock: cloud VMs hide it (no cpufreq, no MHz in /proc/cpuinfo), so it is measured: a chain of
dependent integer adds retires one a cycle, compiled with the system's C compiler and timed. Without
a compiler the clock from /proc/cpuinfo or cpufreq is used, and the source is printed either way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from seaembed.runtime.cpus import cpu_isa

ADD_CHAIN_C = r"""
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    long n = atol(argv[1]), x = 0;
    for (long i = 0; i < n; i++) {
        /* eight dependent adds per iteration: the loop's own counter and branch run beside them */
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    }
    printf("%ld\n", x);
    return 0;
}
"""


def cpu_family() -> tuple[str, int | None]:
    """(vendor_id, cpu family) from /proc/cpuinfo; ("", None) where unreadable."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "", None
    vendor = re.search(r"^vendor_id\s*:\s*(\S+)", text, re.M)
    family = re.search(r"^cpu family\s*:\s*(\d+)", text, re.M)
    return (vendor.group(1) if vendor else ""), (int(family.group(1)) if family else None)


def int8_ops_per_cycle(isa: dict[str, bool] | None = None) -> tuple[int, str]:
    """(int8 ops per cycle per core, which unit that is) for this CPU."""
    isa = cpu_isa() if isa is None else isa
    vendor, family = cpu_family()
    if isa.get("amx_int8"):
        return 2048, "AMX-INT8 tiles"
    if isa.get("avx512_vnni"):
        if vendor == "AuthenticAMD":
            return (128, "AVX512-VNNI, Zen 4 (two 256-bit halves)") if family == 0x19 else (256, "AVX512-VNNI, Zen 5 full width")
        return 256, "AVX512-VNNI, two 512-bit ports"
    if isa.get("avx_vnni"):
        return 128, "AVX-VNNI (256-bit)"
    if isa.get("i8mm"):
        return 128, "Arm SMMLA"
    if isa.get("asimddp"):
        return 64, "Arm SDOT"
    return 64, "AVX2 VPMADDUBSW (no int8 dot-product unit)"


def measured_clock_ghz() -> tuple[float | None, str]:
    """(GHz, how it was found): the timed add chain where a C compiler exists, else what the OS reports."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler and os.uname().machine in ("x86_64", "AMD64"):
        with tempfile.TemporaryDirectory() as tmp:
            source, binary = Path(tmp) / "chain.c", Path(tmp) / "chain"
            source.write_text(ADD_CHAIN_C)
            subprocess.run([compiler, "-O1", str(source), "-o", str(binary)], check=True, capture_output=True)
            iterations = 200_000_000
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                subprocess.run([str(binary), str(iterations)], check=True, capture_output=True)
                best = min(best, time.perf_counter() - started)
            return 8 * iterations / best / 1e9, "measured (dependent add chain, best of 3)"
    try:
        khz = int(Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").read_text())
        return khz / 1e6, "cpufreq cpuinfo_max_freq"
    except (OSError, ValueError):
        pass
    try:
        mhz = re.search(r"^cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text(), re.M)
        if mhz:
            return float(mhz.group(1)) / 1000, "/proc/cpuinfo cpu MHz"
    except OSError:
        pass
    return None, "unknown"


def int8_peak(cores: int) -> dict:
    """The int8 peak of `cores` cores, with every factor that went into it (printed beside the profile)."""
    per_cycle, unit = int8_ops_per_cycle()
    ghz, clock_source = measured_clock_ghz()
    peak = cores * per_cycle * ghz * 1e9 if ghz else None
    return {"cores": cores, "ops_per_cycle_per_core": per_cycle, "unit": unit, "clock_ghz": ghz, "clock_source": clock_source, "peak_ops_per_s": peak}
