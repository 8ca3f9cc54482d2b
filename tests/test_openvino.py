"""OpenVINO: the NNCF INT8 IR (gated at export, batch-invariant), BF16 only where the CPU has it, routing, caching."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from seaembed.export.ranking import RANKING_GATE
from seaembed.runtime import Embedder
from seaembed.runtime.backends import BackendUnavailable, backend_candidates
from seaembed.runtime.backends.onnx_cpu import OnnxCpuBackend
from seaembed.runtime.cpus import cpu_isa, has_bf16
from seaembed.runtime.manifest import load_manifest

pytest.importorskip("openvino", reason="openvino is not installed (pip install 'seaembed[openvino]')")
pytest.importorskip("nncf", reason="nncf is not installed (pip install 'seaembed[export]')")

HAS_BF16 = has_bf16()


@pytest.fixture(scope="session")
def bf16_bundle(tmp_path_factory, e5_small_checkpoint):
    """Trained weights: BF16's error on real activations is what the gate is about."""
    from seaembed.export import export_bundle

    out = tmp_path_factory.mktemp("e5-bf16") / "bundle"
    export_bundle(str(e5_small_checkpoint), out, precisions=("fp32", "bf16"), ort_fused=False)
    return out


@pytest.fixture(scope="session")
def e5_int8_ir(tmp_path_factory, e5_small_bundle):
    """The shipped NNCF recipe applied to trained e5-small, outside the gate (which may drop it on some CPUs)."""
    from seaembed.export.openvino_export import quantize_int8
    from seaembed.runtime.tokenizer import Tokenizer

    manifest = load_manifest(e5_small_bundle)
    tokenizer = Tokenizer.from_file(e5_small_bundle / "tokenizer.json", max_tokens=manifest.max_tokens, prompts=manifest.prompts)
    xml = tmp_path_factory.mktemp("e5-ir") / "model.int8.openvino.xml"
    ops = quantize_int8(e5_small_bundle / "model.fp32.onnx", xml, tokenizer)
    return xml, tokenizer, ops


def test_cpu_isa_reads_cpuinfo_flags(tmp_path, monkeypatch):
    monkeypatch.delenv("SEAEMBED_CPU_ISA", raising=False)
    sapphire = tmp_path / "cpuinfo"
    sapphire.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_int8\n")
    isa = cpu_isa(sapphire)
    assert isa["amx_int8"] and isa["avx512_bf16"] and not isa["avx_vnni"]
    assert has_bf16(isa)
    epyc = tmp_path / "epyc"
    epyc.write_text("flags\t\t: fpu avx avx2 fma\n")
    assert not has_bf16(cpu_isa(epyc))
    assert not any(cpu_isa(tmp_path / "absent").values())


def test_int8_ir_is_gated_and_recorded(e5_small_bundle):
    """Shipped with files when it passes the gates on the export CPU; otherwise recorded with the numbers, no files, refused."""
    manifest = load_manifest(e5_small_bundle)
    artifact = next(a for a in manifest.artifacts if a.name == "openvino-int8")
    p = artifact.parity
    assert p["batch_sizes"] == [1, 16] and p["ranking"]["pool"] >= 300
    assert artifact.details["recipe"]["model_type"] == "transformer" and artifact.details["ops"]["FakeQuantize"] > 0
    for name in ("onnx-int8-dynamic", "onnx-int8-qdq"):  # the ranking measure is gated for every INT8 graph
        assert next(a for a in manifest.artifacts if a.name == name).parity["ranking"]["top1_agreement"] >= RANKING_GATE.min_top1_agreement
    if p["passed"] is True:
        assert p["mean_cosine"] >= 0.99 and p["min_cosine"] >= 0.97
        assert p["reference_recall_at_1"] - p["recall_at_1"] <= 0.01 + 1e-9
        assert set(artifact.sha256) == {"model.int8.openvino.xml", "model.int8.openvino.bin"}
        embedder = Embedder.load(e5_small_bundle, backend="openvino", precision="int8")
        assert (embedder.backend.name, embedder.describe()["precision"]) == ("openvino", "int8")
        # precision alone stays on ONNX Runtime's dynamic graph (measured faster; runtime/backends/__init__.py)
        assert Embedder.load(e5_small_bundle, precision="int8").backend.artifact.name == "onnx-int8-dynamic"
    else:
        assert p["passed"] is False and "misses the accuracy gate" in p["reason"]
        assert artifact.sha256 == {} and not (e5_small_bundle / "model.int8.openvino.bin").exists()
        assert Embedder.load(e5_small_bundle, precision="int8").backend.artifact.name == "onnx-int8-dynamic"
        with pytest.raises(BackendUnavailable, match="missed its accuracy gate at export"):
            Embedder.load(e5_small_bundle, backend="openvino", precision="int8")
        # named exactly: the same reason, never ONNX Runtime trying to open the IR's missing file
        with pytest.raises(BackendUnavailable, match="openvino-int8 missed its accuracy gate at export") as err:
            Embedder.load(e5_small_bundle, artifact="openvino-int8")
        assert "onnxruntime" not in str(err.value).lower() and "cpu:" not in str(err.value)
    with pytest.raises(BackendUnavailable, match="'openvino-int8' is in format 'openvino'; this backend runs onnx artifacts"):
        OnnxCpuBackend.select(manifest, None, "openvino-int8")


