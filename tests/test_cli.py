"""The CLI, run as a user runs it: the installed `seaembed` script in a subprocess.

Every failure must be one line on stderr with its documented exit code, and stdout must carry
results only (JSON lines that parse), whatever went wrong.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(sys.executable).parent / "seaembed"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "seaembed.runtime.cli"]


def seaembed(*args, input_text=None, check=True, env=None, **kwargs):
    return subprocess.run(
        [*COMMAND, *map(str, args)],
        capture_output=True,
        text=True,
        input=input_text if input_text is not None else "",
        check=check,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


def one_line_error(result, code: int, *fragments: str) -> str:
    """The run failed with `code`, one line on stderr holding every fragment, nothing on stdout."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.returncode, result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""
    return lines[0]


def json_rows(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines()]


def test_embed_prints_json_lines_equal_to_library(tiny_bundle, tiny_embedder):
    out = seaembed("embed", tiny_bundle, "hello", "xin chào", "--prompt-name", "query")
    rows = json_rows(out.stdout)
    assert [r["text"] for r in rows] == ["hello", "xin chào"] and [r["id"] for r in rows] == [0, 1]
    expected = tiny_embedder.encode(["hello", "xin chào"], prompt_name="query")
    assert np.allclose([r["embedding"] for r in rows], expected, atol=1e-6)


def test_options_may_come_before_the_texts(tiny_bundle, tiny_embedder):
    out = seaembed("embed", tiny_bundle, "--prompt-name", "query", "hello", "--batch-size", "1", "xin chào")
    assert [r["text"] for r in json_rows(out.stdout)] == ["hello", "xin chào"]
    expected = tiny_embedder.encode(["hello", "xin chào"], prompt_name="query")
    assert np.allclose([r["embedding"] for r in json_rows(out.stdout)], expected, atol=1e-6)


def test_embed_files_to_npy_and_jsonl(tiny_bundle, tiny_embedder, tmp_path, corpus):
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"text": t}) for t in corpus[:40]))
    seaembed("embed", tiny_bundle, "--input", src, "--output", tmp_path / "out.npy", "--batch-size", "8")
    assert np.allclose(np.load(tmp_path / "out.npy"), tiny_embedder.encode(corpus[:40]), atol=1e-6)
    assert not (tmp_path / "out.npy.skipped.jsonl").exists()
    csv_file = tmp_path / "in.csv"
    csv_file.write_text('doc,body\nd1,one\nd2,"two, with a comma"\n')
    seaembed("embed", tiny_bundle, "--input", csv_file, "--text-field", "body", "--id-field", "doc", "--output", tmp_path / "out.jsonl")
    rows = json_rows((tmp_path / "out.jsonl").read_text())
    assert [(r["id"], r["text"]) for r in rows] == [("d1", "one"), ("d2", "two, with a comma")]
    assert np.allclose([r["embedding"] for r in rows], tiny_embedder.encode(["one", "two, with a comma"]), atol=1e-6)


BAD_JSONL = [
    b'{"text": "first good row"}',
    b"this is not json",
    b'{"text": 42}',
    b'{"title": "no text field"}',
    b'{"text": "bad \xff byte"}',
    b'{"text": ""}',
    b"",
    b'"a bare string is a text"',
    b'{"text": "lone \\ud800 surrogate"}',
    b"[1, 2]",
    b'{"text": "last good row"}',
]
BAD_JSONL_REASONS = {
    2: "not valid JSON",
    3: "field 'text' is int, not a string",
    4: "missing field 'text'",
    5: "invalid UTF-8 (byte 0xff",
    6: "empty text",
    9: "not valid Unicode: lone surrogate U+D800",
    10: "expected an object with 'text' or a string, got list",
}


def test_bad_rows_are_skipped_and_reported_with_file_and_line(tiny_bundle, tiny_embedder, tmp_path):
    src = tmp_path / "mixed.jsonl"
    src.write_bytes(b"\n".join(BAD_JSONL) + b"\n")
    result = seaembed("embed", tiny_bundle, "--input", src)
    rows = json_rows(result.stdout)
    assert [(r["id"], r["text"]) for r in rows] == [(1, "first good row"), (8, "a bare string is a text"), (11, "last good row")]
    expected = tiny_embedder.encode([r["text"] for r in rows])
    assert np.allclose([r["embedding"] for r in rows], expected, atol=1e-6)
    for line, reason in BAD_JSONL_REASONS.items():
        assert any(f"{src}:{line}: {reason}" in err for err in result.stderr.splitlines()), (line, result.stderr)
    assert f"skipped {len(BAD_JSONL_REASONS)} of 10 rows" in result.stderr

    strict = seaembed("embed", tiny_bundle, "--input", src, "--strict", check=False)
    one_line_error(strict, 3, f"{src}:2: not valid JSON")

    out = tmp_path / "mixed.npy"
    seaembed("embed", tiny_bundle, "--input", src, "--output", out)
    assert np.allclose(np.load(out), expected, atol=1e-6)
    skipped = json_rows((tmp_path / "mixed.npy.skipped.jsonl").read_text())
    assert [s["line"] for s in skipped] == sorted(BAD_JSONL_REASONS)


