"""`make bench-check`'s comparison (benchmarks/micro/check.py) on run files in pytest-benchmark's format:
what fails, what passes, what it says; and the band record.py measures."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

MICRO = Path(__file__).resolve().parent.parent / "benchmarks" / "micro"
KIND = "test-cpu-avx2-2cpu"


def micro_module(name: str):
    spec = importlib.util.spec_from_file_location(f"micro_{name}", MICRO / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    sys.path.insert(0, str(MICRO))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(MICRO))
    return module


def write_run(path: Path, medians: dict[str, float], tokenizer_env: str = "") -> Path:
    benchmarks = [
        {
            "name": name,
            "group": "tokenizer: corpus, one text at a time",
            "extra_info": {"role": "reference" if "tokenizers" in name else "guarded"},
            "stats": {"median": median},
        }
        for name, median in medians.items()
    ]
    machine = {"seaembed_cpu_kind": KIND, "seaembed_tokenizer_env": tokenizer_env, "load_average": [1.0, 1.0, 1.0]}
    path.write_text(json.dumps({"machine_info": machine, "benchmarks": benchmarks}))
    return path


def write_baseline(folder: Path, entries: dict[str, tuple[float, float]]) -> None:
    folder.mkdir(exist_ok=True)
    benchmarks = {
        name: {"group": "tokenizer: corpus, one text at a time", "role": "reference" if "tokenizers" in name else "guarded",
               "median_s": median, "run_medians_s": [median] * 3, "relative_spread": 0.0, "band": width, "extra": {}}
        for name, (median, width) in entries.items()
    }
    payload = {"cpu_kind": KIND, "recorded": "2026-01-01T00:00:00Z", "commit": "abc1234", "runs": 3, "k": 2.0, "floor": 0.1,
               "load_average_1min_per_run": [1.0, 1.0, 1.0], "note": "", "benchmarks": benchmarks}
    (folder / f"{KIND}.json").write_text(json.dumps(payload))


def check(run: Path, baselines: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(MICRO / "check.py"), str(run), "--baselines", str(baselines), "--report-dir", str(tmp_path / "report")]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


BASELINE = {"bench_encode_single[seaembed]": (0.001, 0.5), "bench_encode_single[tokenizers]": (0.010, 0.5)}


def test_within_band_passes_and_reports_the_same_run_ratio(tmp_path):
    write_baseline(tmp_path / "baselines", BASELINE)
    run = write_run(tmp_path / "run.json", {"bench_encode_single[seaembed]": 0.00149, "bench_encode_single[tokenizers]": 0.0298})
    result = check(run, tmp_path / "baselines", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 guarded benchmarks within their bands" in result.stdout
    assert "bench_encode_single[seaembed] is 20.0× as fast as `tokenizers` (baseline 10.0×)" in result.stdout
    assert (tmp_path / "report" / "last-check.md").exists()


def test_slower_than_the_band_fails_with_one_line_naming_baseline_now_and_band(tmp_path):
    write_baseline(tmp_path / "baselines", BASELINE)
    run = write_run(tmp_path / "run.json", {"bench_encode_single[seaembed]": 0.003, "bench_encode_single[tokenizers]": 0.010}, "python")
    result = check(run, tmp_path / "baselines", tmp_path)
    assert result.returncode == 1
    regressions = [line for line in result.stdout.splitlines() if line.startswith("REGRESSION")]
    assert regressions == ["REGRESSION bench_encode_single[seaembed]: baseline 1.000 ms, now 3.000 ms (+200%), band +50%"]
    assert "SEAEMBED_TOKENIZER=python" in result.stdout


def test_the_reference_is_not_gated(tmp_path):
    write_baseline(tmp_path / "baselines", BASELINE)
    run = write_run(tmp_path / "run.json", {"bench_encode_single[seaembed]": 0.001, "bench_encode_single[tokenizers]": 0.100})
    result = check(run, tmp_path / "baselines", tmp_path)
    assert result.returncode == 0, result.stdout
    assert "| bench_encode_single[tokenizers] | 10.000 ms | 100.000 ms | +900% | +50% | reference (not gated) |" in result.stdout


def test_a_benchmark_missing_from_the_run_fails(tmp_path):
    write_baseline(tmp_path / "baselines", BASELINE)
    run = write_run(tmp_path / "run.json", {"bench_encode_single[tokenizers]": 0.010})
    result = check(run, tmp_path / "baselines", tmp_path)
    assert result.returncode == 1
    assert "MISSING bench_encode_single[seaembed]: in the baseline, not in this run" in result.stdout


def test_no_baseline_for_the_cpu_kind_says_how_to_record_one_and_passes(tmp_path):
    (tmp_path / "baselines").mkdir()
    run = write_run(tmp_path / "run.json", {"bench_encode_single[seaembed]": 0.001})
    result = check(run, tmp_path / "baselines", tmp_path)
    assert result.returncode == 0
    assert f"no baseline for this CPU kind ({KIND})" in result.stdout
    assert "make bench-baseline" in result.stdout


def test_band_is_k_times_the_spread_of_the_run_medians_with_a_floor():
    band = micro_module("baseline").band
    center, spread, width = band([1.0, 1.1, 0.9, 1.0, 1.05], k=2.0, floor=0.1)
    assert (center, spread, width) == (1.0, pytest.approx(0.2), pytest.approx(0.4))
    assert band([2.0, 2.0, 2.02], k=2.0, floor=0.1)[2] == 0.1


def test_cpu_kind_names_model_isa_flags_and_cpus(monkeypatch):
    monkeypatch.setenv("SEAEMBED_CPU_ISA", "avx2,avx512_vnni")
    monkeypatch.setenv("SEAEMBED_CPUS", "3")
    kind = micro_module("cpu_kind").cpu_kind()
    assert kind.endswith("-avx2-avx512-vnni-3cpu"), kind
    assert kind == kind.lower() and " " not in kind and "/" not in kind