def test_int8_ir_is_close_to_pytorch_and_batch_invariant(e5_int8_ir, e5_small_st, retrieval_pairs):
    from seaembed.export.openvino_export import openvino_embed

    xml, tokenizer, ops = e5_int8_ir
    assert ops["FakeQuantize"] > 0 and xml.with_suffix(".bin").stat().st_size < 200e6  # int8 weights and embedding table
    queries = [p["query"] for p in retrieval_pairs]
    reference = e5_small_st.encode(queries, prompt_name="query", convert_to_numpy=True)
    together = openvino_embed(xml, tokenizer, "int8", batch_size=16)(queries, "query")
    alone = openvino_embed(xml, tokenizer, "int8", batch_size=1)(queries, "query")
    cos = np.sum(together * reference, axis=1)
    assert cos.mean() >= 0.99 and cos.min() >= 0.97
    # Static scales: batch-mates do not change the quantisation. On VNNI/AMX CPUs OpenVINO picks other int8
    # kernels (blocking, accumulation order) for other batch shapes: 0.99993 measured on a Zen 4, 1.0 on AVX2.
    assert np.sum(together * alone, axis=1).min() >= 0.9999


def test_openvino_fp32_is_exact(tiny_bundle, tiny_st, corpus):
    embedder = Embedder.load(tiny_bundle, backend="openvino")
    info = embedder.describe()
    assert (info["backend"], info["artifact"], info["precision"], info["device"], info["inference_precision"]) == ("openvino", "onnx-fp32", "fp32", "CPU", "f32")
    assert isinstance(info["isa"], list) and info["threads"] >= 1 and info["streams"] == 1
    assert embedder.backend.max_batch_size is None
    texts = corpus[:17]
    np.testing.assert_allclose(embedder.encode(texts, batch_size=5), tiny_st.encode(texts, batch_size=5), atol=1e-4)