def test_txt_input_with_invalid_utf8_and_empty_lines(tiny_bundle, tmp_path):
    src = tmp_path / "in.txt"
    src.write_bytes(b"one\r\nbad \xc3\x28 bytes\n\ntwo\n")
    result = seaembed("embed", tiny_bundle, "--input", src)
    assert [(r["id"], r["text"]) for r in json_rows(result.stdout)] == [(1, "one"), (4, "two")]
    assert f"{src}:2: invalid UTF-8 (byte 0xc3 at byte 4)" in result.stderr
    assert f"{src}:3: empty text" in result.stderr
    piped = seaembed("embed", tiny_bundle, input_text="alpha\nbeta\n")
    assert [r["text"] for r in json_rows(piped.stdout)] == ["alpha", "beta"]


def test_empty_text_is_refused_everywhere(tiny_bundle, tiny_embedder):
    from seaembed.runtime import InvalidTextError

    one_line_error(seaembed("embed", tiny_bundle, "fine", "", check=False), 3, "TEXT argument 2: empty text")
    with pytest.raises(InvalidTextError, match="input 1 is an empty string") as err:
        tiny_embedder.encode(["fine", ""])
    assert err.value.index == 1


@pytest.mark.parametrize("flag,value,expected_ok", [("--truncate", "false", False), ("--truncate", "true", True), ("--truncate", "0", False), ("--truncate", "yes", True)])
def test_boolean_flags_parse_both_ways(tiny_bundle, flag, value, expected_ok):
    result = seaembed("embed", tiny_bundle, "word " * 700, flag, value, check=False)
    if expected_ok:
        assert result.returncode == 0 and "were cut to their first 512 (ids 0)" in result.stderr
    else:
        one_line_error(result, 3, "TEXT argument 1: 702 tokens but the model accepts at most 512", "--truncate true")


def test_usage_errors_exit_2_in_one_line(tiny_bundle):
    one_line_error(seaembed("embed", tiny_bundle, "x", "--normalize", "maybe", check=False), 2, "expected true or false, got 'maybe'")
    one_line_error(seaembed("embed", tiny_bundle, "x", "--precision", "fp64", check=False), 2, "--precision", "invalid choice: 'fp64'")
    one_line_error(seaembed("embed", tiny_bundle, "x", "--precision", "int8", check=False), 2, "the bundle has no int8 graph (it has: fp16, fp32)")
    one_line_error(seaembed("embed", tiny_bundle, "x", "--backend", "gpu", check=False), 2, "--backend", "invalid choice: 'gpu'")
    one_line_error(seaembed("embed", tiny_bundle, "x", "--prompt-name", "summary", check=False), 2, "'summary' is not defined by this model (its prompts: document, passage, query)")
    one_line_error(seaembed("embed", tiny_bundle, "x", "--artifact", "onnx-int9", check=False), 2, "--artifact 'onnx-int9' is not in the bundle")
    one_line_error(seaembed("embed", tiny_bundle, "x", "--batch-size", "0", check=False), 2, "must be at least 1, got 0")
    one_line_error(seaembed("embed", tiny_bundle, "x", "--output", "out.csv", check=False), 2, "name it .npy")
    one_line_error(seaembed("embed", tiny_bundle, "x", "--bogus", check=False), 2, "unrecognized arguments: --bogus")
    one_line_error(seaembed(check=False), 2, "required: command")
    one_line_error(seaembed("embed", tiny_bundle, "x", env={"SEAEMBED_BACKEND": "gpu"}, check=False), 2, "from SEAEMBED_BACKEND")


def test_unavailable_backend_exits_5(tiny_bundle):
    one_line_error(seaembed("embed", tiny_bundle, "x", "--backend", "tensorrt", check=False), 5)


