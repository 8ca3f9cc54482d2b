"""The compiled tokenizer core: batch API, threads and the GIL, the binary form and its caches,
and choosing between it and the Python reference."""

from __future__ import annotations

import json
import logging
import shutil
import sysconfig
import threading
import time

import numpy as np
import pytest

from seaembed.runtime.integrity import sha256_file
from seaembed.runtime.tokenizer import (
    InputTooLongError,
    InvalidTextError,
    Tokenizer,
    compiled_form,
    native_engine,
)
from seaembed.runtime.tokenizer.native_engine import native_module
from seaembed.runtime.tokenizer.spec import TokenizerSpec


@pytest.fixture(scope="module")
def native():
    module, reason = native_module()
    if module is None:
        pytest.skip(f"compiled tokenizer unavailable: {reason}")
    return module


@pytest.fixture(scope="module")
def tiny_json(tiny_checkpoint):
    return tiny_checkpoint / "tokenizer.json"


@pytest.fixture(scope="module")
def pair(tiny_json, native):
    prompts = {"query": "query: "}
    return (
        Tokenizer.from_file(tiny_json, prompts=prompts, implementation="native", threads=2),
        Tokenizer.from_file(tiny_json, prompts=prompts, implementation="python"),
    )


def test_extension_is_built_where_a_compiler_exists():
    compiler = (sysconfig.get_config_var("CXX") or "c++").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C++ compiler ({compiler}) on this machine: the Python reference is the tokenizer here")
    assert native_module()[0] is not None, native_module()[1]


@pytest.mark.parametrize("direction", ["right", "left"])
@pytest.mark.parametrize("prompt_name", [None, "query"])
def test_threaded_batch_equals_python_one_at_a_time(pair, corpus, direction, prompt_name):
    native_tok, python_tok = pair
    texts = corpus * 8 + ["word " * 700, "x" * 3000, ""]  # enough characters for the thread pool
    got, cut = native_tok.encode_batch_truncating(texts, prompt_name=prompt_name, direction=direction)
    expected = [python_tok.encode(t, prompt_name=prompt_name, direction=direction) for t in texts]
    assert got == expected
    assert cut == [len(texts) - 3, len(texts) - 2]
    plain = native_tok.encode_batch(texts, prompt_name=prompt_name, direction=direction, add_special_tokens=False)
    assert plain == python_tok.encode_batch(texts, prompt_name=prompt_name, direction=direction, add_special_tokens=False)


@pytest.mark.parametrize("impl", [0, 1])
def test_padded_arrays_equal_the_lists(pair, corpus, impl):
    tokenizer = pair[impl]
    texts = corpus[:17]
    input_ids, attention_mask = tokenizer.encode_batch_padded(texts, prompt_name="query")
    lists = tokenizer.encode_batch(texts, prompt_name="query")
    width = max(map(len, lists))
    assert input_ids.dtype == np.int64 and attention_mask.dtype == np.int64
    assert input_ids.shape == attention_mask.shape == (17, width)
    for row, ids in enumerate(lists):
        assert input_ids[row, : len(ids)].tolist() == ids
        assert (input_ids[row, len(ids) :] == tokenizer.pad_id).all()
        assert attention_mask[row].tolist() == [1] * len(ids) + [0] * (width - len(ids))
    empty_ids, empty_mask = tokenizer.encode_batch_padded([])
    assert empty_ids.shape == empty_mask.shape == (0, 0)


@pytest.mark.parametrize("impl", [0, 1])
def test_first_bad_input_raises_with_its_index(pair, impl):
    tokenizer = pair[impl]
    with pytest.raises(InvalidTextError, match="input 11 must be a str, got int") as err:
        tokenizer.encode_batch(["fine", 42, "bad\ud800"], first_index=10)
    assert err.value.index == 11
    with pytest.raises(InvalidTextError, match=r"input 2 is not valid Unicode: lone surrogate U\+DFFF at character 3"):
        tokenizer.encode_batch(["fine", "ok", "bad\udfff", 42])
    with pytest.raises(InputTooLongError, match=r"input 1 has \d+ tokens but the model accepts at most 512") as err:
        tokenizer.encode_batch(["fine", "ab " * 1000, 42], truncate=False)
    assert err.value.index == 1 and err.value.exact and err.value.n_tokens == tokenizer.count_tokens("ab " * 1000)
    with pytest.raises(InputTooLongError, match=r"input has at least \d+ tokens"):
        tokenizer.encode("ab " * 10_000, truncate=False)
    with pytest.raises(KeyError, match="known prompts: query"):
        tokenizer.encode_batch(["x"], prompt_name="passage")
    with pytest.raises(TypeError, match="use encode"):
        tokenizer.encode_batch("one string")
    with pytest.raises(ValueError, match="'right' or 'left'"):
        tokenizer.encode_batch(["x"], direction="up")


