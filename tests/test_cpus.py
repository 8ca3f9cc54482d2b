"""CPU feature detection on recorded aarch64 /proc/cpuinfo files (tests/data/cpuinfo, provenance at the
top of each) and HWCAP words, and what it decides: int8 dot products, BF16, the CPU line printed."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from seaembed.runtime import cpus
from seaembed.runtime.arm_cpu import features_from_hwcap
from seaembed.runtime.cpus import cpu_isa, cpu_model, has_bf16, has_int8_dot, has_x86_int8_dot, isa_line

SAMPLES = Path(__file__).resolve().parent / "data" / "cpuinfo"


@pytest.fixture(autouse=True)
def _no_isa_override(monkeypatch):
    monkeypatch.delenv("SEAEMBED_CPU_ISA", raising=False)


@pytest.mark.parametrize(
    ("sample", "model", "present", "absent"),
    [
        ("graviton3-neoverse-v1.txt", "ARM Neoverse-V1", {"asimd", "asimddp", "i8mm", "bf16", "sve"}, {"sve2"}),
        ("graviton2-neoverse-n1.txt", "ARM Neoverse-N1", {"asimd", "asimddp"}, {"i8mm", "bf16", "sve", "sve2"}),
        (
            "raspberry-pi5-cortex-a76.txt",
            "Raspberry Pi 5 Model B Rev 1.0 (ARM Cortex-A76)",
            {"asimd", "asimddp"},
            {"i8mm", "bf16", "sve", "sve2"},
        ),
    ],
)
def test_arm_samples(sample, model, present, absent):
    isa = cpu_isa(SAMPLES / sample)
    assert {flag for flag in cpus.ARM_ISA_FLAGS if isa[flag]} == present
    assert not any(isa[flag] for flag in absent | set(cpus.X86_ISA_FLAGS))
    assert cpu_model(SAMPLES / sample) == model
    # All three have SDOT/UDOT, so ORT's INT8 graph gets its dot-product kernels; none runs OpenVINO's BF16.
    assert has_int8_dot(isa) and not has_x86_int8_dot(isa) and not has_bf16(isa)


def test_cortex_a72_without_dot_products(tmp_path):
    """Raspberry Pi 4 (Armv8.0): NEON only, so int8 GEMMs take ORT's generic NEON path."""
    pi4 = tmp_path / "cpuinfo"
    pi4.write_text("processor\t: 0\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU part\t: 0xd08\n")
    isa = cpu_isa(pi4)
    assert isa["asimd"] and not has_int8_dot(isa)
    assert cpu_model(pi4) == "ARM Cortex-A72"
    assert isa_line(isa) == "asimd yes, asimddp no, i8mm no, bf16 no, sve no, sve2 no; int8 dot products no"


def test_isa_line_names_the_arm_features():
    line = isa_line(cpu_isa(SAMPLES / "graviton3-neoverse-v1.txt"))
    assert line == "asimd yes, asimddp yes, i8mm yes, bf16 yes, sve yes, sve2 no; int8 dot products yes"


def test_hwcap_bits():
    """Bits of arch/arm64/include/uapi/asm/hwcap.h; the pair is what qemu-user's `max` CPU reported
    (LD_SHOW_AUXV=1 in the emulated Debian arm64 root): every feature we look at."""
    assert features_from_hwcap(1 << 1 | 1 << 20, 0) == {"asimd", "asimddp"}
    assert features_from_hwcap(0, 1 << 13 | 1 << 14) == {"i8mm", "bf16"}
    qemu_max = features_from_hwcap(0xECFFFFFB, 0x7F877FFF)
    assert set(cpus.ARM_ISA_FLAGS) <= qemu_max


def test_emulated_aarch64_names_the_host(tmp_path, monkeypatch):
    """qemu-user shows the x86 host's /proc/cpuinfo to the emulated program: say so instead of passing it off."""
    host = tmp_path / "cpuinfo"
    host.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_vnni\n")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert cpu_model(host) == "AMD EPYC"
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert cpu_model(host) == "emulated aarch64 on AMD EPYC"


def test_x86_flags_unchanged(tmp_path):
    sapphire = tmp_path / "cpuinfo"
    sapphire.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8\n")
    isa = cpu_isa(sapphire)
    assert has_int8_dot(isa) and has_x86_int8_dot(isa) and has_bf16(isa)
    assert not any(isa[flag] for flag in cpus.ARM_ISA_FLAGS)
    assert isa_line(isa).startswith("avx2 yes, avx512f yes, avx512_vnni yes")
