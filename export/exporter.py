"""checkpoint → ONNX graphs → parity gate → bundle (manifest.json + tokenizer.json + graphs)."""

from __future__ import annotations

import datetime as dt
import logging
import platform
from pathlib import Path

from seaembed.runtime.bundle import staged_bundle
from seaembed.runtime.integrity import sha256_file
from seaembed.runtime.manifest import FORMAT_VERSION, Artifact, Manifest, write_manifest
from seaembed.runtime.version import __version__

from . import parity
from .checkpoint import Checkpoint, load_checkpoint
from .compact_embeddings import compact_artifact, storage_details
from .keep import apply_keep, check_keep, planned_artifacts
from .onnx_graph import INPUT_NAMES, OPSET, build_encoder_graph, save_with_external_data
from .st_reference import check_reference_agrees, open_reference

PRECISIONS = ("fp32", "fp16", "int8", "bf16")  # bf16: OpenVINO on CPUs with BF16 hardware


def producer_versions() -> dict:
    import importlib.metadata as md

    out = {"seaembed": __version__, "python": platform.python_version()}
    for package in ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "openvino", "nncf"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            continue
    return out


def _io_spec(hidden: int) -> tuple[list[dict], list[dict]]:
    inputs = [{"name": n, "dtype": "int64", "shape": ["batch", "sequence"]} for n in INPUT_NAMES]
    outputs = [
        {"name": "sentence_embedding", "dtype": "float32", "shape": ["batch", hidden]},
        {"name": "pooled_embedding", "dtype": "float32", "shape": ["batch", hidden]},
        {"name": "token_embeddings", "dtype": "float32", "shape": ["batch", "sequence", hidden]},
    ]
    return inputs, outputs


log = logging.getLogger("seaembed.export")


def _has_cuda_provider() -> bool:
    import os

    import onnxruntime as ort

    if os.environ.get("SEAEMBED_EXPORT_CUDA_FUSED", "1") == "0":  # opt out of the CUDA-only graph
        return False
    return "CUDAExecutionProvider" in ort.get_available_providers()


def _files_sha(out_dir: Path, *names: str) -> dict[str, str]:
    return {name: sha256_file(out_dir / name) for name in names}


