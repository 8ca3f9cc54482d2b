"""TensorRT builder and backend: the decisions that need no GPU here, the engines themselves where TensorRT is.

CPU: which engines may load where (version, version compatibility, lean runtime, compute
capability, GPU model, hardware compatibility level), timing-cache fallbacks, refusals before
any parsing. GPU + TensorRT (markers): engines of both families built, loaded, matched to
sentence-transformers, and freed.
"""

from __future__ import annotations

import numpy as np
import pytest

from seaembed.export.tensorrt_build import (
    EngineBuildError,
    _check_graph,
    attach_timing_cache,
    builder_unavailable_reason,
    save_timing_cache,
)
from seaembed.runtime.backends.tensorrt_backend import compatibility_problem

H100, H200 = "NVIDIA H100 80GB HBM3", "NVIDIA H200"


def _details(**kw) -> dict:
    return {"tensorrt_version": "10.13.0", "compute_capability": "9.0", "gpu": H100, "hardware_compatibility_level": "NONE", "version_compatible": False} | kw


@pytest.mark.parametrize(
    "details,runtime,version,cc,gpu,expected",
    [
        (_details(), "tensorrt", "10.13.0", "9.0", H100, None),
        (_details(), "tensorrt", "10.14.1", "9.0", H100, "built by TensorRT 10.13.0"),
        (_details(), "tensorrt_lean", "10.13.0", "9.0", H100, "lean runtime"),
        (_details(version_compatible=True), "tensorrt_lean", "10.14.1", "9.0", H100, None),
        (_details(version_compatible=True), "tensorrt", "10.12.0", "9.0", H100, "version compatible from TensorRT 10.13.0"),
        (_details(version_compatible=True), "tensorrt", "11.1.0", "9.0", H100, "within major 10"),
        (_details(), "tensorrt", "10.13.0", "8.9", H100, "compute capability 9.0"),
        (_details(), "tensorrt", "10.13.0", "9.0", H200, "without hardware compatibility"),
        (_details(hardware_compatibility_level="SAME_COMPUTE_CAPABILITY"), "tensorrt", "10.13.0", "9.0", H200, None),
        (_details(hardware_compatibility_level="SAME_COMPUTE_CAPABILITY"), "tensorrt", "10.13.0", "10.0", H200, "compute capability 9.0"),
        (_details(hardware_compatibility_level="AMPERE_PLUS"), "tensorrt", "10.13.0", "8.6", "NVIDIA A10", None),
        (_details(gpu=None), "tensorrt", "10.13.0", "9.0", H200, None),  # manifests from before the GPU was recorded
    ],
)
def test_engines_load_only_where_they_were_built_for(details, runtime, version, cc, gpu, expected):
    problem = compatibility_problem(details, runtime, version, cc, gpu)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and expected in problem


class _Cache:
    def __init__(self, data: bytes):
        self.data = data

    def serialize(self) -> bytes:
        return b"serialized:" + self.data


class _Config:
    """IBuilderConfig's timing-cache calls as pyCoreDoc.h documents them: None for unreadable bytes, False on a mismatch."""

    def __init__(self, readable: bool = True, matches: bool = True):
        self.readable, self.matches, self.attached = readable, matches, None

    def create_timing_cache(self, data: bytes):
        return _Cache(data) if (self.readable or data == b"") else None

    def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
        if cache.data and not self.matches:
            return False
        self.attached = cache
        return True

    def get_timing_cache(self):
        return self.attached


@pytest.mark.parametrize("readable,matches", [(True, True), (False, True), (True, False)])
def test_timing_cache_falls_back_to_an_empty_one(readable, matches, tmp_path):
    config = _Config(readable, matches)
    attached = attach_timing_cache(config, b"old cache")
    assert attached.data == (b"old cache" if readable and matches else b"")
    path = tmp_path / "timing.cache"
    assert save_timing_cache(config, path) and path.read_bytes() == b"serialized:" + attached.data
    assert not list(tmp_path.glob("*.tmp"))


def test_no_timing_cache_attached_saves_nothing(tmp_path):
    assert save_timing_cache(_Config(), tmp_path / "timing.cache") is False
    assert not (tmp_path / "timing.cache").exists()


