"""embed-dataset on local worker processes: every vector equals Embedder.encode, ids line up, bad rows are
reported and skipped, and a run killed mid-way resumes to exactly the output of an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow", reason="embed-dataset needs pyarrow (seaembed[bulk])")
import pyarrow.dataset as pads  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from seaembed.runtime.bulk import embed_dataset  # noqa: E402
from seaembed.runtime.bulk.encode import token_windows  # noqa: E402
from seaembed.runtime.bulk.output import unpack_ubinary  # noqa: E402

SCRIPT = Path(sys.executable).parent / "seaembed"
COMMAND = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "seaembed.runtime.cli"]

# line → why it is bad; every other line of mixed_input holds a good text
BAD_LINES = {3: "missing field 'text'", 5: "empty text", 8: "field 'text' is list, not a string", 11: "invalid UTF-8"}


def read_output(path: Path) -> pa.Table:
    return pads.dataset(path).to_table()


def vectors(table: pa.Table) -> np.ndarray:
    column = table.column("embedding").combine_chunks()
    return column.flatten().to_numpy(zero_copy_only=False).reshape(len(table), -1)


def write_mixed_input(folder: Path, corpus: list[str]) -> dict[str, str]:
    """A directory of one JSONL (with every kind of bad row) and one CSV; returns id → text of the good rows."""
    folder.mkdir()
    lines, texts = [], {}
    for n in range(1, 25):
        if n in BAD_LINES:
            lines.append({3: b'{"doc": "d3"}', 5: b'{"doc": "d5", "text": ""}', 8: b'{"doc": "d8", "text": ["x"]}', 11: b'{"doc": "d11", "text": "\xff"}'}[n])
            continue
        text = corpus[n % len(corpus)] + f" ({n})"
        texts[f"d{n}"] = text
        lines.append(json.dumps({"doc": f"d{n}", "text": text}, ensure_ascii=False).encode())
    (folder / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    rows = ["doc,text"] + [f'c{i},"{corpus[-i].replace(chr(34), "")} [{i}]"' for i in range(1, 8)]
    (folder / "b.csv").write_text("\n".join(rows) + "\n")
    texts.update({f"c{i}": f"{corpus[-i].replace(chr(34), '')} [{i}]" for i in range(1, 8)})
    return texts


def test_local_workers_equal_embedder_with_ids_and_bad_rows(tiny_bundle, tiny_embedder, tmp_path, corpus):
    texts = write_mixed_input(tmp_path / "in", corpus)
    summary = embed_dataset(tiny_bundle, tmp_path / "in", tmp_path / "out", id_field="doc", prompt_name="passage", workers=2, rows_per_part=5, progress="off")
    table = read_output(tmp_path / "out")
    ids = table.column("id").to_pylist()
    assert sorted(ids) == sorted(texts) and len(ids) == len(set(ids))
    expected = tiny_embedder.encode([texts[i] for i in ids], prompt_name="passage")
    assert np.abs(vectors(table) - expected).max() <= 1e-6
    tokens = [len(tiny_embedder.tokenizer.encode(texts[i], prompt_name="passage")) for i in ids]
    assert table.column("tokens").to_pylist() == tokens and not any(table.column("truncated").to_pylist())
    bad = [json.loads(line) for line in (tmp_path / "out" / "_bad_rows.jsonl").read_text().splitlines()]
    assert [(b["line"], b["id"]) for b in bad] == [(n, f"d{n}") for n in BAD_LINES]
    for row, reason in zip(bad, BAD_LINES.values(), strict=True):
        assert reason in row["reason"] and row["source"] == "a.jsonl"
    assert summary["inputs"] == 24 + 7 and summary["bad_rows"] == 4 and summary["embedded"] == len(texts)
    assert summary["parts"] == 5 + 2 and len(summary["per_worker"]) == 2
    assert json.loads((tmp_path / "out" / "_summary.json").read_text())["tokens"] == sum(tokens)

    from seaembed.runtime.cli.inputs import BadRowError

    with pytest.raises(BadRowError, match=r"a.jsonl:3: missing field 'text'"):
        embed_dataset(tiny_bundle, tmp_path / "in", tmp_path / "strict", id_field="doc", strict=True, workers=1, progress="off")


def test_dtypes_and_over_length_policies(tiny_bundle, tiny_embedder, tmp_path):
    tokenizer = tiny_embedder.tokenizer
    long_text = " ".join(f"word{i}" for i in range(900))
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps({"text": t}) for t in ["short one", long_text, "short two"]) + "\n")
    run = {"workers": 1, "progress": "off"}
    embed_dataset(tiny_bundle, src, tmp_path / "f16", dtype="float16", **run)
    embed_dataset(tiny_bundle, src, tmp_path / "bits", dtype="ubinary", **run)
    expected = tiny_embedder.encode(["short one", long_text, "short two"])
    assert np.abs(vectors(read_output(tmp_path / "f16")).astype(np.float32) - expected).max() < 1e-3
    bits = read_output(tmp_path / "bits")
    assert bits.schema.field("embedding").type.list_size == tiny_embedder.dim // 8
    assert np.array_equal(unpack_ubinary(vectors(bits), tiny_embedder.dim), (expected > 0).astype(np.uint8))
    assert read_output(tmp_path / "bits").column("truncated").to_pylist() == [False, True, False]

    embed_dataset(tiny_bundle, src, tmp_path / "err", over_length="error", **run)
    assert read_output(tmp_path / "err").column("id").to_pylist() == ["in.jsonl:1", "in.jsonl:3"]
    assert "tokens but the model accepts at most 512 (over-length policy 'error'" in (tmp_path / "err" / "_bad_rows.jsonl").read_text()

    summary = embed_dataset(tiny_bundle, src, tmp_path / "chunk", over_length="chunk", prompt_name="passage", **run)
    table = read_output(tmp_path / "chunk")
    windows = token_windows(tokenizer, long_text, "passage")
    assert table.column("windows").to_pylist() == [1, len(windows), 1] and len(windows) >= 2 and summary["chunked"] == 1
    assert all(len(w) <= 512 and w[: len(tokenizer.prefix_ids)] == tokenizer.prefix_ids for w in windows)
    # the windows reach the text's last token (the limit is lifted in the engine, not just on the facade)
    body = tokenizer.with_max_tokens(100_000).encode(long_text, add_special_tokens=False)
    assert len(body) > 1000 and tokenizer.max_tokens == 512
    tail = windows[-1][: len(windows[-1]) - len(tokenizer.suffix_ids)]
    assert tail[-20:] == body[-20:]
    # the prompt is tokenized apart from the text, yet a window is what the model sees for prompt + text
    assert windows[0] == tokenizer.encode(long_text, prompt_name="passage", truncate=True)
    assert token_windows(tokenizer, "hello world", "passage") == [tokenizer.encode("hello world", prompt_name="passage")]
    raw = tiny_embedder.embed_ids(windows, normalize=False).astype(np.float64)
    weights = np.array([len(w) for w in windows], dtype=np.float64)
    combined = (raw * weights[:, None]).sum(0) / weights.sum()
    combined /= np.linalg.norm(combined)
    got = vectors(table)
    assert np.abs(got[1] - combined).max() <= 1e-6
    assert np.abs(got[[0, 2]] - tiny_embedder.encode(["short one", "short two"], prompt_name="passage")).max() <= 1e-6
    assert table.column("tokens").to_pylist()[1] == sum(len(w) for w in windows)


def _corpus_file(path: Path, corpus: list[str], n: int) -> None:
    lines = [json.dumps({"text": f"{corpus[i % len(corpus)]} #{i}"}, ensure_ascii=False) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")


def _parts(folder: Path) -> dict[str, pa.Table]:
    return {p.name: pq.read_table(p).replace_schema_metadata(None) for p in sorted(folder.glob("part-*.parquet"))}


def _worker_pids(driver: int) -> list[int]:
    pids = []
    for task in Path(f"/proc/{driver}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                pids.append(int(child))
    return pids


def _start_and_kill(args: list[str], output: Path, kill) -> subprocess.CompletedProcess:
    process = subprocess.Popen([*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list(output.glob("part-*.parquet")):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.02)
    kill(process)
    stdout, stderr = process.communicate(timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.slow
def test_resume_after_killing_a_worker_or_the_driver_gives_the_same_output(tiny_bundle, tmp_path, corpus):
    src = tmp_path / "corpus.jsonl"
    _corpus_file(src, corpus, 6000)
    args = ["embed-dataset", str(tiny_bundle), str(src), "--workers", "2", "--rows-per-part", "300", "--progress", "off"]
    clean = subprocess.run([*COMMAND, *args[:3], str(tmp_path / "clean"), *args[3:]], capture_output=True, text=True, check=True)
    assert "embedded 6,000 of 6,000 inputs into 20 parts" in clean.stdout
    expected = _parts(tmp_path / "clean")

    worker_killed = _start_and_kill([*args[:3], str(tmp_path / "a"), *args[3:]], tmp_path / "a", lambda p: os.kill(_worker_pids(p.pid)[0], signal.SIGKILL))
    assert worker_killed.returncode == 7, worker_killed.stderr
    assert "was killed by signal 9" in worker_killed.stderr and "rerun the same command to resume" in worker_killed.stderr
    assert len(worker_killed.stderr.strip().splitlines()) == 1 and worker_killed.stdout == ""
    assert 0 < len(_parts(tmp_path / "a")) < 20

    driver_killed = _start_and_kill([*args[:3], str(tmp_path / "b"), *args[3:]], tmp_path / "b", lambda p: os.killpg(p.pid, signal.SIGKILL))
    assert driver_killed.returncode == -signal.SIGKILL
    for name in ("a", "b"):
        done_before = len(_parts(tmp_path / name))
        rerun = subprocess.run([*COMMAND, *args[:3], str(tmp_path / name), *args[3:]], capture_output=True, text=True, check=True)
        assert f"({done_before} parts were already done)" in rerun.stdout
        got = _parts(tmp_path / name)
        assert got.keys() == expected.keys() and all(got[k].equals(expected[k]) for k in expected)
        assert not [p for p in (tmp_path / name).iterdir() if p.name.endswith(".tmp")]


def test_a_rerun_with_other_settings_is_refused(tiny_bundle, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("one\ntwo\n")
    embed_dataset(tiny_bundle, src, tmp_path / "out", workers=1, progress="off")
    result = subprocess.run([*COMMAND, "embed-dataset", str(tiny_bundle), str(src), str(tmp_path / "out"), "--prompt-name", "query"], capture_output=True, text=True)
    assert result.returncode == 6 and "prompt_name: None then, 'query' now" in result.stderr and "--overwrite" in result.stderr
    again = subprocess.run([*COMMAND, "embed-dataset", str(tiny_bundle), str(src), str(tmp_path / "out"), "--prompt-name", "query", "--overwrite"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr


def test_a_rerun_removes_temporary_files_a_killed_run_left(tiny_bundle, tmp_path):
    """A driver killed between writing and renaming _manifest.json (or a part) leaves a hidden .tmp file."""
    src = tmp_path / "in.txt"
    src.write_text("one\ntwo\n")
    out = tmp_path / "out"
    embed_dataset(tiny_bundle, src, out, workers=1, progress="off")
    stale = [out / "._manifest.json.4242.tmp", out / "._summary.json.4242.tmp", out / ".part-00000.parquet.4243.tmp"]
    for path in stale:
        path.write_text("partial")
    (out / ".keep-me.tmp").write_text("not ours")
    embed_dataset(tiny_bundle, src, out, workers=1, progress="off")
    assert not any(path.exists() for path in stale) and (out / ".keep-me.tmp").exists()


def test_e5_small_two_workers_equal_embedder(e5_small_bundle, tmp_path, corpus):
    from seaembed.runtime import Embedder

    src = tmp_path / "in.jsonl"
    _corpus_file(src, corpus, 120)
    embed_dataset(e5_small_bundle, src, tmp_path / "out", prompt_name="passage", workers=2, rows_per_part=30, progress="off")
    table = read_output(tmp_path / "out")
    texts = [json.loads(line)["text"] for line in src.read_text().splitlines()]
    assert table.column("id").to_pylist() == [f"in.jsonl:{n}" for n in range(1, 121)]
    expected = Embedder.load(e5_small_bundle).encode(texts, prompt_name="passage")
    assert np.abs(vectors(table) - expected).max() <= 1e-6


def test_rows_are_named_by_their_id_field_when_every_file_has_one(tiny_bundle, tmp_path):
    with_ids = tmp_path / "with_ids"
    with_ids.mkdir()
    (with_ids / "a.jsonl").write_text("\n".join(json.dumps({"id": f"doc-{i}", "text": f"text {i}"}) for i in range(3)) + "\n")
    (with_ids / "b.csv").write_text("id,text\n7,seven\n8,eight\n")
    embed_dataset(tiny_bundle, with_ids, tmp_path / "out_ids", workers=1, progress="off")
    assert read_output(tmp_path / "out_ids").column("id").to_pylist() == ["doc-0", "doc-1", "doc-2", "7", "8"]
    # one file without ids: every row is FILE:LINE, so a job never mixes the two kinds of names
    (with_ids / "c.jsonl").write_text(json.dumps({"text": "no id here"}) + "\n")
    embed_dataset(tiny_bundle, with_ids, tmp_path / "out_lines", workers=1, progress="off")
    assert read_output(tmp_path / "out_lines").column("id").to_pylist() == ["a.jsonl:1", "a.jsonl:2", "a.jsonl:3", "b.csv:2", "b.csv:3", "c.jsonl:1"]
