"""Embedder.encode of one batch on the trained multilingual-e5-small (FP32, ONNX Runtime CPU):
tokenize, pad, run the graph, pool; what the CLI and the library do per batch."""

from __future__ import annotations

import numpy as np
import pytest

BATCH = 16


@pytest.mark.benchmark(group="embedder: e5-small encode")
def bench_embedder_encode_batch(benchmark, e5_small_embedder, corpus):
    texts = corpus[:BATCH]
    benchmark.extra_info.update(role="guarded", texts=len(texts), tokens=sum(map(len, e5_small_embedder.tokenizer.encode_batch(texts))))
    vectors = benchmark(e5_small_embedder.encode, texts)
    assert vectors.shape == (BATCH, e5_small_embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
