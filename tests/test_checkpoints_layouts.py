"""The checkpoint reader on every sentence-transformers layout (3.x-6.x), what it refuses, and the hub chooser.

Layouts other than the installed version's are written here as the files those versions save
(read from their save() code); refusals assert the message names the file, the setting and
what is supported.
"""

from __future__ import annotations

import json
import shutil

import pytest

from seaembed.export import CheckpointError, load_checkpoint
from seaembed.export.weights import choose_hub_files

OLD_TYPES = ["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling", "sentence_transformers.models.Normalize"]
V54_TYPES = [
    "sentence_transformers.base.modules.transformer.Transformer",
    "sentence_transformers.sentence_transformer.modules.pooling.Pooling",
    "sentence_transformers.sentence_transformer.modules.normalize.Normalize",
]
V6_TYPES = [*V54_TYPES[:2], "sentence_transformers.base.modules.normalize.Normalize"]
LEGACY_MEAN = {
    "word_embedding_dimension": 32,
    "pooling_mode_cls_token": False,
    "pooling_mode_mean_tokens": True,
    "pooling_mode_max_tokens": False,
    "pooling_mode_mean_sqrt_len_tokens": False,
    "pooling_mode_weightedmean_tokens": False,
    "pooling_mode_lasttoken": False,
    "include_prompt": True,
}
V6_TRANSFORMER = {
    "transformer_task": "feature-extraction",
    "modality_config": {"text": {"method": "forward", "method_output_name": "last_hidden_state"}},
    "module_output_name": "token_embeddings",
}


@pytest.fixture
def ckpt(tiny_checkpoint, tmp_path):
    target = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint, target)
    return target


def _write(path, data):
    path.write_text(json.dumps(data, indent=2))


def _read(path):
    return json.loads(path.read_text())


def _set_modules(ckpt, types, paths=("", "1_Pooling", "2_Normalize")):
    _write(ckpt / "modules.json", [{"idx": i, "name": str(i), "path": p, "type": t} for i, (t, p) in enumerate(zip(types, paths, strict=False))])


def _set_pooling(ckpt, config):
    _write(ckpt / "1_Pooling" / "config.json", config)


def _set_tokenizer_max_length(ckpt, value):
    config = _read(ckpt / "tokenizer_config.json")
    config["model_max_length"] = value
    _write(ckpt / "tokenizer_config.json", config)


@pytest.mark.parametrize(
    "types, pooling, transformer, tokenizer_max, expected_max",
    [
        pytest.param(OLD_TYPES, LEGACY_MEAN, {"max_seq_length": 256, "do_lower_case": False}, 512, 256, id="3.x-5.3"),
        pytest.param(V54_TYPES, {"embedding_dimension": 32, "pooling_mode": "mean", "include_prompt": True}, V6_TRANSFORMER, 128, 128, id="5.4-5.7"),
        pytest.param(V6_TYPES, {"embedding_dimension": 32, "pooling_mode": ["mean"], "include_prompt": True}, V6_TRANSFORMER, 200, 200, id="6.x"),
        pytest.param(V6_TYPES, {"embedding_dimension": 32, "pooling_mode": "mean"}, {"max_seq_length": 96}, 512, 96, id="6.x-old-max_seq_length-wins"),
        pytest.param(OLD_TYPES, {"word_embedding_dimension": 32}, {}, 512, 512, id="pooling-defaults-to-mean"),
        pytest.param(OLD_TYPES, LEGACY_MEAN, {"max_seq_length": None}, 10**30, 512, id="no-limit-anywhere"),
        pytest.param(V6_TYPES, {"embedding_dimension": 32, "pooling_mode": "mean"}, V6_TRANSFORMER, 514, 512, id="tokenizer-capped-at-positions"),
        pytest.param(OLD_TYPES, LEGACY_MEAN, {"max_seq_length": 512, "tokenizer_args": {"model_max_length": 48}}, 512, 48, id="tokenizer_args"),
    ],
)
def test_every_versions_layout_is_read(ckpt, types, pooling, transformer, tokenizer_max, expected_max):
    _set_modules(ckpt, types)
    _set_pooling(ckpt, pooling)
    _write(ckpt / "sentence_bert_config.json", transformer)
    _set_tokenizer_max_length(ckpt, tokenizer_max)
    checkpoint = load_checkpoint(str(ckpt))
    assert checkpoint.normalize is True and checkpoint.max_tokens == expected_max


