"""The two halves of `make test-arm64` (tools/test_arm64.sh): `expect` on x86-64 writes what the aarch64
run must reproduce; `verify`, run under aarch64 emulation against the installed wheel, compares.

    python tools/arm64_check.py expect WORK --bundle B --tokenizer T   (x86: the repository's .venv)
    python tools/arm64_check.py verify WORK                            (aarch64: the wheel, no transformers)

WORK holds expected.json / expected.npz (ids, vectors, the compiled tokenizer form's sha256), a copy of
the real tokenizer.json with the x86-compiled tokenizer.seatok beside it, and arm64-report.json.
Every check raises on a mismatch; the report holds the numbers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

FUZZ_COUNT = 2_500
FP32_MAX_ABS_DIFF = 1e-5
# The INT8 gate of onnx-int8-dynamic (export/accuracy.py): against FP32, mean cosine >= 0.99, min >= 0.97.
INT8_MIN_MEAN_COSINE, INT8_MIN_COSINE = 0.99, 0.97


def _tests_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "tests"


def _retrieval(path: Path) -> tuple[list[str], list[str]]:
    pairs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [p["query"] for p in pairs], [p["passage"] for p in pairs]


def _embed(bundle: Path, precision: str, queries: list[str], passages: list[str]) -> tuple[np.ndarray, np.ndarray, str]:
    from seaembed.runtime import Embedder

    embedder = Embedder.load(bundle, precision=precision)
    name = embedder.backend.artifact.name
    return embedder.encode_query(queries, batch_size=16), embedder.encode_document(passages, batch_size=16), name


def _compiled_form(tokenizer_json: Path) -> bytes:
    from seaembed.runtime.integrity import sha256_file
    from seaembed.runtime.tokenizer import compiled_form
    from seaembed.runtime.tokenizer.native_engine import native_module
    from seaembed.runtime.tokenizer.spec import TokenizerSpec

    native, why = native_module()
    if native is None:
        raise SystemExit(f"the compiled tokenizer is not loaded: {why}")
    spec = TokenizerSpec.parse(json.loads(tokenizer_json.read_text(encoding="utf-8")))
    return compiled_form.compile_spec(native, spec, sha256_file(tokenizer_json))


def _native_tokenizer(tokenizer_json: Path):
    from seaembed.runtime.tokenizer import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_json, max_tokens=512, implementation="native")
    assert tokenizer.implementation == "native", tokenizer.implementation
    return tokenizer


def expect(work: Path, bundle: Path, tokenizer_json: Path) -> None:
    sys.path.insert(0, str(_tests_dir()))
    from conftest import read_corpus
    from tokenizer_fuzz import fuzz_texts

    work.mkdir(parents=True, exist_ok=True)
    corpus = read_corpus()
    texts = corpus + fuzz_texts(corpus, count=FUZZ_COUNT)
    ids = _native_tokenizer(tokenizer_json).encode_batch(texts)
    try:  # x86 has the reference: the expected ids are `tokenizers`' too
        from tokenizers import Tokenizer as Reference

        reference = Reference.from_file(str(tokenizer_json))
        reference.enable_truncation(512)
        assert [e.ids for e in reference.encode_batch(texts)] == ids, "x86: compiled core differs from tokenizers"
        checked_against = "tokenizers " + __import__("tokenizers").__version__
    except ImportError:
        checked_against = None
    form = _compiled_form(tokenizer_json)
    shipped = work / "x86-seatok"  # tokenizer.json with the x86-compiled form beside it, as a bundle ships it
    shipped.mkdir(exist_ok=True)
    shutil.copyfile(tokenizer_json, shipped / "tokenizer.json")
    (shipped / "tokenizer.seatok").write_bytes(form)

    queries, passages = _retrieval(_tests_dir() / "data" / "retrieval.jsonl")
    vectors, artifacts = {}, {}
    for precision in ("fp32", "int8"):
        q, p, artifacts[precision] = _embed(bundle, precision, queries, passages)
        vectors[f"{precision}_q"], vectors[f"{precision}_p"] = q, p
    from seaembed.runtime import Embedder

    vectors["server"] = Embedder.load(bundle).encode([queries[0]])[0]  # what /v1/embeddings answers for it
    np.savez(work / "expected.npz", **vectors)
    (work / "expected.json").write_text(
        json.dumps(
            {
                "machine": platform.machine(),
                "texts": texts,
                "corpus_lines": len(corpus),
                "ids": ids,
                "ids_checked_against": checked_against,
                "seatok_sha256": hashlib.sha256(form).hexdigest(),
                "queries": queries,
                "passages": passages,
                "artifacts": artifacts,
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    print(f"expected: {len(texts)} texts ({len(corpus)} corpus lines), form sha256 {hashlib.sha256(form).hexdigest()[:16]}, "
          f"artifacts {artifacts}, ids checked against {checked_against}")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def _recall_at_1(q: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(np.argmax(q @ p.T, axis=1) == np.arange(len(q))))


def _check_cpu(report: dict) -> None:
    from seaembed.runtime.cpus import cpu_isa, cpu_model, has_int8_dot, isa_line

    isa = cpu_isa()
    report["cpu"] = {"machine": platform.machine(), "model": cpu_model(), "isa": isa_line(isa)}
    assert platform.machine() == "aarch64", platform.machine()
    assert isa["asimd"] and not isa["avx2"], f"aarch64 features not read from HWCAP: {isa}"
    report["cpu"]["int8_dot"] = has_int8_dot(isa)


def _check_tokenizer(work: Path, expected: dict, tokenizer_json: Path, report: dict) -> None:
    from seaembed.runtime.tokenizer import Tokenizer

    texts, ids = expected["texts"], expected["ids"]
    started = time.perf_counter()
    got = _native_tokenizer(tokenizer_json).encode_batch(texts)
    seconds = time.perf_counter() - started
    mismatches = [i for i, (a, b) in enumerate(zip(got, ids, strict=True)) if a != b]
    form = _compiled_form(tokenizer_json)
    from_x86 = Tokenizer.from_file(work / "x86-seatok" / "tokenizer.json", max_tokens=512, implementation="native")
    x86_form_mismatches = sum(a != b for a, b in zip(from_x86.encode_batch(texts), ids, strict=True))
    report["tokenizer"] = {
        "texts": len(texts),
        "corpus_lines": expected["corpus_lines"],
        "fuzz_strings": len(texts) - expected["corpus_lines"],
        "tokens": sum(map(len, ids)),
        "mismatches": len(mismatches),
        "seconds_emulated": round(seconds, 2),
        "seatok_sha256_equal": hashlib.sha256(form).hexdigest() == expected["seatok_sha256"],
        "x86_seatok_mismatches": x86_form_mismatches,
    }
    assert not mismatches, f"{len(mismatches)} texts tokenize differently on aarch64, first {texts[mismatches[0]]!r}"
    assert report["tokenizer"]["seatok_sha256_equal"], "the compiled form differs between x86-64 and aarch64"
    assert x86_form_mismatches == 0, "the x86-compiled form gives other ids on aarch64"


def _check_vectors(bundle: Path, expected: dict, vectors: dict, report: dict) -> None:
    queries, passages = expected["queries"], expected["passages"]
    x86_fp32 = np.concatenate([vectors["fp32_q"], vectors["fp32_p"]])
    x86_int8 = np.concatenate([vectors["int8_q"], vectors["int8_p"]])
    for precision in ("fp32", "int8"):
        started = time.perf_counter()
        q, p, artifact = _embed(bundle, precision, queries, passages)
        seconds = time.perf_counter() - started
        arm = np.concatenate([q, p])
        assert artifact == expected["artifacts"][precision], (artifact, expected["artifacts"][precision])
        to_fp32 = _cosines(arm, x86_fp32)
        row = {
            "artifact": artifact,
            "texts": len(arm),
            "seconds_emulated": round(seconds, 1),
            "max_abs_diff_vs_x86_same_artifact": float(np.abs(arm - np.concatenate([vectors[f"{precision}_q"], vectors[f"{precision}_p"]])).max()),
            "min_cosine_vs_x86_same_artifact": float(_cosines(arm, x86_int8 if precision == "int8" else x86_fp32).min()),
            "mean_cosine_vs_x86_fp32": float(to_fp32.mean()),
            "min_cosine_vs_x86_fp32": float(to_fp32.min()),
            "recall_at_1": _recall_at_1(q, p),
            "x86_recall_at_1": _recall_at_1(vectors[f"{precision}_q"], vectors[f"{precision}_p"]),
        }
        report[precision] = row
        if precision == "fp32":
            assert row["max_abs_diff_vs_x86_same_artifact"] <= FP32_MAX_ABS_DIFF, row
        else:
            assert row["mean_cosine_vs_x86_fp32"] >= INT8_MIN_MEAN_COSINE and row["min_cosine_vs_x86_fp32"] >= INT8_MIN_COSINE, row
            assert row["recall_at_1"] >= report["fp32"]["x86_recall_at_1"] - 0.01 - 1e-9, row


def _check_server(bundle: Path, expected_vector: np.ndarray, text: str, report: dict) -> None:
    port = 18931
    command = [sys.executable, "-m", "seaembed.runtime.cli", "serve", str(bundle), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    started = time.perf_counter()
    try:
        deadline = time.monotonic() + 600  # loading and warming up e5-small under emulation
        while True:
            if server.poll() is not None:
                raise AssertionError(f"server exited {server.returncode}: {server.stdout.read().decode(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("server not ready within 600 s")
            time.sleep(2)
        ready = time.perf_counter() - started
        body = json.dumps({"input": [text], "model": "seaembed"}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/embeddings", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=300) as response:
            status, answer = response.status, json.loads(response.read())
        vector = np.asarray(answer["data"][0]["embedding"], dtype=np.float32)
        report["server"] = {
            "status": status,
            "ready_seconds_emulated": round(ready, 1),
            "dim": len(vector),
            "max_abs_diff_vs_x86": float(np.abs(vector - expected_vector).max()),
            "usage": answer.get("usage"),
        }
        assert status == 200 and report["server"]["max_abs_diff_vs_x86"] <= FP32_MAX_ABS_DIFF, report["server"]
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


CHECKS = ("cpu", "tokenizer", "vectors", "server")


def verify(work: Path, bundle: Path, checks: tuple[str, ...] = CHECKS) -> None:
    expected = json.loads((work / "expected.json").read_text(encoding="utf-8"))
    vectors = dict(np.load(work / "expected.npz"))
    import seaembed.runtime as runtime

    report: dict = {"seaembed": str(Path(runtime.__file__).parent)}
    if str(work) in report["seaembed"] or "seaembed-src" in report["seaembed"]:
        raise SystemExit(f"imported seaembed from {report['seaembed']}, not from the installed wheel")
    try:
        if "cpu" in checks:
            _check_cpu(report)
        if "tokenizer" in checks:
            _check_tokenizer(work, expected, work / "x86-seatok" / "tokenizer.json", report)
        if "vectors" in checks:
            _check_vectors(bundle, expected, vectors, report)
        if "server" in checks:
            _check_server(bundle, vectors["server"], expected["queries"][0], report)
        report["passed"] = checks == CHECKS
    finally:
        (work / ("arm64-report.json" if checks == CHECKS else "arm64-report.partial.json")).write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("expect", "verify"))
    parser.add_argument("work", type=Path)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--tokenizer", type=Path, help="expect: the real tokenizer.json")
    parser.add_argument("--only", action="append", choices=CHECKS, help="verify: run only these checks (default: all)")
    args = parser.parse_args()
    bundle = args.bundle or args.work / "e5s-bundle"
    if args.mode == "expect":
        expect(args.work, bundle, args.tokenizer)
    else:
        verify(args.work, bundle, tuple(c for c in CHECKS if c in args.only) if args.only else CHECKS)


if __name__ == "__main__":
    main()