def _op_counts(path: Path) -> dict[str, int]:
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def export_onnx_artifact(checkpoint: Checkpoint, out_dir: Path, precision: str, reference, fused: bool = False, providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> Artifact:
    import onnx

    arch = checkpoint.architecture
    stem = f"model.{precision}{'.ort' if fused else ''}"
    graph_file, data_file = f"{stem}.onnx", f"{stem}.onnx.data"
    model = build_encoder_graph(arch, checkpoint.weights, checkpoint.normalize, precision, fused=fused)
    save_with_external_data(model, out_dir / graph_file, data_file)
    onnx.checker.check_model(str(out_dir / graph_file), full_check=not fused)
    name = f"onnx-{precision}{'-ort' if fused else ''}"
    storage = compact_artifact(out_dir / graph_file, name, providers)  # before the gate: it measures what ships
    stats = parity.enforce(parity.measure_onnx_parity(out_dir / graph_file, reference, providers), precision)
    details = {}
    if fused:
        counts = _op_counts(out_dir / graph_file)
        details = {
            "ort_only": True,
            "execution_provider": providers[0],
            "fusions": {op: counts.get(op, 0) for op in ("Attention", "SkipLayerNormalization", "BiasGelu")},
        }
    return _onnx_artifact(name, precision, out_dir, graph_file, arch.hidden, stats, dict(details, **storage_details(storage)))


def _onnx_artifact(name: str, precision: str, out_dir: Path, graph_file: str, hidden: int, stats: dict, details: dict, opset: int = OPSET) -> Artifact:
    """The manifest entry of a graph saved as graph_file + graph_file.data."""
    inputs, outputs = _io_spec(hidden)
    return Artifact(
        name=name,
        format="onnx",
        precision=precision,
        file=graph_file,
        sha256=_files_sha(out_dir, graph_file, graph_file + ".data"),
        inputs=inputs,
        outputs=outputs,
        opset=opset,
        parity={"reference": "sentence-transformers (PyTorch FP32, CPU)", **stats},
        details=details,
    )


def export_int8_artifacts(checkpoint: Checkpoint, out_dir: Path, fp32: Artifact, fused: Artifact, accuracy_reference, tokenizer, enforce: bool = True) -> list[Artifact]:
    from . import quantize
    from .accuracy import GATE_BATCH_SIZES, enforce_accuracy, session_embed, worst_case

    artifacts = []
    batches = list(quantize.calibration_batches(tokenizer))
    plans = (
        ("onnx-int8-dynamic", "model.int8.dynamic.onnx", {"method": "dynamic", "weights": "int8 symmetric per-channel, 7-bit range", "activations": "uint8 per call", "source": fused.name, "ort_only": True, "float_matmuls": "FFN down projection (GELU-output outliers; see quantize.dynamic_exclusions)"}),
        ("onnx-int8-qdq", "model.int8.qdq.onnx", {"method": "static QDQ", "weights": "int8 symmetric per output channel, fp16 scales", "activations": "int8 symmetric per-tensor, max |x| over the calibration set's real tokens", "calibration_texts": len(quantize.calibration_texts()), "layout": "onnx-fp16's (non-quantised matmuls FP16; LayerNorm, GELU, pooling FP32)", "float_matmuls": "FFN and attention score/context in FP16 (outlier activations; see export/qdq.py)", "tensorrt_ready": True}),
    )
    for name, graph_file, details in plans:
        data_file = graph_file + ".data"
        if details["method"] == "dynamic":
            excluded = quantize.dynamic_exclusions(out_dir / fused.file)
            quantize.quantize_dynamic_int8(out_dir / fused.file, out_dir / graph_file, data_file, nodes_to_exclude=excluded)
            details = dict(details, matmuls_kept_float=len(excluded))
        else:
            from .qdq import export_qdq_graph

            details = dict(details, **export_qdq_graph(checkpoint, out_dir, graph_file, batches))
        details = dict(details, **storage_details(compact_artifact(out_dir / graph_file, name)))
        measured = worst_case([accuracy_reference.measure(session_embed(out_dir / graph_file, tokenizer, batch_size=b)) for b in GATE_BATCH_SIZES])
        if details["method"] == "dynamic":
            details = dict(details, max_batch=max(GATE_BATCH_SIZES))  # the runtime never batches wider than the gate measured
        # Random-weight models (benchmarks) have no quality to keep: measured, recorded, not enforced.
        stats = enforce_accuracy(measured, name) if enforce else dict(measured, gate="not enforced", passed=None)
        counts = _op_counts(out_dir / graph_file)
        details = dict(details, quantized_ops={k: v for k, v in counts.items() if k in ("QAttention", "DynamicQuantizeMatMul", "MatMulInteger", "QuantizeLinear", "DequantizeLinear")})
        artifacts.append(_onnx_artifact(name, "int8", out_dir, graph_file, checkpoint.architecture.hidden, stats, details, opset=details.get("opset", OPSET)))
    return artifacts


def _check_runtime_tokenizer(tokenizer_file: Path, torch_model: parity.TorchReference, max_tokens: int) -> None:
    """The runtime tokenizer must load the file and give the reference's ids on the probes."""
    from seaembed.runtime.tokenizer import Tokenizer

    ours = Tokenizer.from_file(tokenizer_file, max_tokens=max_tokens)
    ref = torch_model.model.tokenizer
    for text in parity.probe_texts():
        expected = list(ref(text, truncation=True, max_length=max_tokens)["input_ids"])
        got = ours.encode(text)
        if got != expected:
            raise parity.ParityError(f"runtime tokenizer differs from the reference on {text!r}: {got[:12]}… vs {expected[:12]}…")


def export_bundle(
    model: str,
    out_dir: str | Path,
    precisions: tuple[str, ...] = ("fp32",),
    revision: str | None = None,
    model_name: str | None = None,
    overwrite: bool = False,
    accuracy_gates: bool = True,
    target: str = "onnx",
    engine_profile=None,
    engine_optimization_level: int = 3,
    timing_cache: Path | None = None,
    ort_fused: bool = True,
    engine_compatibility: dict | None = None,
    cuda_attention: tuple[str, ...] = (),
    keep: tuple[str, ...] | None = None,
) -> Manifest:
    """Export `model` (sentence-transformers directory or hub id) to a bundle in `out_dir`.

    keep: ship only these artifacts (everything is still built and gated; the rest is removed).
    """
    for precision in precisions:
        if precision not in PRECISIONS:
            raise ValueError(f"--precision {precision!r} is not available; choose from {', '.join(PRECISIONS)}")
    if target not in ("onnx", "tensorrt"):
        raise ValueError(f"--target {target!r} is not available; choose onnx or tensorrt")
    if target == "tensorrt" and not ({"fp16", "int8"} & set(precisions)):
        raise ValueError("--target tensorrt builds fp16 and/or int8 engines: add --precision fp16 and/or int8")
    if cuda_attention:
        from .attention_export import check_variants

        check_variants(cuda_attention)
    if keep is not None:
        from .openvino_export import unavailable_reason

        openvino = unavailable_reason() is None
        keep = check_keep(keep, planned_artifacts(precisions, target, ort_fused, _has_cuda_provider(), cuda_attention, openvino))
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} is not empty; pass --overwrite to replace the bundle in it")
    checkpoint = load_checkpoint(model, revision)
    torch_model = open_reference(checkpoint)
    check_reference_agrees(checkpoint, torch_model.model)
    reference = torch_model.run(parity.probe_batches())

    with staged_bundle(out_dir, ".seaembed-export-") as staging:
        tokenizer_file = staging / "tokenizer.json"
        tokenizer_file.write_text(torch_model.tokenizer_json(), encoding="utf-8")
        _check_runtime_tokenizer(tokenizer_file, torch_model, checkpoint.max_tokens)
        # FP32 is always built: it is the reference graph and the source of every other one.
        fp32 = export_onnx_artifact(checkpoint, staging, "fp32", reference)
        fused = export_onnx_artifact(checkpoint, staging, "fp32", reference, fused=True) if ort_fused or "int8" in precisions else None
        artifacts = [a for a in (fp32, fused) if a is not None]
        if "fp16" in precisions:
            artifacts.append(export_onnx_artifact(checkpoint, staging, "fp16", reference))
            if _has_cuda_provider():
                # ORT's fused fp16 kernels exist on CUDA only: built and gated where they can run.
                artifacts.append(export_onnx_artifact(checkpoint, staging, "fp16", reference, fused=True, providers=("CUDAExecutionProvider", "CPUExecutionProvider")))
            else:
                log.info("onnx-fp16-ort (the CUDA-fused fp16 graph) is built only where onnxruntime has CUDA: its parity is measured there")
        if cuda_attention:
            from .attention_export import export_attention_variants

            artifacts += export_attention_variants(checkpoint, staging, cuda_attention, reference)
        if {"int8", "bf16"} & set(precisions):
            from seaembed.runtime.tokenizer import Tokenizer

            from .accuracy import AccuracyReference
            from .openvino_export import export_openvino_artifacts

            tokenizer = Tokenizer.from_file(tokenizer_file, max_tokens=checkpoint.max_tokens, prompts=checkpoint.prompts)
            accuracy_reference = AccuracyReference(torch_model, checkpoint.prompts)
            if "int8" in precisions:
                artifacts += export_int8_artifacts(checkpoint, staging, fp32, fused, accuracy_reference, tokenizer, enforce=accuracy_gates)
            artifacts += export_openvino_artifacts(staging, fp32, checkpoint.architecture.hidden, precisions, reference, accuracy_reference, tokenizer, enforce=accuracy_gates)
        if target == "tensorrt":
            from .tensorrt_build import EngineProfile, build_engine

            sources = {"fp16": "onnx-fp16", "int8": "onnx-int8-qdq"}
            by_name = {a.name: a for a in artifacts}
            for precision in ("fp16", "int8"):
                if precision in precisions:
                    source = by_name[sources[precision]]
                    artifacts.append(
                        build_engine(staging / source.file, staging, precision, source.name, engine_profile or EngineProfile(), engine_optimization_level, timing_cache, **(engine_compatibility or {}))
                    )
        arch = checkpoint.architecture
        manifest = Manifest(
            format_version=FORMAT_VERSION,
            model_name=model_name or checkpoint.source,
            source={
                "model": checkpoint.source,
                "path": str(checkpoint.path),
                "revision": checkpoint.revision,
                "weights_file": checkpoint.weights_file.name,
                "weights_sha256": checkpoint.weights_sha256,
                "weights_sha256_covers": checkpoint.weights_sha256_covers,
                "files": checkpoint.source_files,
            },
            architecture=arch.to_json(),
            embedding_dim=arch.hidden,
            max_tokens=checkpoint.max_tokens,
            pooling="mean",
            normalize=checkpoint.normalize,
            prompts=checkpoint.prompts,
            default_prompt_name=checkpoint.default_prompt_name,
            tokenizer={"file": tokenizer_file.name, "sha256": sha256_file(tokenizer_file)},
            artifacts=artifacts,
            producer=producer_versions(),
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        )
        write_manifest(staging, manifest)
        manifest = apply_keep(staging, keep, manifest)
        for path in staging.iterdir():
            path.chmod(0o644)
    return manifest


def summarize(manifest: Manifest) -> str:
    lines = [f"bundle for {manifest.model_name}: dim {manifest.embedding_dim}, max tokens {manifest.max_tokens}"]
    for a in manifest.artifacts:
        p = a.parity
        if p.get("measured") is False or p.get("passed") is False:
            lines.append(f"  {a.name:17s} {'(not shipped)' if not a.sha256 else a.file:26s} {'not gated' if p.get('measured') is False else 'missed its gate'}: {p.get('reason', '')}")
            continue
        measured_on = f"{p['probes']} probes" if "probes" in p else f"{p.get('texts', 0)} held-out texts, recall@1 {p.get('recall_at_1', float('nan')):.4f}"
        lines.append(
            f"  {a.name:17s} {a.file:26s} max|diff| {p.get('max_abs_diff', float('nan')):.2e}  "
            f"min cos {p.get('min_cosine', float('nan')):.8f}  ({measured_on})"
        )
    return "\n".join(lines)


__all__ = ["export_bundle", "summarize", "producer_versions"]