def test_bundle_and_model_errors_exit_4(tiny_bundle, tmp_path):
    one_line_error(seaembed("embed", tmp_path / "missing", "x", check=False), 4, "bundle directory", "does not exist")
    broken = tmp_path / "broken"
    shutil.copytree(tiny_bundle, broken)
    manifest = json.loads((broken / "manifest.json").read_text())
    model = broken / manifest["artifacts"][0]["file"]
    model.write_bytes(model.read_bytes()[:-10] + b"0123456789")
    one_line_error(seaembed("embed", broken, "x", "--artifact", manifest["artifacts"][0]["name"], check=False), 4, "sha256", "re-export")
    (broken / "manifest.json").unlink()
    (broken / "manifest.json").mkdir()
    one_line_error(seaembed("info", broken, check=False), 4, "cannot read the bundle", "Is a directory")
    one_line_error(seaembed("export", "/nonexistent", "--out", tmp_path / "x", check=False), 4, "'/nonexistent' is not an existing directory, nor a hub id")
    one_line_error(seaembed("export", "./no/such/dir", "--out", tmp_path / "x", check=False), 4, "not an existing directory")


def test_input_and_output_errors(tiny_bundle, tmp_path):
    one_line_error(seaembed("embed", tiny_bundle, "--input", tmp_path / "nope.jsonl", check=False), 3, "input file", "does not exist")
    one_line_error(seaembed("embed", tiny_bundle, "--input", tmp_path / "data.xlsx", check=False), 3, "cannot tell the format")
    csv_file = tmp_path / "in.csv"
    csv_file.write_text("title,body\na,b\n")
    one_line_error(seaembed("embed", tiny_bundle, "--input", csv_file, check=False), 3, "no column 'text' (columns: title, body); pass --text-field")
    one_line_error(seaembed("embed", tiny_bundle, "x", "--output", tmp_path / "no" / "dir.npy", check=False), 6, "does not exist")
    one_line_error(seaembed("embed", tiny_bundle, "--input", csv_file, "x", check=False), 2, "not both")


def test_debug_shows_the_traceback(tmp_path):
    result = seaembed("embed", tmp_path / "missing", "x", env={"SEAEMBED_DEBUG": "1"}, check=False)
    assert result.returncode == 4 and "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("seaembed embed: bundle directory")
    assert "Traceback" in seaembed("embed", tmp_path / "missing", "x", "--debug", check=False).stderr


def test_closed_pipe_exits_quietly(tiny_bundle):
    texts = [f"text number {i}" for i in range(3000)]
    process = subprocess.Popen([*COMMAND, "embed", str(tiny_bundle), "--input", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdin.write("\n".join(texts).encode())
    process.stdin.close()
    assert len(process.stdout.read(300)) == 300
    process.stdout.close()  # as `| head -c 300` does
    assert process.wait(timeout=60) == 141
    assert process.stderr.read() == b""


def test_ctrl_c_exits_130_and_leaves_no_partial_output(tiny_bundle, tmp_path, corpus):
    src = tmp_path / "big.txt"
    src.write_text("\n".join((corpus * 400)[:20000]))
    out = tmp_path / "out.npy"
    process = subprocess.Popen(
        [*COMMAND, "embed", str(tiny_bundle), "--input", str(src), "--output", str(out), "--progress", "on"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a background runner may have inherited SIG_IGN
    )
    first = process.stderr.readline()  # the first progress line: embedding has started
    assert "inputs/s" in first and "tokens/s" in first, first
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert [line for line in stderr.splitlines() if "embedded" not in line] == ["seaembed embed: interrupted"]
    assert stdout == "" and sorted(p.name for p in tmp_path.iterdir()) == ["big.txt"]


def test_progress_goes_to_stderr_only_when_asked_or_on_a_terminal(tiny_bundle, tmp_path, corpus):
    lines = [" ".join(text.split()) for text in corpus if text.strip()]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(lines))
    shown = seaembed("embed", tiny_bundle, "--input", src, "--progress", "on")
    assert f"embedded {len(lines)}/{len(lines)} (100%)" in shown.stderr and "tokens/s" in shown.stderr
    assert len(json_rows(shown.stdout)) == len(lines)
    piped = seaembed("embed", tiny_bundle, "--input", src)
    assert "inputs/s" not in piped.stderr


def test_info_and_verify(tiny_bundle, tiny_checkpoint):
    info = seaembed("info", tiny_bundle).stdout
    assert "xlm-roberta: 2 layers, hidden 32" in info and "onnx-fp32" in info
    assert "\nthis cpu    " in info and "int8 dot products " in info  # the CPU's int8/bf16 features, x86 or Arm
    verify = seaembed("verify", tiny_bundle, "--reference", tiny_checkpoint)
    assert "verify: PASS" in verify.stdout and "FAIL" not in verify.stdout.replace("verify: PASS", "")


def test_exit_codes_are_documented():
    from seaembed.runtime.cli.support import ExitCode

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("### Exit codes") :]
    for code in ExitCode:
        assert f"| {int(code)} |" in section, code
