"""What an aarch64 CPU is and which of its features decide int8/bf16 kernel paths.

The kernel's HWCAP words (getauxval) are the source of truth on a live machine: /proc/cpuinfo's
"Features" line is printed from them, and under qemu-user emulation /proc/cpuinfo is the host's
(x86) file while the auxiliary vector is the emulated CPU's. Recorded /proc/cpuinfo text is
parsed for tests and for describing other machines.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# Bits from the kernel's arch/arm64/include/uapi/asm/hwcap.h, named as /proc/cpuinfo names them.
HWCAP_BITS = {"fp": 0, "asimd": 1, "asimdhp": 10, "asimddp": 20, "sve": 22, "asimdfhm": 23}
HWCAP2_BITS = {"sve2": 1, "svei8mm": 9, "svebf16": 12, "i8mm": 13, "bf16": 14}
AT_HWCAP, AT_HWCAP2 = 16, 26

# MIDR implementer and part numbers (arch/arm64/include/asm/cputype.h) of the cores edge boards
# and cloud hosts use; others are printed by number.
IMPLEMENTERS = {0x41: "ARM", 0x4E: "NVIDIA", 0x51: "Qualcomm", 0x61: "Apple", 0xC0: "Ampere", 0x48: "HiSilicon"}
ARM_PARTS = {
    0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55", 0xD07: "Cortex-A57", 0xD08: "Cortex-A72",
    0xD09: "Cortex-A73", 0xD0A: "Cortex-A75", 0xD0B: "Cortex-A76", 0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77",
    0xD0E: "Cortex-A76AE", 0xD40: "Neoverse-V1", 0xD41: "Cortex-A78", 0xD42: "Cortex-A78AE", 0xD44: "Cortex-X1",
    0xD46: "Cortex-A510", 0xD47: "Cortex-A710", 0xD48: "Cortex-X2", 0xD49: "Neoverse-N2", 0xD4F: "Neoverse-V2",
}


def features_from_hwcap(hwcap: int, hwcap2: int) -> set[str]:
    """The /proc/cpuinfo feature names of the bits set in AT_HWCAP and AT_HWCAP2."""
    return {name for name, bit in HWCAP_BITS.items() if hwcap >> bit & 1} | {
        name for name, bit in HWCAP2_BITS.items() if hwcap2 >> bit & 1
    }


def live_hwcap_features() -> set[str] | None:
    """This process's CPU features from getauxval (None where libc lacks it)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        getauxval = libc.getauxval
    except (OSError, AttributeError):
        return None
    getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    hwcap = getauxval(AT_HWCAP)
    return features_from_hwcap(hwcap, getauxval(AT_HWCAP2)) if hwcap else None


def _fields(cpuinfo: str) -> dict[str, str]:
    """The first value of each key (the first processor's block, then system lines such as Model)."""
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def core_name(cpuinfo: str) -> str | None:
    """'ARM Neoverse-V1' from the first processor's implementer and part, None without them."""
    fields = _fields(cpuinfo)
    try:
        implementer, part = int(fields["CPU implementer"], 16), int(fields["CPU part"], 16)
    except (KeyError, ValueError):
        return None
    vendor = IMPLEMENTERS.get(implementer, f"implementer {implementer:#x}")
    name = ARM_PARTS.get(part) if implementer == 0x41 else None
    return f"{vendor} {name or f'part {part:#x}'}"


def model_from_cpuinfo(cpuinfo: str) -> str | None:
    """The board and core, e.g. 'Raspberry Pi 5 Model B Rev 1.0 (ARM Cortex-A76)'; None for non-Arm text."""
    core = core_name(cpuinfo)
    if core is None:
        return None
    board = _fields(cpuinfo).get("Model")
    return f"{board} ({core})" if board else core


__all__ = ["HWCAP_BITS", "HWCAP2_BITS", "features_from_hwcap", "live_hwcap_features", "core_name", "model_from_cpuinfo"]
