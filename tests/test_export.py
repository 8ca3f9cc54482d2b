"""Export: manifest contents, ONNX validity, refusals with clear messages, the parity gate."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest

from seaembed.export import CheckpointError, ParityError, export_bundle, load_checkpoint
from seaembed.export.parity import compare, enforce
from seaembed.runtime.integrity import sha256_file
from seaembed.runtime.manifest import FORMAT_VERSION, load_manifest


def test_manifest_records_what_was_built(tiny_bundle, tiny_checkpoint):
    manifest = load_manifest(tiny_bundle)
    assert manifest.format_version == FORMAT_VERSION
    assert manifest.source["weights_sha256"] == sha256_file(tiny_checkpoint / "model.safetensors")
    files = manifest.source["files"]
    for name in ("config.json", "model.safetensors", "modules.json", "1_Pooling/config.json", "tokenizer.json", "sentencepiece.bpe.model"):
        assert files[name] == sha256_file(tiny_checkpoint / name), name
    arch = manifest.architecture
    assert (arch["family"], arch["layers"], arch["hidden"], arch["heads"], arch["ffn"]) == ("xlm-roberta", 2, 32, 4, 64)
    assert (arch["position_offset"], arch["pad_id"], arch["max_tokens"]) == (2, 1, 512)
    assert manifest.max_tokens == 512 and manifest.pooling == "mean" and manifest.normalize is True
    assert manifest.prompts == {"query": "query: ", "passage": "passage: ", "document": "passage: "}
    for key in ("seaembed", "torch", "transformers", "onnx", "onnxruntime"):
        assert key in manifest.producer
    names = {a.name for a in manifest.artifacts}
    assert names == {"onnx-fp32", "onnx-fp32-ort", "onnx-fp16"}
    for artifact in manifest.artifacts:
        assert artifact.opset >= 17
        assert [i["name"] for i in artifact.inputs] == ["input_ids", "attention_mask"]
        assert artifact.parity["passed"] is True and artifact.parity["probes"] == 26
        for name, sha in artifact.sha256.items():
            assert sha256_file(tiny_bundle / name) == sha
    for fp32 in manifest.find(precision="fp32"):
        assert fp32.parity["max_abs_diff"] <= 1e-5 and fp32.parity["min_cosine"] >= 0.99999


def test_fused_graph_is_ort_only_with_every_fusion(tiny_bundle):
    manifest = load_manifest(tiny_bundle)
    fused = next(a for a in manifest.artifacts if a.name == "onnx-fp32-ort")
    # 2 layers: one Attention, two SkipLayerNormalization and one BiasGelu each
    assert fused.details == {"ort_only": True, "execution_provider": "CPUExecutionProvider", "fusions": {"Attention": 2, "SkipLayerNormalization": 4, "BiasGelu": 2}}
    model = onnx.load(str(tiny_bundle / fused.file), load_external_data=False)
    assert {o.domain for o in model.opset_import} == {"", "com.microsoft"}


def test_graph_uses_external_data_and_native_layernorm(tiny_bundle):
    model = onnx.load(str(tiny_bundle / "model.fp32.onnx"), load_external_data=False)
    external = {t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL}
    assert "embeddings.word_embeddings.weight" in external
    locations = {e.value for t in model.graph.initializer for e in t.external_data if e.key == "location"}
    assert locations == {"model.fp32.onnx.data"}
    ops = {n.op_type for n in model.graph.node}
    assert "LayerNormalization" in ops
    assert [o.name for o in model.graph.output] == ["sentence_embedding", "pooled_embedding", "token_embeddings"]
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "sequence"]


def test_fp16_graph_keeps_layernorm_in_fp32(tiny_bundle):
    """(Softmax is FP16 inside the attention block TensorRT fuses: tests/test_tensorrt_readiness.py.)"""
    model = onnx.load(str(tiny_bundle / "model.fp16.onnx"), load_external_data=False)
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    for node in model.graph.node:
        if node.op_type == "LayerNormalization":
            assert types.get(node.output[0]) == onnx.TensorProto.FLOAT, node.name
    fp16_weights = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert len(fp16_weights) >= 12  # every projection of both layers


def _copy(checkpoint, tmp_path):
    target = tmp_path / "ckpt"
    shutil.copytree(checkpoint, target)
    return target


def test_max_seq_length_beyond_positions_is_refused(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint, tmp_path)
    (ckpt / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 1024}))
    with pytest.raises(CheckpointError, match="max_seq_length=1024 exceeds the 512 positions.*set max_seq_length to 512"):
        load_checkpoint(str(ckpt))


def test_tokenizer_is_converted_when_only_sentencepiece_model_exists(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint, tmp_path)
    (ckpt / "tokenizer.json").unlink()
    manifest = export_bundle(str(ckpt), tmp_path / "bundle")
    converted = json.loads((tmp_path / "bundle" / manifest.tokenizer["file"]).read_text())
    original = json.loads((tiny_checkpoint / "tokenizer.json").read_text())
    assert [p for p, _ in converted["model"]["vocab"]] == [p for p, _ in original["model"]["vocab"]]
    assert np.allclose([s for _, s in converted["model"]["vocab"]], [s for _, s in original["model"]["vocab"]])


def test_missing_tokenizer_is_refused(tiny_checkpoint, tmp_path):
    ckpt = _copy(tiny_checkpoint, tmp_path)
    (ckpt / "tokenizer.json").unlink()
    (ckpt / "sentencepiece.bpe.model").unlink()
    with pytest.raises(CheckpointError, match="neither tokenizer.json nor sentencepiece.bpe.model"):
        load_checkpoint(str(ckpt))


def test_existing_output_is_not_overwritten_silently(tiny_checkpoint, tmp_path):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_bundle(str(tiny_checkpoint), out)
    assert (out / "keep.txt").read_text() == "mine"


def test_parity_gate_fails_with_the_numbers():
    reference = np.eye(3, dtype=np.float32)
    candidate = reference + np.float32(0.01)
    stats = dict(compare(reference, candidate), probes=3)
    with pytest.raises(ParityError, match=r"fp32 graph fails parity .* max \|diff\| 0.01 > 0.0001"):
        enforce(stats, "fp32")


def test_wrong_weights_fail_the_export(tiny_checkpoint, tmp_path, monkeypatch):
    """A graph built from other weights than PyTorch runs must not become a bundle."""
    from seaembed.export.builders import onnx_float

    real_builder = onnx_float.build_encoder_graph

    def perturbed(arch, weights, normalize, precision="fp32", fused=False):
        weights = dict(weights)
        bias = weights["encoder.layer.0.output.dense.bias"]
        # non-uniform: a constant shift would be cancelled by the LayerNorm that follows
        weights["encoder.layer.0.output.dense.bias"] = bias + np.linspace(-1, 1, bias.size, dtype=np.float32)
        return real_builder(arch, weights, normalize, precision, fused=fused)

    monkeypatch.setattr(onnx_float, "build_encoder_graph", perturbed)
    with pytest.raises(ParityError, match="fp32 graph fails parity"):
        export_bundle(str(tiny_checkpoint), tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()