def test_count_and_pieces_agree(pair, corpus):
    native_tok, python_tok = pair
    for text in corpus[:20] + ["ab " * 600]:
        assert native_tok.count_tokens(text, "query") == python_tok.count_tokens(text, "query")
    for token_id in list(range(0, python_tok.vocab_size, 7)) + [python_tok.vocab_size + 5]:
        assert native_tok.id_to_piece(token_id) == python_tok.id_to_piece(token_id)


def test_batch_releases_the_gil(tiny_json, corpus, native):
    """Another Python thread keeps running while a long batch is encoded."""
    tokenizer = Tokenizer.from_file(tiny_json, implementation="native", threads=1)
    texts = [" ".join(corpus)] * 400
    while True:  # a batch long enough to span many switch intervals on whatever CPU runs this
        started = time.perf_counter()
        tokenizer.encode_batch(texts, direction="left")
        alone = time.perf_counter() - started
        if alone > 0.1 or len(texts) > 100_000:
            break
        texts *= 2
    done = threading.Event()
    counted = 0

    def encode():
        tokenizer.encode_batch(texts, direction="left")
        done.set()

    worker = threading.Thread(target=encode)
    worker.start()
    while not done.is_set():
        counted += 1
    worker.join()
    # Holding the GIL, the C call would leave this loop a few switch intervals at most.
    assert alone > 0.05 and counted > 10_000, (alone, counted)


def test_threads_follow_available_cpus(tiny_json, native, monkeypatch):
    monkeypatch.setenv("SEAEMBED_CPUS", "3")
    tokenizer = Tokenizer.from_file(tiny_json, implementation="native")
    assert tokenizer.threads == 3
    tokenizer.threads = 1
    assert tokenizer.threads == 1
    with pytest.raises(ValueError, match="between 1 and 1024"):
        tokenizer.threads = 0


def test_binary_form_is_cached_and_a_corrupt_one_rebuilt(tiny_json, native, tmp_path, monkeypatch, corpus):
    monkeypatch.setenv("SEAEMBED_CACHE_DIR", str(tmp_path))
    expected = Tokenizer.from_file(tiny_json, implementation="python").encode_batch(corpus)
    assert Tokenizer.from_file(tiny_json, implementation="native").encode_batch(corpus) == expected
    (cached,) = (tmp_path / "tokenizers").glob("*.seatok")
    assert Tokenizer.from_file(tiny_json, implementation="native").encode_batch(corpus) == expected
    blob = bytearray(cached.read_bytes())
    blob[100:140] = b"\xff" * 40  # inside the section table
    cached.write_bytes(bytes(blob))
    assert Tokenizer.from_file(tiny_json, implementation="native").encode_batch(corpus) == expected
    assert cached.read_bytes() != bytes(blob), "the corrupt file is replaced"
    cached.write_bytes(b"SEATOK")  # truncated
    assert Tokenizer.from_file(tiny_json, implementation="native").encode_batch(corpus) == expected


def test_binary_form_beside_tokenizer_json_needs_no_json(tiny_json, native, tmp_path, monkeypatch, corpus):
    monkeypatch.setenv("SEAEMBED_CACHE_DIR", str(tmp_path / "cache"))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    path = bundle / "tokenizer.json"
    shutil.copy(tiny_json, path)
    expected = Tokenizer.from_file(path, implementation="python").encode_batch(corpus)
    sha = sha256_file(path)
    compiled_form.write_beside(native, path, TokenizerSpec.parse(json.loads(path.read_text())), sha)
    path.write_text("not json")  # only the binary form can serve the load now
    assert Tokenizer.from_file(path, sha256=sha, implementation="native").encode_batch(corpus) == expected
    with pytest.raises(ValueError):  # a binary form of another tokenizer.json is never used
        Tokenizer.from_file(path, implementation="native")


