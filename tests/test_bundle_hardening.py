"""Bundles from anywhere: a manifest that lies about its files, types or sizes is refused at load with one
BundleError naming the field (exit 4 on the command line, `serve` fails at start in one line)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from seaembed.runtime.cli import main
from seaembed.runtime.integrity import sha256_file


def _copy(tiny_bundle, tmp_path) -> Path:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    return bundle


def _edit(bundle: Path, change) -> None:
    path = bundle / "manifest.json"
    data = json.loads(path.read_text())
    change(data, bundle)
    path.write_text(json.dumps(data))


def _first_artifact_to(data, name: str) -> None:
    artifact = data["artifacts"][0]
    old = artifact["file"]
    artifact["sha256"] = {(name if k == old else k): v for k, v in artifact["sha256"].items()}
    artifact["file"] = name


def _outside_graph(data, bundle):
    outside = bundle.parent / "outside"
    outside.mkdir()
    for name in data["artifacts"][0]["sha256"]:
        shutil.copy(bundle / name, outside / name)
    _first_artifact_to(data, "../outside/" + data["artifacts"][0]["file"])


def _symlinked_graph(data, bundle):
    """A link to a byte-identical graph outside the bundle: the sha256 matches, the place does not."""
    graph = bundle / data["artifacts"][0]["file"]
    outside = bundle.parent / "elsewhere.onnx"
    shutil.copy(graph, outside)
    graph.unlink()
    graph.symlink_to(outside)


def _external_data(location: str):
    def change(data, bundle):
        onnx = pytest.importorskip("onnx")
        artifact = data["artifacts"][0]
        graph = bundle / artifact["file"]
        model = onnx.load(str(graph), load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save_model(model, str(graph))
        artifact["sha256"][artifact["file"]] = sha256_file(graph)  # a consistent, hostile bundle

    return change


def _huge_tokenizer(data, bundle):
    path = bundle / data["tokenizer"]["file"]
    with open(path, "r+b") as handle:
        handle.truncate(300 * 1024 * 1024)  # sparse: no disk, checked before anything hashes it


def _deep_tokenizer(data, bundle):
    path = bundle / data["tokenizer"]["file"]
    path.write_bytes(b"[" * 100_000)
    data["tokenizer"]["sha256"] = sha256_file(path)


def _set(*keys_and_value):
    *keys, value = keys_and_value

    def change(data, _bundle):
        target = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value

    return change


def _delete(*keys):
    def change(data, _bundle):
        target = data
        for key in keys[:-1]:
            target = target[key]
        del target[keys[-1]]

    return change


MANIFEST_CASES = {
    "artifact outside the bundle": (_outside_graph, "artifacts[0].file"),
    "artifact symlinked outside": (_symlinked_graph, "outside the bundle"),
    "absolute artifact path": (lambda d, b: _first_artifact_to(d, "/etc/passwd"), "no absolute path"),
    "absolute external data": (_external_data("/etc/passwd"), "external data"),
    "escaping external data": (_external_data("../outside.data"), "external data"),
    "unlisted external data": (_external_data("tokenizer.json"), "does not list with a sha256"),
    "huge tokenizer.json": (_huge_tokenizer, "tokenizer.file"),
    "tokenizer.json nested 100k deep": (_deep_tokenizer, "deeper than"),
    "dim 1e12": (_set("embedding_dim", 10**12), "`embedding_dim` is 1000000000000; it must be from 1 to 32"),
    "dim as a float": (_set("embedding_dim", 1e12), "`embedding_dim` must be a int"),
    "max_tokens 1e9": (_set("max_tokens", 10**9), "`max_tokens` is 1000000000; it must be from 1 to 512"),
    "prompts as a list": (_set("prompts", ["query: "]), "`prompts` must be an object"),
    "missing architecture field": (_delete("architecture", "hidden"), "`architecture.hidden` is missing"),
    "artifact sha256 key absolute": (lambda d, b: d["artifacts"][0]["sha256"].update({"/etc/passwd": "0" * 64}), "no absolute path"),
}
RAW_MANIFESTS = {
    "not UTF-8": (b'{"format": "seaembed-bundle", "model_name": "\xff\xfe"}', "is not UTF-8"),
    "not an object": (b"[1, 2, 3]", "must hold a JSON object"),
    "nested 100k deep": (b"[" * 100_000, "deeper than 64 levels"),
    "5 MB": (b'{"x": "' + b"a" * (5 << 20) + b'"}', "at most 4,194,304 are read"),
}


def _exit_code(capsys, *argv) -> tuple[int, str]:
    code = main([*map(str, argv)])
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_bad_manifest_exits_4_naming_the_field(tiny_bundle, tmp_path, capsys, case):
    change, needle = MANIFEST_CASES[case]
    bundle = _copy(tiny_bundle, tmp_path)
    _edit(bundle, change)
    for argv in (("embed", bundle, "x", "--artifact", "onnx-fp32"), ("info", bundle)):
        code, err = _exit_code(capsys, *argv)
        if case == "tokenizer.json nested 100k deep" and argv[0] == "info":
            assert code == 0  # info reads the manifest only (--verify parses the tokenizer too: below)
            continue
        assert code == 4, (argv, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err and needle in err, err


@pytest.mark.parametrize("case", list(RAW_MANIFESTS))
def test_unreadable_manifest_exits_4(tiny_bundle, tmp_path, capsys, case):
    raw, needle = RAW_MANIFESTS[case]
    bundle = _copy(tiny_bundle, tmp_path)
    (bundle / "manifest.json").write_bytes(raw)
    code, err = _exit_code(capsys, "info", bundle)
    assert code == 4 and len(err.splitlines()) == 1 and needle in err, err


def test_serve_refuses_a_bad_bundle_in_one_line(tiny_bundle, tmp_path):
    bundle = _copy(tiny_bundle, tmp_path)
    _edit(bundle, _outside_graph)
    result = subprocess.run(
        [sys.executable, "-m", "seaembed.runtime.cli", "serve", str(bundle), "--port", "0"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "SEAEMBED_THREADS": "1"},
    )
    assert result.returncode == 4, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "artifacts[0].file" in result.stderr and "outside" in result.stderr


def test_a_good_bundle_still_loads(tiny_bundle, capsys):
    code, err = _exit_code(capsys, "info", tiny_bundle)
    assert code == 0 and err == ""


def test_info_reads_the_manifest_and_info_verify_hashes_every_file(tiny_bundle, tmp_path, capsys):
    bundle = _copy(tiny_bundle, tmp_path)
    code, _err = _exit_code(capsys, "info", bundle, "--verify")
    assert code == 0
    data = bundle / "model.fp32.onnx.data"
    stat = data.stat()
    raw = bytearray(data.read_bytes())
    raw[100] ^= 0xFF  # one flipped byte in the weights, mtime put back
    data.write_bytes(bytes(raw))
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    code, _err = _exit_code(capsys, "info", bundle)
    assert code == 0  # info describes the manifest (schema-checked); it does not hash the graphs
    code, err = _exit_code(capsys, "info", bundle, "--verify")
    assert code == 4 and "model.fp32.onnx.data has sha256" in err and len(err.splitlines()) == 1


def test_info_verify_parses_the_tokenizer(tiny_bundle, tmp_path, capsys):
    bundle = _copy(tiny_bundle, tmp_path)
    _edit(bundle, _deep_tokenizer)
    code, err = _exit_code(capsys, "info", bundle, "--verify")
    assert code == 4 and "deeper than" in err, err