def test_prompts_and_default_prompt_are_read(ckpt):
    config = _read(ckpt / "config_sentence_transformers.json")
    config.update(prompts={"query": "query: ", "document": "passage: "}, default_prompt_name="document")
    _write(ckpt / "config_sentence_transformers.json", config)
    checkpoint = load_checkpoint(str(ckpt))
    assert checkpoint.prompts == {"query": "query: ", "document": "passage: "} and checkpoint.default_prompt_name == "document"


def test_missing_optional_files_take_sentence_transformers_defaults(ckpt):
    (ckpt / "config_sentence_transformers.json").unlink()
    (ckpt / "sentence_bert_config.json").unlink()
    _set_modules(ckpt, OLD_TYPES[:2])
    checkpoint = load_checkpoint(str(ckpt))
    assert checkpoint.prompts == {} and checkpoint.default_prompt_name is None and checkpoint.normalize is False
    assert checkpoint.max_tokens == 512  # tokenizer_config.json's model_max_length


def _pooling(**changes):
    return {"embedding_dimension": 32, "pooling_mode": "mean", "include_prompt": True, **changes}


POOLING_REFUSALS = [
    pytest.param(dict(LEGACY_MEAN, pooling_mode_mean_tokens=False, pooling_mode_cls_token=True), r"enables pooling_mode_cls_token; seaembed implements mean pooling only", id="legacy-cls"),
    pytest.param(dict(LEGACY_MEAN, pooling_mode_max_tokens=True), r"enables pooling_mode_max_tokens \+ pooling_mode_mean_tokens; seaembed implements mean pooling only", id="legacy-mean+max"),
    pytest.param(dict(LEGACY_MEAN, pooling_mode_mean_tokens=False), r"enables no pooling mode .* set \"pooling_mode\": \"mean\"", id="legacy-none"),
    pytest.param(_pooling(pooling_mode="cls"), r"enables pooling_mode 'cls'; seaembed implements mean pooling only", id="cls"),
    pytest.param(_pooling(pooling_mode="max"), r"enables pooling_mode 'max'", id="max"),
    pytest.param(_pooling(pooling_mode="weightedmean"), r"enables pooling_mode 'weightedmean'", id="weightedmean"),
    pytest.param(_pooling(pooling_mode="lasttoken"), r"enables pooling_mode 'lasttoken'", id="lasttoken"),
    pytest.param(_pooling(pooling_mode="mean_sqrt_len_tokens"), r"enables pooling_mode 'mean_sqrt_len_tokens'", id="mean-sqrt-len"),
    pytest.param(_pooling(pooling_mode=["mean", "max"]), r"enables pooling_mode \['mean', 'max'\]", id="concatenated"),
    pytest.param(_pooling(include_prompt=False), r"sets include_prompt false; .* include_prompt must be true", id="include_prompt-false"),
    pytest.param(_pooling(embedding_dimension=64), r"embedding_dimension 64 but config.json hidden_size is 32", id="dimension"),
]


@pytest.mark.parametrize("pooling, message", POOLING_REFUSALS)
def test_pooling_seaembed_cannot_reproduce_is_refused(ckpt, pooling, message):
    _set_pooling(ckpt, pooling)
    with pytest.raises(CheckpointError, match=r"1_Pooling/config.json .*" + message):
        load_checkpoint(str(ckpt))


