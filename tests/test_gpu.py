"""GPU backends (run on a machine with an NVIDIA GPU; skipped with the reason elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest

from seaembed.runtime import Embedder


@pytest.fixture(scope="module")
def gpu_bundle(tmp_path_factory, e5_small_checkpoint):
    from seaembed.export import export_bundle

    out = tmp_path_factory.mktemp("gpu-bundle") / "bundle"
    export_bundle(str(e5_small_checkpoint), out, precisions=("fp32", "fp16", "int8"))
    return out


@pytest.mark.gpu
def test_cuda_fp16_matches_sentence_transformers_fp32(gpu_bundle, e5_small_st, corpus):
    embedder = Embedder.load(gpu_bundle, backend="cuda")
    assert embedder.backend.artifact.precision == "fp16"
    got = embedder.encode(corpus, prompt_name="query")
    expected = e5_small_st.encode(corpus, prompt_name="query")
    assert np.all(np.isfinite(got))
    assert np.min(np.sum(got * expected, axis=1)) >= 0.9999


@pytest.mark.gpu
def test_auto_backend_says_what_it_picked(gpu_bundle):
    embedder = Embedder.load(gpu_bundle, backend="auto")
    assert embedder.backend.name in ("tensorrt", "cuda")


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision,min_mean_cos", [("fp16", 0.9999), ("int8", 0.99)])
def test_tensorrt_engines_match_sentence_transformers(tmp_path, e5_small_checkpoint, e5_small_st, corpus, precision, min_mean_cos):
    from seaembed.export import export_bundle
    from seaembed.export.tensorrt_build import EngineProfile

    bundle = tmp_path / "bundle"
    manifest = export_bundle(str(e5_small_checkpoint), bundle, precisions=(precision,), target="tensorrt", engine_profile=EngineProfile(max_batch=32, opt_batch=8, opt_seq=64))
    engine = next(a for a in manifest.artifacts if a.format == "tensorrt")
    assert engine.details["strongly_typed"] and engine.details["tensorrt_version"]
    embedder = Embedder.load(bundle, backend="tensorrt", precision=precision)
    got = embedder.encode(corpus, prompt_name="query")
    cos = np.sum(got * e5_small_st.encode(corpus, prompt_name="query"), axis=1)
    assert np.all(np.isfinite(got)) and cos.mean() >= min_mean_cos
