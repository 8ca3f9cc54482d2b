"""The CLI, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest


def seaembed(*args, input_text=None, check=True):
    return subprocess.run(
        [sys.executable, "-m", "seaembed.runtime.cli", *map(str, args)],
        capture_output=True,
        text=True,
        input=input_text,
        check=check,
    )


def test_embed_prints_json_lines_equal_to_library(tiny_bundle, tiny_embedder):
    out = seaembed("embed", tiny_bundle, "hello", "xin chào", "--prompt-name", "query")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["text"] for r in rows] == ["hello", "xin chào"]
    expected = tiny_embedder.encode(["hello", "xin chào"], prompt_name="query")
    assert np.allclose([r["embedding"] for r in rows], expected, atol=1e-6)


def test_embed_files_to_npy_and_jsonl(tiny_bundle, tiny_embedder, tmp_path, corpus):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"text": t}) for t in corpus[:40]))
    seaembed("embed", tiny_bundle, "--input", src, "--output", tmp_path / "out.npy", "--batch-size", "8")
    assert np.allclose(np.load(tmp_path / "out.npy"), tiny_embedder.encode(corpus[:40]), atol=1e-6)
    txt = tmp_path / "in.txt"
    txt.write_text("one\ntwo\n\nthree\n")
    seaembed("embed", tiny_bundle, "--input", txt, "--output", tmp_path / "out.jsonl")
    assert [json.loads(line)["text"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == ["one", "two", "three"]


@pytest.mark.parametrize("flag,value,expected_ok", [("--truncate", "false", False), ("--truncate", "true", True), ("--truncate", "0", False), ("--truncate", "yes", True)])
def test_boolean_flags_parse_both_ways(tiny_bundle, flag, value, expected_ok):
    result = seaembed("embed", tiny_bundle, "word " * 700, flag, value, check=False)
    assert (result.returncode == 0) is expected_ok, result.stderr
    if not expected_ok:
        assert "tokens but the model accepts at most 512" in result.stderr


def test_bad_boolean_value_is_rejected(tiny_bundle):
    result = seaembed("embed", tiny_bundle, "x", "--normalize", "maybe", check=False)
    assert result.returncode == 2 and "expected true or false, got 'maybe'" in result.stderr


def test_info_and_verify(tiny_bundle, tiny_checkpoint):
    info = seaembed("info", tiny_bundle).stdout
    assert "xlm-roberta: 2 layers, hidden 32" in info and "onnx-fp32" in info
    verify = seaembed("verify", tiny_bundle, "--reference", tiny_checkpoint)
    assert "verify: PASS" in verify.stdout and "FAIL" not in verify.stdout.replace("verify: PASS", "")


def test_errors_are_one_line_with_exit_2(tmp_path):
    result = seaembed("embed", tmp_path / "missing", "x", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("seaembed embed: bundle directory")