MODULE_REFUSALS = [
    pytest.param(
        [*V6_TYPES, "sentence_transformers.base.modules.dense.Dense"],
        ("", "1_Pooling", "2_Normalize", "3_Dense"),
        r"module 3 is sentence_transformers.base.modules.dense.Dense; seaembed exports Transformer → Pooling \(mean\) → optional Normalize, so Dense is not supported",
        id="dense",
    ),
    pytest.param(
        [OLD_TYPES[0], OLD_TYPES[1], "sentence_transformers.models.Dense", OLD_TYPES[2]],
        ("", "1_Pooling", "2_Dense", "3_Normalize"),
        r"module 2 is sentence_transformers.models.Dense",
        id="dense-old",
    ),
    pytest.param(["sentence_transformers.base.modules.router.Router"], ("",), r"so Router is not supported", id="router"),
    pytest.param([OLD_TYPES[0], "my_project.pooling.AttentionPooling"], ("", "1_Pooling"), r"so AttentionPooling is not supported", id="custom"),
    pytest.param([OLD_TYPES[0], OLD_TYPES[2]], ("", "2_Normalize"), r"modules are Transformer → Normalize; seaembed exports", id="no-pooling"),
    pytest.param([OLD_TYPES[0], OLD_TYPES[2], OLD_TYPES[1]], ("", "2_Normalize", "1_Pooling"), r"modules are Transformer → Normalize → Pooling", id="order"),
    pytest.param(OLD_TYPES, ("0_Transformer", "1_Pooling", "2_Normalize"), r"the Transformer module lives in '0_Transformer'", id="transformer-subfolder"),
]


@pytest.mark.parametrize("types, paths, message", MODULE_REFUSALS)
def test_modules_seaembed_cannot_reproduce_are_refused(ckpt, types, paths, message):
    _set_modules(ckpt, types, paths)
    with pytest.raises(CheckpointError, match=r"modules.json: .*" + message):
        load_checkpoint(str(ckpt))


TRANSFORMER_REFUSALS = [
    pytest.param({"do_lower_case": True}, r"sets do_lower_case true; .*set it false", id="lowercase"),
    pytest.param(dict(V6_TRANSFORMER, transformer_task="fill-mask"), r"sets transformer_task 'fill-mask'; seaembed exports transformer_task 'feature-extraction' only", id="task"),
    pytest.param(dict(V6_TRANSFORMER, module_output_name="cls_token_embeddings"), r"sets module_output_name 'cls_token_embeddings'", id="output"),
    pytest.param(dict(V6_TRANSFORMER, query_length=32), r"sets query_length 32 \(a per-task length of multi-vector models\)", id="query_length"),
    pytest.param(dict(V6_TRANSFORMER, processing_kwargs={"text": {"max_length": 32}}), r"sets processing_kwargs .*remove processing_kwargs", id="processing_kwargs"),
    pytest.param(
        dict(V6_TRANSFORMER, modality_config={"image": {"method": "get_image_features", "method_output_name": None}}),
        r"sets modality_config .*seaembed exports text through the encoder's forward",
        id="modality",
    ),
    pytest.param({"max_seq_length": 1024}, r"max_seq_length=1024 exceeds the 512 positions .*set max_seq_length to 512", id="too-long"),
]


@pytest.mark.parametrize("transformer, message", TRANSFORMER_REFUSALS)
def test_transformer_settings_seaembed_cannot_reproduce_are_refused(ckpt, transformer, message):
    _write(ckpt / "sentence_bert_config.json", transformer)
    with pytest.raises(CheckpointError, match=r"sentence_bert_config.json.*" + message):
        load_checkpoint(str(ckpt))


