"""The CUDA defaults (issue 22) where a CPU can check them: which graphs the cuda backend opens for a
bundle, which of them takes a batch, the opt-outs, and which graphs `seaembed export` plans.

The backend's sessions need a GPU (tests/test_gpu.py); the choice is pure (runtime/backends/cuda_choice.py)
and is checked here against real manifests, the real packed-batch planner and the real export planner.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from seaembed.export.builders import ExportSettings
from seaembed.export.builders.base import resolve_cuda_attention
from seaembed.export.keep import check_keep, planned_artifacts
from seaembed.runtime.backends.cuda_choice import (
    ALWAYS_PACKED,
    PACKED_MIN_BATCH,
    PACKED_WASTE_THRESHOLD,
    CudaChoice,
    choose,
    cuda_graphs_enabled,
    graph_candidates,
    packed_waste_threshold,
    padding_waste,
    takes_packed,
)
from seaembed.runtime.backends.cuda_graphs import bucket_for
from seaembed.runtime.backends.onnx_cuda import OnnxCudaBackend
from seaembed.runtime.manifest import load_manifest
from seaembed.runtime.packing import plan_packed_batches

NEW_BUNDLE = ("onnx-fp32", "onnx-fp16", "onnx-fp16-ort", "onnx-fp16-mha", "onnx-fp16-packed")


def test_padding_waste_is_the_padded_share_of_the_batch():
    assert padding_waste([512, 512, 512]) == 0.0
    assert padding_waste([8, 512]) == pytest.approx(1 - 520 / 1024)
    assert padding_waste([1, 1, 1, 4]) == pytest.approx(1 - 7 / 16)
    for bad in ([], [3, 0]):
        with pytest.raises(ValueError):
            padding_waste(bad)


def test_threshold_sits_where_packed_and_mha_broke_even_on_the_h200():
    # packed ran 0.90-0.92x mha on unpadded batches (issue 22): break-even waste 1 - 1/1.10
    assert 1 - 1 / 1.10 < PACKED_WASTE_THRESHOLD < 0.15


def test_which_graph_takes_a_batch():
    uniform = [128] * 64
    assert not takes_packed(uniform)  # no padding: mha won every such grid cell
    assert takes_packed([10, 10, 10, 10, 4])  # waste 0.12
    assert not takes_packed([10, 10, 10, 10, 9])  # waste 0.02
    assert not takes_packed([512, 8, 8])  # fewer than PACKED_MIN_BATCH inputs
    assert PACKED_MIN_BATCH == 4 and takes_packed([512, 8, 8, 8])
    assert not takes_packed([100, 8, 8, 8], graph_covers=bucket_for(4, 100) is not None)  # a replayed CUDA graph wins
    assert takes_packed([200, 8, 8, 8], graph_covers=bucket_for(4, 200) is not None)  # above the largest bucket
    assert not takes_packed([10, 10, 10, 10, 4], packed_waste=0.5)  # a higher threshold keeps it padded
    assert takes_packed([10, 10, 10, 10, 9], packed_waste=0.0)  # SEAEMBED_CUDA_PACKED_WASTE=0: any padding
    assert not takes_packed([10, 10, 10, 10], packed_waste=0.0)
    assert takes_packed([10, 10, 10, 10], packed_waste=ALWAYS_PACKED)  # a packed graph named by artifact=
    assert not takes_packed([10, 10, 10], packed_waste=ALWAYS_PACKED)


def test_mixed_corpus_goes_packed_and_uniform_batches_stay_padded():
    """The corpus bench_gpu.py times (8-512 tokens, seed 0), planned as the Embedder plans a ragged backend."""
    rng = np.random.default_rng(0)
    mixed = [int(n) for n in rng.integers(8, 513, 512)]
    routes = [takes_packed([mixed[i] for i in batch]) for batch in plan_packed_batches(mixed, 128, 65536)]
    assert len(routes) == 4 and all(routes)  # sorted batches of 128 still span 110-400 tokens
    uniform = [256] * 512
    assert not any(takes_packed([uniform[i] for i in batch]) for batch in plan_packed_batches(uniform, 128, 65536))


def test_threshold_and_graphs_can_be_overridden_and_bad_values_are_refused():
    assert packed_waste_threshold({}) == PACKED_WASTE_THRESHOLD
    assert packed_waste_threshold({"SEAEMBED_CUDA_PACKED_WASTE": "0.3"}) == 0.3
    assert packed_waste_threshold({"SEAEMBED_CUDA_PACKED_WASTE": "1"}) == 1.0
    for bad in ("abc", "1.5", "-0.1"):
        with pytest.raises(ValueError, match="SEAEMBED_CUDA_PACKED_WASTE"):
            packed_waste_threshold({"SEAEMBED_CUDA_PACKED_WASTE": bad})
    assert cuda_graphs_enabled({}) is True
    assert cuda_graphs_enabled({"SEAEMBED_CUDA_GRAPHS": "0"}) is False
    assert cuda_graphs_enabled({"SEAEMBED_CUDA_GRAPHS": "1"}) is True
    with pytest.raises(ValueError, match="SEAEMBED_CUDA_GRAPHS"):
        cuda_graphs_enabled({"SEAEMBED_CUDA_GRAPHS": "yes"})


def test_choice_for_new_older_and_cpu_built_bundles():
    assert choose(NEW_BUNDLE, "onnx-fp16-mha", explicit=False) == CudaChoice("onnx-fp16-mha", "onnx-fp16-packed", PACKED_WASTE_THRESHOLD)
    older = ("onnx-fp32", "onnx-fp16", "onnx-fp16-ort")  # exported before the defaults
    assert choose(older, "onnx-fp16-ort", explicit=False) == CudaChoice("onnx-fp16-ort")
    assert choose(("onnx-fp32", "onnx-fp16"), "onnx-fp16", explicit=False) == CudaChoice("onnx-fp16")
    assert choose(NEW_BUNDLE, "onnx-fp32", explicit=False) == CudaChoice("onnx-fp32")  # precision="fp32"
    # a packed graph without its mha sibling (pruned) still pairs with the best padded one there is
    assert choose(("onnx-fp16", "onnx-fp16-packed"), "onnx-fp16", explicit=False).packed == "onnx-fp16-packed"
    assert choose(NEW_BUNDLE, "onnx-fp16-mha", explicit=False, packed_waste=0.3).packed_waste == 0.3


def test_an_explicit_artifact_wins():
    assert choose(NEW_BUNDLE, "onnx-fp16-ort", explicit=True) == CudaChoice("onnx-fp16-ort")
    assert choose(NEW_BUNDLE, "onnx-fp16-mha", explicit=True) == CudaChoice("onnx-fp16-mha")
    named_packed = choose(NEW_BUNDLE, "onnx-fp16-packed", explicit=True)
    assert named_packed == CudaChoice("onnx-fp16-mha", "onnx-fp16-packed", ALWAYS_PACKED)
    assert named_packed.describe() == {
        "padded_artifact": "onnx-fp16-mha", "packed_artifact": "onnx-fp16-packed", "packed_above_waste": ALWAYS_PACKED, "packed_min_batch": PACKED_MIN_BATCH,
    }
    assert choose(("onnx-fp16-packed",), "onnx-fp16-packed", explicit=True).padded is None


def test_cuda_graph_candidates_fall_back_to_graphs_ort_captured():
    assert graph_candidates(CudaChoice("onnx-fp16-mha", "onnx-fp16-packed"), NEW_BUNDLE) == ["onnx-fp16-mha", "onnx-fp16-ort", "onnx-fp16"]
    assert graph_candidates(CudaChoice("onnx-fp16-ort"), ("onnx-fp16-ort", "onnx-fp32")) == ["onnx-fp16-ort"]
    assert graph_candidates(CudaChoice("onnx-fp32"), NEW_BUNDLE) == ["onnx-fp32"]  # fp32 asked: no fp16 graph instead
    assert graph_candidates(CudaChoice(None, "onnx-fp16-packed"), NEW_BUNDLE) == []


def _with_names(manifest, names):
    """The manifest with copies of its onnx-fp16 artifact under these names (what a GPU export adds)."""
    fp16 = next(a for a in manifest.artifacts if a.name == "onnx-fp16")
    extra = [dataclasses.replace(fp16, name=n, details={"packed": True} if n.endswith("packed") else {}) for n in names]
    return dataclasses.replace(manifest, artifacts=[*manifest.artifacts, *extra])


def test_cuda_backend_prefers_mha_then_falls_back_on_real_manifests(tiny_bundle):
    cpu_built = load_manifest(tiny_bundle)  # this machine has no CUDA: onnx-fp16 but no -ort/-mha/-packed
    assert {"onnx-fp16", "onnx-fp32"} <= {a.name for a in cpu_built.artifacts}
    assert not {"onnx-fp16-ort", "onnx-fp16-mha", "onnx-fp16-packed"} & {a.name for a in cpu_built.artifacts}
    assert OnnxCudaBackend.select(cpu_built, None, None).name == "onnx-fp16"
    older = _with_names(cpu_built, ["onnx-fp16-ort"])
    assert OnnxCudaBackend.select(older, "fp16", None).name == "onnx-fp16-ort"
    new = _with_names(cpu_built, ["onnx-fp16-ort", "onnx-fp16-mha", "onnx-fp16-packed"])
    for precision in (None, "fp16"):
        assert OnnxCudaBackend.select(new, precision, None).name == "onnx-fp16-mha"
    assert OnnxCudaBackend.select(new, "fp32", None).name == "onnx-fp32"
    assert OnnxCudaBackend.select(new, None, "onnx-fp16-ort").name == "onnx-fp16-ort"


def test_export_plans_the_cuda_attention_graphs_only_where_cuda_can_gate_them():
    base = ["onnx-fp32", "onnx-fp32-ort", "onnx-fp16"]
    assert planned_artifacts(("fp32", "fp16"), "onnx", True, cuda=False) == base
    assert planned_artifacts(("fp32", "fp16"), "onnx", True, cuda=True) == [*base, "onnx-fp16-ort", "onnx-fp16-mha", "onnx-fp16-packed"]
    assert planned_artifacts(("fp32", "fp16"), "onnx", True, cuda=True, cuda_attention=("none",)) == [*base, "onnx-fp16-ort"]
    assert planned_artifacts(("fp32", "fp16"), "onnx", True, cuda=True, cuda_attention=("mha",)) == [*base, "onnx-fp16-ort", "onnx-fp16-mha"]
    assert planned_artifacts(("fp32",), "onnx", True, cuda=True) == ["onnx-fp32", "onnx-fp32-ort"]  # no fp16 asked
    assert ExportSettings.probe(("fp32", "fp16")).cuda_attention == ()  # this machine: CPU onnxruntime
    with pytest.raises(ValueError, match="none builds no CUDA attention graph"):
        resolve_cuda_attention(("none", "mha"), ("fp16",), cuda=True)
    with pytest.raises(ValueError, match="onnx-fp16-packed: .*built only where onnxruntime has CUDA"):
        check_keep("onnx-fp16-packed", planned_artifacts(("fp32", "fp16"), "onnx", True, cuda=False))
    assert check_keep("onnx-fp16-mha", planned_artifacts(("fp16",), "onnx", True, cuda=True)) == ["onnx-fp16-mha"]


def test_cli_refuses_none_mixed_with_a_variant(tiny_checkpoint, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "seaembed.runtime.cli", "export", str(tiny_checkpoint), "--out", str(tmp_path / "b"), "--precision", "fp16", "--cuda-attention", "none,mha"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "cannot be combined with mha" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "b").exists()


def test_gpu_bench_smoke_run_feeds_the_done_when_verdict(tiny_bundle, tiny_checkpoint, tmp_path):
    """bench_gpu.py as device_gpu_defaults.sh runs it (on the CPU: --device cpu), then gpu_done_when.py on its report."""
    bench = [sys.executable, "benchmarks/bench_gpu.py", "--bundle", str(tiny_bundle), "--checkpoint", str(tiny_checkpoint), "--backend", "cpu",
             "--device", "cpu", "--small-grid", "--artifacts", "none", "--mixed-count", "16", "--out", str(tmp_path), "--tag", "smoke"]
    done = subprocess.run(bench, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "smoke.json").read_text())
    assert [(r["batch"], r["seq"]) for r in report["grid"]] == [(1, 16), (1, 128), (8, 16), (8, 128)]
    assert all(r["seaembed default"]["finite"] is True and r["seaembed default"]["ratio"] > 0 for r in report["grid"])
    assert report["mixed"]["seaembed default"]["ratio"] > 0
    verdict = subprocess.run([sys.executable, "benchmarks/gpu_done_when.py", str(tmp_path / "smoke.json"), str(tmp_path / "missing.json"), "--md", str(tmp_path / "v.md")],
                             capture_output=True, text=True, timeout=60)
    assert verdict.returncode == 1  # the missing report fails, whatever the CPU measured
    rows = [line for line in (tmp_path / "v.md").read_text().splitlines() if line.startswith("| smoke")]
    assert len(rows) == 4 * 2 + 1 + 2 * 2  # per shape ratio and finite, mixed, per prompt min cosine and finite
    assert "| missing: report | unreadable (FileNotFoundError)" in (tmp_path / "v.md").read_text()
    parity = [r for r in rows if "min cosine" in r]
    assert all("| pass |" in r for r in parity), parity  # the CPU FP32 default matches sentence-transformers


def test_done_when_floors_follow_issue_22(monkeypatch):
    monkeypatch.syspath_prepend("benchmarks")
    from gpu_done_when import checks

    def cell(ratio):
        return {"seaembed default": {"ratio": ratio, "finite": True}}

    report = {
        "tag": "r",
        "grid": [{"batch": 8, "seq": 128, **cell(3.9)}, {"batch": 8, "seq": 512, **cell(1.1)}, {"batch": 64, "seq": 16, **cell(1.09)}, {"batch": 1, "seq": 16, **cell(4.0)}],
        "mixed": {"seaembed default": {"ratio": 1.49}},
        "steps": {"parity_query seaembed default": {"min_cosine": 0.99989, "finite": True}, "parity_none seaembed onnx-fp16-ort": {"min_cosine": 0.5, "finite": False}},
    }
    verdict = {c["check"]: c["passed"] for c in checks(report)}
    assert verdict == {
        "r: 8 × 128 × PyTorch": False, "r: 8 × 128 finite": True,  # batch ≤ 8 × ≤ 128 needs 4×
        "r: 8 × 512 × PyTorch": True, "r: 8 × 512 finite": True,
        "r: 64 × 16 × PyTorch": False, "r: 64 × 16 finite": True,
        "r: 1 × 16 × PyTorch": True, "r: 1 × 16 finite": True,
        "r: mixed corpus × PyTorch": False,
        "r: parity_query min cosine": False, "r: parity_query finite": True,  # only the default path is judged
    }