def test_python_can_be_forced_and_bad_choices_are_named(tiny_json, monkeypatch):
    monkeypatch.setenv("SEAEMBED_TOKENIZER", "python")
    assert Tokenizer.from_file(tiny_json).implementation == "python"
    monkeypatch.setenv("SEAEMBED_TOKENIZER", "rust")
    with pytest.raises(ValueError, match="'rust' is not one of auto, native, python"):
        Tokenizer.from_file(tiny_json)


def test_what_the_core_lacks_falls_back_to_python(tiny_json, native, caplog):
    spec = json.loads(tiny_json.read_text())
    spec["normalizer"] = {"type": "Replace", "pattern": {"Regex": "a|b"}, "content": "c"}
    with caplog.at_level(logging.WARNING, logger="seaembed"):
        tokenizer = Tokenizer(spec, max_tokens=512)
    assert tokenizer.implementation == "python"
    assert "does not implement Replace regex 'a|b'" in caplog.text
    assert tokenizer.encode("abc", add_special_tokens=False) == Tokenizer(spec, 512, implementation="python").encode(
        "abc", add_special_tokens=False
    )


@pytest.mark.parametrize(
    "regex,step",
    [(" {2,}", ("replace_run", " ", 2, 0, "X")), ("a+", ("replace_run", "a", 1, 0, "X")), (r"\.{3}", ("replace_run", ".", 3, 3, "X")),
     ("b{2,4}", ("replace_run", "b", 2, 4, "X")), (r"foo\.", ("replace_literal", "foo.", "X"))],
)
def test_replace_regexes_the_core_runs_equal_python(regex, step, tiny_json, native):
    spec = json.loads(tiny_json.read_text())
    replace = {"type": "Replace", "pattern": {"Regex": regex}, "content": "X"}
    assert compiled_form.normalizer_steps(replace) == [step]
    spec["normalizer"] = {"type": "Sequence", "normalizers": [spec["normalizer"], replace]}
    texts = ["a  b   c", "aaa ab", "x.... y...", "bbbbbbbbb b bb", "foo.foo.bar", "    "]
    native_tok = Tokenizer(spec, max_tokens=512, implementation="native")
    assert native_tok.implementation == "native"
    assert native_tok.encode_batch(texts) == Tokenizer(spec, max_tokens=512, implementation="python").encode_batch(texts)


def test_a_build_older_than_its_sources_is_not_used(native, tmp_path, monkeypatch):
    shutil.copytree(native_engine.SOURCES, tmp_path / "native")
    (tmp_path / "native" / "pipeline.cc").write_text("// edited since the build\n", encoding="utf-8")
    monkeypatch.setattr(native_engine, "SOURCES", tmp_path / "native")
    native_module.cache_clear()
    try:
        module, reason = native_module()
        assert module is None and "older than its C++ sources" in reason
        with pytest.raises(RuntimeError, match=r"older than its C\+\+ sources"):
            Tokenizer.from_file(tmp_path / "x.json", implementation="native")
    finally:
        monkeypatch.undo()
        native_module.cache_clear()


def test_grapheme_table_is_generated_from_the_python_one():
    """The C++ grapheme-break table and grapheme_data.py are one source of truth."""
    import importlib.util

    tool = native_engine.SOURCES.parents[2] / "tools" / "gen_grapheme_cpp.py"
    if not tool.exists():
        pytest.skip("tools/ is not installed with the package")
    spec = importlib.util.spec_from_file_location("gen_grapheme_cpp", tool)
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    assert (native_engine.SOURCES / "grapheme_table.h").read_text() == generator.render(), "run tools/gen_grapheme_cpp.py"


def _encode_in_child(tokenizer, texts, expected, queue):
    queue.put(tokenizer.encode_batch(texts) == expected)