@pytest.mark.parametrize(
    "changes, message",
    [
        pytest.param({"model_type": "SparseEncoder"}, r"model_type 'SparseEncoder'; seaembed exports SentenceTransformer models only", id="sparse"),
        pytest.param({"truncate_dim": 16}, r"sets truncate_dim 16; seaembed returns the full vectors", id="truncate_dim"),
        pytest.param({"default_prompt_name": "title"}, r"default_prompt_name 'title' is not one of its prompts", id="default-prompt"),
    ],
)
def test_model_settings_seaembed_cannot_reproduce_are_refused(ckpt, changes, message):
    config = _read(ckpt / "config_sentence_transformers.json")
    _write(ckpt / "config_sentence_transformers.json", {**config, **changes})
    with pytest.raises(CheckpointError, match=r"config_sentence_transformers.json .*" + message):
        load_checkpoint(str(ckpt))


def test_weights_that_cannot_be_read_are_refused(ckpt):
    import torch

    (ckpt / "model.safetensors").rename(ckpt / "model-00001-of-00002.safetensors")
    _write(ckpt / "model.safetensors.index.json", {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})
    with pytest.raises(CheckpointError, match=r"names shards that are not in .*: model-00002-of-00002.safetensors"):
        load_checkpoint(str(ckpt))
    for path in ckpt.glob("model*"):
        path.unlink()
    with pytest.raises(CheckpointError, match=r"no encoder weights in .*expected model.safetensors, model.safetensors.index.json"):
        load_checkpoint(str(ckpt))
    torch.save({"step": object()}, ckpt / "pytorch_model.bin")  # a pickle that would run code on load
    with pytest.raises(CheckpointError, match=r"pytorch_model.bin cannot be read as a plain state dict with torch.load\(weights_only=True\)"):
        load_checkpoint(str(ckpt))


SEA_LION_LIKE = ["README.md", "config.json", "model.safetensors", "pytorch_model.bin", "onnx/model.onnx", "1_Pooling/config.json", "modules.json"]


@pytest.mark.parametrize(
    "files, expected",
    [
        pytest.param(SEA_LION_LIKE, ["model.safetensors"], id="safetensors-preferred"),
        pytest.param(
            ["config.json", "model.safetensors.index.json", "model-00002-of-00002.safetensors", "model-00001-of-00002.safetensors", "pytorch_model.bin"],
            ["model.safetensors.index.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
            id="sharded-safetensors",
        ),
        pytest.param(["config.json", "pytorch_model.bin", "tf_model.h5"], ["pytorch_model.bin"], id="bin-only"),
        pytest.param(
            ["pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin", "flax_model.msgpack"],
            ["pytorch_model.bin.index.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"],
            id="sharded-bin",
        ),
    ],
)
def test_hub_download_fetches_one_weights_format(files, expected):
    assert choose_hub_files(files) == expected


def test_hub_repo_without_weights_is_refused():
    with pytest.raises(CheckpointError, match=r"no encoder weights at its root .*; it has config.json, tf_model.h5"):
        choose_hub_files(["config.json", "tf_model.h5", "onnx/model.onnx"])
    with pytest.raises(CheckpointError, match=r"has model.safetensors.index.json but no shard files"):
        choose_hub_files(["model.safetensors.index.json"])


def test_hub_id_downloads_the_chosen_weights_only(tiny_checkpoint, monkeypatch):
    """The wiring around the hub (unreachable here): its file list picks the patterns snapshot_download gets."""
    import huggingface_hub

    requested = []

    def snapshot_download(repo_id, revision=None, allow_patterns=None):
        requested.append(allow_patterns)
        return str(tiny_checkpoint)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo_id, revision=None: SEA_LION_LIKE)
    assert load_checkpoint("org/fine-tuned-e5").normalize is True
    assert "model.safetensors" in requested[-1] and "pytorch_model.bin" not in requested[-1]

    def offline(repo_id, revision=None):
        raise huggingface_hub.errors.OfflineModeIsEnabled("HF_HUB_OFFLINE=1")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", offline)
    load_checkpoint("org/fine-tuned-e5")
    assert {"model.safetensors", "model-*-of-*.safetensors", "pytorch_model.bin"} <= set(requested[-1])
