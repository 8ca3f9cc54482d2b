"""A full disk or a read-only filesystem is an output error (exit 6), wherever the write happens."""

from __future__ import annotations

import errno
import json
import subprocess
import sys

import pytest

from seaembed.runtime.cli.support import ExitCode, classify

COMMAND = [sys.executable, "-m", "seaembed.runtime.cli"]


@pytest.mark.parametrize("number", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG])
def test_write_errnos_are_output_errors(number):
    code, message = classify(OSError(number, "cannot"), "embed-dataset")
    assert code == ExitCode.OUTPUT and "cannot write the output" in message


@pytest.fixture
def small_mounts(tmp_path):
    """A 16 KiB tmpfs and a read-only one (needs root and mount rights; skipped elsewhere)."""
    full, read_only = tmp_path / "full", tmp_path / "ro"
    full.mkdir()
    read_only.mkdir()
    mounted = []
    for target, options in ((full, "size=16k"), (read_only, "size=16k,ro")):
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
        if result.returncode != 0:
            for path in mounted:
                subprocess.run(["umount", str(path)])
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounted.append(target)
    yield full, read_only
    for path in mounted:
        subprocess.run(["umount", str(path)])


def test_full_disk_and_read_only_exit_6(tiny_bundle, tmp_path, small_mounts):
    full, read_only = small_mounts
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": f"text number {i} " * 5}) + "\n" for i in range(600)))
    runs = [
        ("embed", str(tiny_bundle), "--input", str(source), "--output", str(full / "out.npy")),
        ("embed", str(tiny_bundle), "x", "--output", str(read_only / "out.npy")),
        ("embed-dataset", str(tiny_bundle), str(source), str(full / "ds"), "--workers", "1", "--progress", "off"),
        ("embed-dataset", str(tiny_bundle), str(source), str(read_only / "ds"), "--workers", "1", "--progress", "off"),
    ]
    for argv in runs:
        result = subprocess.run([*COMMAND, *argv], capture_output=True, text=True, timeout=300)
        assert result.returncode == 6, (argv, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
