"""Seeded fuzz: 10,000 mixed-script strings and 100,000-character inputs, both implementations
against `tokenizers` (XLMRobertaTokenizerFast on tokenizer.json as written, and the tokenizer
sentence-transformers runs) and against each other. Any differing id fails.
"""

from __future__ import annotations

import pytest
from tokenizer_fuzz import fuzz_texts, long_texts

from seaembed.runtime.tokenizer import InputTooLongError, Tokenizer
from seaembed.runtime.tokenizer.native_engine import native_module

IMPLEMENTATIONS = ["python", "native"]


def _require(impl: str) -> None:
    if impl == "native" and native_module()[0] is None:
        pytest.skip(f"compiled tokenizer unavailable: {native_module()[1]}")


@pytest.fixture(scope="session")
def fuzz(corpus) -> list[str]:
    texts = fuzz_texts(corpus, count=10_000)
    assert len(texts) == 10_000
    return texts


def _pipeline(model_dir, kind: str, tmp_dir):
    """(tokenizer.json path, reference tokenizer) for the file pipeline or AutoTokenizer's."""
    if kind == "file":
        from transformers import XLMRobertaTokenizerFast

        path = model_dir / "tokenizer.json"
        return path, XLMRobertaTokenizerFast(tokenizer_file=str(path))
    from transformers import AutoTokenizer

    ref = AutoTokenizer.from_pretrained(str(model_dir))
    path = tmp_dir / "effective-tokenizer.json"
    path.write_text(ref.backend_tokenizer.to_str(), encoding="utf-8")
    return path, ref


@pytest.fixture(scope="module", params=["tiny-file", "tiny-auto", "real-file", "real-auto"])
def pipeline(request, tmp_path_factory):
    """A vocabulary and pipeline, the reference's ids for the fuzz, and the implementations' ids."""
    vocab, kind = request.param.split("-")
    if vocab == "real":
        model_dir = request.getfixturevalue("shared_tokenizer_dir")
    else:
        model_dir = request.getfixturevalue("tiny_checkpoint")
    path, ref = _pipeline(model_dir, kind, tmp_path_factory.mktemp(request.param))
    texts = request.getfixturevalue("fuzz")
    return {"path": path, "ref": ref, "expected": ref(texts, truncation=True, max_length=512)["input_ids"], "ids": {}}


def _ids(pipeline, impl: str, texts: list[str]) -> list[list[int]]:
    if impl not in pipeline["ids"]:
        ours = Tokenizer.from_file(pipeline["path"], max_tokens=512, implementation=impl)
        pipeline["ids"][impl] = ours.encode_batch(texts)
    return pipeline["ids"][impl]


def _assert_same(texts, got, expected, label):
    mismatches = [(texts[i][:60], got[i][:16], expected[i][:16]) for i in range(len(texts)) if got[i] != expected[i]]
    assert not mismatches, f"{label}: {len(mismatches)} of {len(texts)} texts differ, e.g. {mismatches[:3]}"


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_fuzz_matches_reference(pipeline, fuzz, impl):
    _require(impl)
    _assert_same(fuzz, _ids(pipeline, impl, fuzz), pipeline["expected"], impl)


def test_fuzz_implementations_agree(pipeline, fuzz):
    _require("native")
    _assert_same(fuzz, _ids(pipeline, "native", fuzz), _ids(pipeline, "python", fuzz), "native vs python")


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_fuzz_counts_over_long_inputs_exactly(pipeline, fuzz, impl):
    """truncate=False reports the untruncated length `tokenizers` gives."""
    _require(impl)
    ours = Tokenizer.from_file(pipeline["path"], max_tokens=512, implementation=impl)
    long_ones = [t for t, ids in zip(fuzz, pipeline["expected"], strict=True) if len(ids) == 512][:40]
    assert long_ones, "the fuzz should hold inputs over 512 tokens"
    full = pipeline["ref"](long_ones)["input_ids"]
    for text, expected in zip(long_ones, full, strict=True):
        with pytest.raises(InputTooLongError) as err:
            ours.encode(text, truncate=False)
        assert err.value.exact and err.value.n_tokens == len(expected)


@pytest.fixture(scope="module")
def long_inputs(corpus) -> dict[str, str]:
    texts = long_texts(corpus)
    assert all(len(t) == 100_000 for t in texts.values())
    return texts


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize("direction", ["right", "left"])
def test_100k_character_inputs_match_reference(pipeline, long_inputs, impl, direction):
    _require(impl)
    if impl == "python" and direction == "left" and pipeline["path"].stat().st_size > 1_000_000:
        # keeping the end, the Python reference tokenizes every character: seconds per 100k text on the real vocabulary
        long_inputs = {name: text[:5_000] for name, text in long_inputs.items()}
    ours = Tokenizer.from_file(pipeline["path"], max_tokens=512, implementation=impl)
    ref = pipeline["ref"]
    ref.truncation_side = direction
    try:
        for name, text in long_inputs.items():
            expected = ref(text, truncation=True, max_length=512)["input_ids"]
            assert ours.encode(text, direction=direction) == expected, name
    finally:
        ref.truncation_side = "right"
