"""The tokenizer's hot paths on the real 250k XLM-R vocabulary and the multilingual test corpus,
each beside Hugging Face `tokenizers` (Rust) on the same tokenizer.json in the same run.

Every round starts with the word caches cleared (seaembed's compiled core has none; its Python
reference and `tokenizers` do), so each round sees the corpus as new text, as a server does.
"""

from __future__ import annotations

import pytest

IMPLEMENTATIONS = ["seaembed", "tokenizers"]


def _role(benchmark, implementation: str) -> None:
    benchmark.extra_info["role"] = "reference" if implementation == "tokenizers" else "guarded"


def _seaembed_ids(tokenizer, corpus):
    return tokenizer.encode_batch(corpus)


def _tokenizers_ids(tokenizer, corpus):
    return [encoding.ids for encoding in tokenizer.encode_batch(corpus)]


@pytest.fixture(scope="module")
def same_ids(seaembed_tokenizer, hf_tokenizer, corpus) -> None:
    """Both give the same ids here, so both do the same work."""
    assert _seaembed_ids(seaembed_tokenizer, corpus) == _tokenizers_ids(hf_tokenizer, corpus)


@pytest.mark.benchmark(group="tokenizer: corpus, one text at a time")
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def bench_encode_single(benchmark, implementation, seaembed_tokenizer, hf_tokenizer, corpus, same_ids):
    _role(benchmark, implementation)
    if implementation == "seaembed":
        encode, clear = seaembed_tokenizer.encode, seaembed_tokenizer.clear_cache
        benchmark.extra_info["implementation"] = seaembed_tokenizer.implementation
    else:
        encode, clear = hf_tokenizer.encode, hf_tokenizer.model._clear_cache

    def run():
        clear()
        for text in corpus:
            encode(text)

    benchmark(run)


@pytest.mark.benchmark(group="tokenizer: corpus, encode_batch")
@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def bench_encode_batch(benchmark, implementation, seaembed_tokenizer, hf_tokenizer, corpus, same_ids):
    """One call for the whole corpus; seaembed on available_cpus() threads, `tokenizers` on its own pool."""
    _role(benchmark, implementation)
    if implementation == "seaembed":
        benchmark.extra_info["implementation"] = seaembed_tokenizer.implementation
        benchmark.extra_info["threads"] = seaembed_tokenizer.threads

        def run():
            seaembed_tokenizer.clear_cache()
            seaembed_tokenizer.encode_batch(corpus)
    else:

        def run():
            hf_tokenizer.model._clear_cache()
            hf_tokenizer.encode_batch(corpus)

    benchmark(run)
