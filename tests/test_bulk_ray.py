"""embed-dataset on a real local Ray cluster (one per module: start-up costs seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'seaembed[ray]')")
pytest.importorskip("ray.data")

from test_bulk import BAD_LINES, _parts, read_output, vectors, write_mixed_input  # noqa: E402

from seaembed.runtime.bulk import embed_dataset  # noqa: E402


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_actors_equal_embedder_resume_and_report_bad_rows(ray_cluster, tiny_bundle, tiny_embedder, e5_small_bundle, tmp_path, corpus):
    from seaembed.runtime import Embedder

    texts = write_mixed_input(tmp_path / "in", corpus)
    out = tmp_path / "tiny"
    summary = embed_dataset(tiny_bundle, tmp_path / "in", out, id_field="doc", ray=True, workers=2, rows_per_part=5, progress="off")
    assert summary["mode"].startswith("ray") and summary["bad_rows"] == len(BAD_LINES) and summary["embedded"] == len(texts)
    assert {w["worker"].split("@")[0][:9] for w in summary["per_worker"]} == {"ray-actor"}
    table = read_output(out)
    ids = table.column("id").to_pylist()
    assert sorted(ids) == sorted(texts)
    assert np.abs(vectors(table) - tiny_embedder.encode([texts[i] for i in ids])).max() <= 1e-6
    bad = [json.loads(line) for line in (out / "_bad_rows.jsonl").read_text().splitlines()]
    assert [(b["line"], b["id"]) for b in bad] == [(n, f"d{n}") for n in BAD_LINES]

    # a crash that lost two finished parts and the manifest: the rerun redoes exactly those
    complete = _parts(out)
    for name in list(complete)[1:3]:
        (out / name).unlink()
    (out / "_manifest.json").unlink()
    again = embed_dataset(tiny_bundle, tmp_path / "in", out, id_field="doc", ray=True, workers=2, rows_per_part=5, progress="off")
    assert again["parts_resumed"] == len(complete) - 2 and again["parts_this_run"] == 2
    resumed = _parts(out)
    assert resumed.keys() == complete.keys() and all(resumed[k].equals(complete[k]) for k in complete)

    src = tmp_path / "e5.jsonl"
    e5_texts = [f"{corpus[i % len(corpus)]} #{i}" for i in range(60)]
    src.write_text("\n".join(json.dumps({"text": t}, ensure_ascii=False) for t in e5_texts) + "\n")
    embed_dataset(e5_small_bundle, src, tmp_path / "e5", prompt_name="query", ray=True, workers=2, rows_per_part=20, progress="off")
    e5 = read_output(tmp_path / "e5")
    assert e5.column("id").to_pylist() == [f"e5.jsonl:{n}" for n in range(1, 61)]
    expected = Embedder.load(e5_small_bundle).encode(e5_texts, prompt_name="query")
    assert np.abs(vectors(e5) - expected).max() <= 1e-6
