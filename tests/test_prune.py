"""Deployable subsets: prune a bundle to named artifacts; the runtime, info and errors work on what remains."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from seaembed.runtime import BackendUnavailable, BundleError, Embedder
from seaembed.runtime.bundle import prune_bundle
from seaembed.runtime.integrity import sha256_file
from seaembed.runtime.manifest import MANIFEST_FILE, load_manifest


@pytest.fixture()
def bundle_copy(tiny_bundle, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, target)
    return target


def _files(path):
    return sorted(p.name for p in path.iterdir())


def seaembed(*args):
    return subprocess.run([sys.executable, "-m", "seaembed.runtime.cli", *map(str, args)], capture_output=True, text=True)


def test_prune_keeps_the_artifact_its_records_and_nothing_else(bundle_copy, tiny_bundle):
    before = load_manifest(tiny_bundle)
    result = prune_bundle(bundle_copy, ["onnx-fp16"])
    assert _files(bundle_copy) == ["manifest.json", "model.fp16.onnx", "model.fp16.onnx.data", "tokenizer.json"]
    after = load_manifest(bundle_copy)
    assert [a.name for a in after.artifacts] == ["onnx-fp16"]
    original = next(a for a in before.artifacts if a.name == "onnx-fp16")
    assert after.artifacts[0] == original  # parity record, sha256s, details: unchanged
    assert after.tokenizer == before.tokenizer and after.source == before.source
    assert [p["name"] for p in after.pruned] == ["onnx-fp32", "onnx-fp32-ort"]
    assert {p["precision"] for p in after.pruned} == {"fp32"}
    for name, sha in after.artifacts[0].sha256.items():
        assert sha256_file(bundle_copy / name) == sha
    assert result.removed == ["onnx-fp32", "onnx-fp32-ort"] and result.bytes_after < result.bytes_before
    assert not [p for p in bundle_copy.iterdir() if p.name.startswith(".")]  # no temp file left behind


def test_runtime_runs_a_pruned_bundle_unchanged(bundle_copy, tiny_bundle, corpus):
    expected = Embedder.load(tiny_bundle, artifact="onnx-fp16").encode(corpus)
    prune_bundle(bundle_copy, "onnx-fp16")
    # no precision asked: the bundle's only graph runs (its owner pruned it to that)
    embedder = Embedder.load(bundle_copy)
    assert embedder.backend.artifact.name == "onnx-fp16"
    assert np.array_equal(embedder.encode(corpus), expected)
    assert np.array_equal(Embedder.load(bundle_copy, precision="fp16").encode(corpus), expected)


def test_asking_for_a_pruned_artifact_names_what_is_there_and_how_to_rebuild(bundle_copy, tiny_checkpoint):
    prune_bundle(bundle_copy, ["onnx-fp16"])
    with pytest.raises(BackendUnavailable) as by_name:
        Embedder.load(bundle_copy, artifact="onnx-fp32")
    message = str(by_name.value)
    assert "no artifact named 'onnx-fp32' (it has: onnx-fp16)" in message
    assert "onnx-fp32 was pruned from this bundle on" in message
    assert f"seaembed export {tiny_checkpoint} --precision fp32 --keep onnx-fp32 --out DIR" in message
    with pytest.raises(BackendUnavailable, match=r"precision 'fp32' \(any of onnx-fp32-ort, onnx-fp32; it has: onnx-fp16\).*onnx-fp32-ort was pruned.*--keep onnx-fp32-ort"):
        Embedder.load(bundle_copy, precision="fp32")


def test_prune_to_another_directory_leaves_the_bundle_as_it_was(bundle_copy, tmp_path, corpus):
    manifest_bytes = (bundle_copy / MANIFEST_FILE).read_bytes()
    files = _files(bundle_copy)
    out = tmp_path / "edge"
    prune_bundle(bundle_copy, "onnx-fp32-ort", out_dir=out)
    assert (bundle_copy / MANIFEST_FILE).read_bytes() == manifest_bytes and _files(bundle_copy) == files
    assert _files(out) == ["manifest.json", "model.fp32.ort.onnx", "model.fp32.ort.onnx.data", "tokenizer.json"]
    expected = Embedder.load(bundle_copy).encode(corpus)
    assert np.array_equal(Embedder.load(out).encode(corpus), expected)
    with pytest.raises(BundleError, match="is not empty; pass --overwrite"):
        prune_bundle(bundle_copy, "onnx-fp32", out_dir=out)


def test_prune_refuses_unknown_names_and_damaged_files_without_changing_anything(bundle_copy):
    manifest_bytes = (bundle_copy / MANIFEST_FILE).read_bytes()
    files = _files(bundle_copy)
    with pytest.raises(BundleError, match=r"--keep onnx-int9: bundle .* has no artifact named 'onnx-int9' \(it has: onnx-fp32, onnx-fp32-ort, onnx-fp16\)"):
        prune_bundle(bundle_copy, ["onnx-fp16", "onnx-int9"])
    with pytest.raises(BundleError, match="--keep names no artifact"):
        prune_bundle(bundle_copy, [])
    with open(bundle_copy / "model.fp16.onnx.data", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\xff\xfe")
    with pytest.raises(BundleError, match="model.fp16.onnx.data has sha256 .* re-export"):
        prune_bundle(bundle_copy, ["onnx-fp16"])
    assert (bundle_copy / MANIFEST_FILE).read_bytes() == manifest_bytes and _files(bundle_copy) == files


def test_pruning_twice_remembers_everything_removed(bundle_copy):
    prune_bundle(bundle_copy, "onnx-fp32,onnx-fp16")
    prune_bundle(bundle_copy, "onnx-fp16")
    assert [p["name"] for p in load_manifest(bundle_copy).pruned] == ["onnx-fp32-ort", "onnx-fp32"]


def test_manifest_without_pruned_field_still_loads(bundle_copy):
    """Bundles written before pruning existed have no "pruned" key."""
    data = json.loads((bundle_copy / MANIFEST_FILE).read_text())
    data.pop("pruned", None)
    (bundle_copy / MANIFEST_FILE).write_text(json.dumps(data))
    assert load_manifest(bundle_copy).pruned == []


def test_cli_prune_and_info(bundle_copy, tiny_checkpoint):
    out = seaembed("bundle", "prune", bundle_copy, "--keep", "onnx-fp32-ort")
    assert out.returncode == 0, out.stderr
    assert "kept onnx-fp32-ort; removed onnx-fp32, onnx-fp16 (4 files)" in out.stdout
    info = seaembed("info", bundle_copy)
    assert info.returncode == 0, info.stderr
    assert "artifact    onnx-fp32-ort" in info.stdout
    assert f"pruned      onnx-fp16    rebuild: seaembed export {tiny_checkpoint} --precision fp16 --keep onnx-fp16 --out DIR" in info.stdout
    embed = seaembed("embed", bundle_copy, "xin chào")
    assert embed.returncode == 0 and len(json.loads(embed.stdout)["embedding"]) == 32
    missing = seaembed("embed", bundle_copy, "xin chào", "--artifact", "onnx-fp16")
    assert missing.returncode == 2 and "onnx-fp16 was pruned from this bundle" in missing.stderr
    bad = seaembed("bundle", "prune", bundle_copy, "--keep", "onnx-fp16")
    assert bad.returncode == 2 and "seaembed bundle: --keep onnx-fp16" in bad.stderr and "was pruned" in bad.stderr


def test_export_keep_ships_only_the_named_artifacts(tiny_checkpoint, tmp_path):
    from seaembed.export import export_bundle

    manifest = export_bundle(str(tiny_checkpoint), tmp_path / "b", precisions=("fp32", "fp16"), keep=("onnx-fp16",))
    assert [a.name for a in manifest.artifacts] == ["onnx-fp16"]
    assert _files(tmp_path / "b") == ["manifest.json", "model.fp16.onnx", "model.fp16.onnx.data", "tokenizer.json"]
    assert manifest.artifacts[0].parity["passed"] is True
    assert Embedder.load(tmp_path / "b").encode("hello").shape == (32,)


def test_export_keep_refuses_names_it_will_not_build_before_any_work(tiny_checkpoint, tmp_path):
    from seaembed.export import export_bundle

    with pytest.raises(ValueError, match=r"--keep onnx-int8-dynamic: this export does not build it \(add the --precision that builds it\); it builds: onnx-fp32, onnx-fp32-ort"):
        export_bundle(str(tiny_checkpoint), tmp_path / "b", keep=("onnx-int8-dynamic",))
    with pytest.raises(ValueError, match=r"tensorrt-fp16: .*add --target tensorrt"):
        export_bundle(str(tiny_checkpoint), tmp_path / "b", precisions=("fp32", "fp16"), keep=("tensorrt-fp16",))
    assert not (tmp_path / "b").exists()
    # the command line: a usage error (exit 2) in one line, before the checkpoint is even read
    result = seaembed("export", tiny_checkpoint, "--out", tmp_path / "b", "--keep", "onnx-int8-dynamic")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("seaembed export: --keep onnx-int8-dynamic: this export does not build it") and "Traceback" not in result.stderr
    assert not (tmp_path / "b").exists()


def test_cold_start_is_measured_in_fresh_processes(tiny_bundle):
    from seaembed.runtime.coldstart import cold_start

    measured = cold_start(tiny_bundle, "onnx-fp16", threads=1, runs=1)
    assert measured["artifact"] == "onnx-fp16" and measured["runs"] == 1
    # the wall time from process start covers the interpreter, imports, load and the first call
    assert measured["first_embedding_s"] > measured["load_s"] + measured["first_embed_s"] > 0
    assert measured["startup_s"] > 0.05  # a fresh interpreter importing numpy and onnxruntime
    assert 20 < measured["rss_mb"] <= measured["peak_rss_mb"] < 4000
    with pytest.raises(RuntimeError, match="cold-start run of onnx-int9 failed .*no artifact named 'onnx-int9'"):
        cold_start(tiny_bundle, "onnx-int9", runs=1)


def test_bench_reports_cold_start_and_rss(tiny_bundle, tmp_path):
    out = seaembed("bench", tiny_bundle, "--artifacts", "onnx-fp32", "--cold-runs", "1", "--corpus-size", "4", "--passages", "1", "--threads", "1", "--json", tmp_path / "b.json")
    assert out.returncode == 0, out.stderr
    assert "onnx-fp32          cold start: first embedding after" in out.stdout
    row = json.loads((tmp_path / "b.json").read_text())["results"]["onnx-fp32"]
    assert row["cold_start"]["rss_mb"] > 20 and row["cold_start"]["first_embedding_s"] > 0
    assert row["short_query_ms"]["p50"] > 0