def test_a_forked_process_gets_its_own_threads(tiny_json, native, corpus):
    """Server workers fork after loading: the parent's pool threads do not exist in the child."""
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork() on this platform")
    tokenizer = Tokenizer.from_file(tiny_json, implementation="native", threads=2)
    texts = corpus * 20
    expected = tokenizer.encode_batch(texts)  # starts the parent's pool
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_encode_in_child, args=(tokenizer, texts, expected, queue))
    child.start()
    child.join(timeout=60)
    assert child.exitcode == 0, "the child hung or crashed encoding with a pool inherited through fork()"
    assert queue.get(timeout=5)


def test_concurrent_callers_get_their_own_results(pair, corpus):
    """Server threads call one tokenizer at once: one gets the pool, the others encode serially."""
    from concurrent.futures import ThreadPoolExecutor

    native_tok, python_tok = pair
    batches = [[f"{i} {text}" for text in corpus * 6] for i in range(6)] + [[corpus[i]] for i in range(6)]
    expected = [python_tok.encode_batch(b) for b in batches]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(native_tok.encode_batch, batches))
    assert got == expected


@pytest.mark.parametrize("scheme", ["first", "never", "always"])
def test_metaspace_prepend_schemes_match_tokenizers(tiny_json, native, scheme):
    """XLM-R prepends '▁' always; the other schemes depend on which segment comes first."""
    from tokenizers import Tokenizer as RustTokenizer

    spec = json.loads(tiny_json.read_text())
    spec["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": True}
    reference = RustTokenizer.from_str(json.dumps(spec))
    texts = ["hello world", "<mask> hello", "hello <mask> world", "<s>hello</s> world", " <mask>x <mask> y", "\u200b<mask>a", "a  b"]
    expected = [reference.encode(t).ids for t in texts]
    for impl in ("native", "python"):
        assert Tokenizer(spec, max_tokens=512, implementation=impl).encode_batch(texts) == expected, impl


def _variant(spec: dict, name: str) -> dict:
    """tokenizer.json variations beyond XLM-R's defaults, each supported by both implementations."""
    precompiled = spec["normalizer"]["normalizers"][0] if spec["normalizer"]["type"] == "Sequence" else spec["normalizer"]
    if name == "strip-both":
        spec["normalizer"] = {"type": "Sequence", "normalizers": [precompiled, {"type": "Strip", "strip_left": True, "strip_right": True}]}
    elif name == "replace-string":
        spec["normalizer"] = {"type": "Replace", "pattern": {"String": "ab"}, "content": "\u2581x"}
    elif name == "no-normalizer":
        spec["normalizer"] = None
    elif name == "metaspace-no-split":
        spec["pre_tokenizer"] = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": False}
    elif name == "whitespace-split-only":
        spec["pre_tokenizer"] = {"type": "WhitespaceSplit"}
    elif name == "no-pre-tokenizer":
        spec["pre_tokenizer"] = None
    elif name == "added-token-strips":
        for token in spec["added_tokens"]:
            token.update(lstrip=True, rstrip=True, normalized=token["content"] == "</s>")
    return spec


@pytest.mark.parametrize(
    "variant",
    ["strip-both", "replace-string", "no-normalizer", "metaspace-no-split", "whitespace-split-only", "no-pre-tokenizer", "added-token-strips"],
)
def test_pipeline_variants_match_tokenizers(tiny_json, native, corpus, variant):
    from tokenizers import Tokenizer as RustTokenizer

    spec = _variant(json.loads(tiny_json.read_text()), variant)
    reference = RustTokenizer.from_str(json.dumps(spec))
    texts = corpus + ["  ab  cab ", "x </s>  y", "a\u3000<s>\tb", "<mask>", " \u2581 a", "\r\n", "ﬁ\u0301 １２ ab"]
    expected = [reference.encode(t).ids for t in texts]
    for impl in ("native", "python"):
        got = Tokenizer(spec, max_tokens=512, implementation=impl).encode_batch(texts)
        bad = [(t, g, e) for t, g, e in zip(texts, got, expected, strict=True) if g != e]
        assert not bad, (impl, bad[:3])