def test_a_graph_tensorrt_cannot_take_fails_before_parsing(tiny_bundle):
    with pytest.raises(EngineBuildError, match=r"model.fp32.ort.onnx is not ready for TensorRT .*com.microsoft"):
        _check_graph(tiny_bundle / "model.fp32.ort.onnx")
    assert "onnx-tensorrt" in _check_graph(tiny_bundle / "model.fp16.onnx")


def test_building_without_tensorrt_says_what_to_install(tmp_path):
    pytest.importorskip("onnx")
    try:
        import tensorrt  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        pytest.skip("TensorRT is installed here")
    from seaembed.export.tensorrt_build import build_engine

    assert "pip install tensorrt-cu13" in builder_unavailable_reason()
    with pytest.raises(EngineBuildError, match="full TensorRT package"):
        build_engine(tmp_path / "model.fp16.onnx", tmp_path, "fp16", "onnx-fp16")


def test_embedder_close_is_safe_and_idempotent(tiny_bundle):
    from seaembed.runtime import Embedder

    with Embedder.load(tiny_bundle) as embedder:
        vector = embedder.encode("xin chào")
    embedder.close()
    assert np.isfinite(vector).all()


# -- on a GPU with TensorRT ----------------------------------------------------------------------


def _needs_builder():
    reason = builder_unavailable_reason()
    if reason:
        pytest.skip(reason)  # e.g. a lean-runtime-only install runs engines but cannot build them


@pytest.mark.tensorrt
@pytest.mark.parametrize("family", ["xlm-roberta", "bert"])
@pytest.mark.parametrize("precision,min_mean_cos", [("fp16", 0.9999), ("int8", 0.99)])
def test_engines_match_sentence_transformers(request, tmp_path, corpus, family, precision, min_mean_cos):
    _needs_builder()
    from sentence_transformers import SentenceTransformer

    from seaembed.export import export_bundle
    from seaembed.export.tensorrt_build import EngineProfile
    from seaembed.runtime import Embedder

    checkpoint = request.getfixturevalue("tiny_checkpoint" if family == "xlm-roberta" else "e5_small_checkpoint")
    bundle = tmp_path / "bundle"
    manifest = export_bundle(
        str(checkpoint), bundle, precisions=(precision,), target="tensorrt", accuracy_gates=family == "bert",
        engine_profile=EngineProfile(max_batch=32, opt_batch=8, opt_seq=64),
    )
    engine = next(a for a in manifest.artifacts if a.format == "tensorrt")
    assert engine.details["strongly_typed"] and engine.details["hardware_compatibility_level"] == "NONE"
    with Embedder.load(bundle, backend="tensorrt", precision=precision) as embedder:
        assert embedder.backend.max_batch_size == 32  # read from the engine's profile
        got = embedder.encode(corpus, prompt_name="query")
    expected = SentenceTransformer(str(checkpoint), device="cpu").encode(corpus, prompt_name="query")
    cos = np.sum(got * expected, axis=1)
    assert np.all(np.isfinite(got)) and cos.mean() >= min_mean_cos
    with pytest.raises(RuntimeError, match="closed"):
        embedder.backend.embed(np.zeros((1, 4), np.int64), np.ones((1, 4), np.int64))


@pytest.mark.tensorrt
def test_version_compatible_engine_runs_with_host_code_allowed(tmp_path, tiny_checkpoint):
    _needs_builder()
    from seaembed.export import export_bundle
    from seaembed.export.tensorrt_build import EngineProfile
    from seaembed.runtime import Embedder

    manifest = export_bundle(
        str(tiny_checkpoint), tmp_path / "bundle", precisions=("fp16",), target="tensorrt",
        engine_profile=EngineProfile(max_batch=8, opt_batch=4, opt_seq=32),
        engine_compatibility={"version_compatible": True, "hardware_compatibility": "same-compute-capability"},
    )
    engine = next(a for a in manifest.artifacts if a.format == "tensorrt")
    assert engine.details["version_compatible"] and engine.details["hardware_compatibility_level"] == "SAME_COMPUTE_CAPABILITY"
    with Embedder.load(tmp_path / "bundle", backend="tensorrt") as embedder:
        assert np.isfinite(embedder.encode(["a", "bb cc"])).all()
