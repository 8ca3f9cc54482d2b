"""checkpoint → PyTorch reference → artifact builders (graphs, gates) → bundle (manifest.json + tokenizer.json + files).

Orchestration only: every artifact family is a builder in export/builders/ (REGISTRY, in build order).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from seaembed.runtime.bundle import staged_bundle
from seaembed.runtime.integrity import sha256_file
from seaembed.runtime.manifest import FORMAT_VERSION, Manifest, write_manifest

from . import builders, parity
from .artifacts import producer_versions
from .builders import BuildContext, EngineOptions, ExportSettings
from .checkpoint import load_checkpoint
from .keep import apply_keep, check_keep
from .st_reference import check_reference_agrees, open_reference

PRECISIONS = ("fp32", "fp16", "int8", "bf16")  # bf16: OpenVINO on CPUs with BF16 hardware


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
    settings = ExportSettings.probe(precisions, target, ort_fused, cuda_attention)
    builders.check_settings(settings)
    if keep is not None:
        keep = check_keep(keep, builders.planned_artifacts(settings))
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
        context = BuildContext(
            settings,
            checkpoint,
            staging,
            torch_model,
            reference,
            tokenizer_file,
            accuracy_gates=accuracy_gates,
            engines=EngineOptions(engine_profile, engine_optimization_level, timing_cache, engine_compatibility),
        )
        artifacts = builders.build_all(context)
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