def test_compiled_model_is_cached(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("SEAEMBED_CACHE_DIR", str(tmp_path))
    first = Embedder.load(tiny_bundle, backend="openvino").encode("xin chào")
    blobs = list((tmp_path / "openvino").glob("*.blob"))
    assert blobs, "no compiled blob under CACHE_DIR"
    second = Embedder.load(tiny_bundle, backend="openvino").encode("xin chào")
    assert list((tmp_path / "openvino").glob("*.blob")) == blobs  # imported, not recompiled
    np.testing.assert_array_equal(first, second)


def test_routing_keeps_int8_on_onnx_runtime_and_bf16_on_openvino(e5_small_bundle, tiny_bundle, monkeypatch):
    """int8 runs ORT's dynamic graph on every CPU kind (OpenVINO INT8 measured 0.75-0.76x of it on AVX2 and on
    Zen 4 VNNI); bf16 runs on OpenVINO, its only engine, when the bundle has the artifact."""
    import dataclasses

    manifest = load_manifest(e5_small_bundle)
    int8_ir = next(a for a in manifest.artifacts if a.name == "openvino-int8")
    bf16_ir = dataclasses.replace(int8_ir, name="openvino-bf16", precision="bf16", parity={"passed": True})

    def with_irs(passed):
        irs = [dataclasses.replace(int8_ir, parity={"passed": passed}), dataclasses.replace(bf16_ir, parity={"passed": passed})]
        return dataclasses.replace(manifest, artifacts=[*(a for a in manifest.artifacts if a.name != "openvino-int8"), *irs])

    for isa in ("avx2,avx512f,avx512_vnni,avx512_bf16", "avx2,amx_int8,amx_bf16,avx512_vnni", "avx2", "asimd,asimddp,i8mm,bf16,sve"):
        monkeypatch.setenv("SEAEMBED_CPU_ISA", isa)
        assert backend_candidates("cpu", with_irs(True), "int8") == ("cpu",), isa
        assert backend_candidates("cpu", with_irs(True), "bf16") == ("openvino", "cpu"), isa
    assert backend_candidates("cpu", with_irs(True), None) == ("cpu",)  # exact FP32 stays on ORT
    assert backend_candidates("cpu", with_irs(True), None, artifact="openvino-int8") == ("openvino",)  # an IR runs on OpenVINO only
    assert backend_candidates("auto", with_irs(True), "bf16") == ("tensorrt", "cuda", "openvino", "cpu")
    assert backend_candidates("auto", with_irs(True), "int8") == ("tensorrt", "cuda", "cpu")
    assert backend_candidates("cpu", with_irs(False), "bf16") == ("cpu",)  # missed its gate
    assert backend_candidates("cpu", load_manifest(tiny_bundle), "bf16") == ("cpu",)  # no IR in the bundle


def test_bf16_export_records_whether_its_gate_ran(bf16_bundle):
    artifact = next(a for a in load_manifest(bf16_bundle).artifacts if a.name == "openvino-bf16")
    assert artifact.file == "model.fp32.onnx" and artifact.details["requires_isa_any"] == ["avx512_bf16", "amx_bf16"]
    if HAS_BF16:
        assert artifact.parity["passed"] is True and artifact.parity["min_cosine"] >= 0.9999
    else:
        assert artifact.parity["passed"] is None and artifact.parity["measured"] is False
        assert "no avx512_bf16 or amx_bf16" in artifact.parity["reason"]




def test_ungated_bf16_is_refused_even_where_the_isa_exists(bf16_bundle, tmp_path, monkeypatch):
    """A bundle whose BF16 gate never ran is not trusted on a BF16 CPU either (acted out via SEAEMBED_CPU_ISA)."""
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for item in bf16_bundle.iterdir():  # hard links: a symlink leaving the bundle is refused at load (manifest_schema)
        try:
            os.link(item, bundle / item.name)
        except OSError:
            shutil.copy2(item, bundle / item.name)
    (bundle / "manifest.json").unlink()
    manifest = json.loads((bf16_bundle / "manifest.json").read_text())
    for a in manifest["artifacts"]:
        if a["name"] == "openvino-bf16":
            a["parity"] = {"passed": None, "measured": False, "reason": "exported on a CPU without BF16"}
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("SEAEMBED_CPU_ISA", "avx512f,avx512_bf16")
    with pytest.raises(BackendUnavailable, match="was never gated.*Re-export it here"):
        Embedder.load(bundle, precision="bf16")


def test_bf16_runs_close_to_pytorch_where_the_isa_exists_and_is_refused_elsewhere(bf16_bundle, e5_small_st, corpus, monkeypatch):
    monkeypatch.delenv("SEAEMBED_CPU_ISA", raising=False)
    if not HAS_BF16:  # this CPU's case; the other CPU kind runs the branch below
        with pytest.raises(BackendUnavailable, match="computes in BF16, which this CPU .* lacks: it needs avx512_bf16 or amx_bf16"):
            Embedder.load(bf16_bundle, precision="bf16")
        return
    embedder = Embedder.load(bf16_bundle, precision="bf16")
    assert embedder.describe()["inference_precision"] == "bf16"
    ours, reference = embedder.encode(corpus[:17]), e5_small_st.encode(corpus[:17])
    assert np.sum(ours * reference, axis=1).min() >= 0.9999
