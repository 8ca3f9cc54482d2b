"""Fixture bundles built once per CI run and shared by every pytest process that asks for the same one.

A bundle is keyed by everything that decides it: the exporter's and runtime's sources, the export
arguments, the checkpoint's model files (weights, configs, tokenizer.json) and the versions of the
stack that reads, builds and gates it — transformers and sentence-transformers included. They are
not optional: the bundle's tokenizer.json is what the installed transformers loads, and
transformers 4.57 and 5 tokenize `x<mask>y  <mask>  z` differently (7 vs 8 ids, measured), so a
bundle exported under one major fails sentence-transformers parity under the other, as it should.
`make test` and `make test-compat` therefore each build their own; repeated and parallel pytest
runs in one environment share them.

The cache lives in the checkout (`.cache/test-bundles`, ignored by git; SEAEMBED_TEST_CACHE moves
it), so a fresh clone starts empty. Builders hold a file lock and publish by rename: a reader sees a
complete bundle or none.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata as md
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE_ROOT = Path(os.environ.get("SEAEMBED_TEST_CACHE", REPO / ".cache" / "test-bundles"))
# The checkpoint files that decide the exported graphs and tokenizer. Side files that only one
# transformers major writes (special_tokens_map.json, the .model file) are not among them.
MODEL_FILES = ("model.safetensors", "config.json", "tokenizer.json", "modules.json", "sentence_bert_config.json",
               "config_sentence_transformers.json", "1_Pooling/config.json", "2_Normalize")
STACK = ("numpy", "torch", "transformers", "sentence-transformers", "tokenizers", "onnx", "onnxruntime", "onnxruntime-gpu",
         "openvino", "nncf", "safetensors")


def _digest_files(digest, root: Path, paths) -> None:
    for path in paths:
        rel = path.relative_to(root).as_posix()
        digest.update(rel.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())


def sources_digest() -> str:
    digest = hashlib.sha256()
    for folder in (REPO / "export", REPO / "runtime"):
        files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in (".py", ".json", ".txt", ".jsonl", ".cc", ".h"))
        _digest_files(digest, REPO, files)
    return digest.hexdigest()


def checkpoint_digest(checkpoint: Path) -> str:
    digest = hashlib.sha256()
    files = []
    for name in MODEL_FILES:
        path = checkpoint / name
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path] if path.exists() else []
    _digest_files(digest, checkpoint, files)
    return digest.hexdigest()


def stack_versions() -> dict[str, str]:
    versions = {}
    for package in STACK:
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            continue
    return versions


def bundle_key(name: str, checkpoint: Path, export_args: dict) -> str:
    parts = {"name": name, "sources": sources_digest(), "checkpoint": checkpoint_digest(checkpoint), "args": export_args, "stack": stack_versions()}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def cached_bundle(name: str, checkpoint: Path, export_args: dict, build: Callable[[Path], None]) -> Path:
    """The bundle `build(out_dir)` makes from `checkpoint` with `export_args`, built at most once per key."""
    target = CACHE_ROOT / f"{name}-{bundle_key(name, checkpoint, export_args)}"
    if (target / "manifest.json").exists():
        return target
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same bundle: wait for it
        if (target / "manifest.json").exists():
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=CACHE_ROOT))
        try:
            build(staging / "bundle")
            (staging / "bundle").rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
