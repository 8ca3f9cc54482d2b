"""Deployable subsets of a bundle: keep the named artifacts (and what they need), drop the rest.

A device that only runs the INT8 graph should not carry the FP32 graphs it was built from.
Pruning keeps the tokenizer, the manifest (rewritten atomically, with the kept artifacts'
parity/accuracy records and sha256s) and each kept artifact's files; the manifest records what
was removed, so asking for it later names what the bundle still holds and how to rebuild it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .integrity import verify_files
from .manifest import MANIFEST_FILE, Artifact, BundleError, Manifest, load_manifest, write_manifest


@dataclass(frozen=True)
class PruneResult:
    bundle_dir: Path
    kept: list[str]
    removed: list[str]
    removed_files: list[str]
    bytes_before: int
    bytes_after: int


def parse_names(values: str | Sequence[str]) -> list[str]:
    """'a,b' or ['a', 'b,c'] → ['a', 'b', 'c'], order kept, duplicates dropped."""
    parts = [values] if isinstance(values, str) else list(values)
    names = [n.strip() for part in parts for n in part.split(",") if n.strip()]
    return list(dict.fromkeys(names))


def rebuild_command(manifest: Manifest, name: str, precision: str | None = None, format: str | None = None) -> str:
    """The export command that builds artifact `name` again from the bundle's recorded source."""
    source = manifest.source.get("model") or "MODEL"
    revision = manifest.source.get("revision")
    target = " --target tensorrt" if format == "tensorrt" or name.startswith("tensorrt-") else ""
    return (
        f"seaembed export {source}{f' --revision {revision}' if revision else ''} --precision {precision or 'fp32'}"
        f"{target} --keep {name} --out DIR"
    )


def pruned_record(manifest: Manifest, name: str) -> dict | None:
    return next((p for p in manifest.pruned if p.get("name") == name), None)


def missing_artifact_hint(manifest: Manifest, wanted: Sequence[str], precision: str | None = None) -> str:
    """Why the bundle lacks `wanted` (pruned, or never built) and the command that rebuilds it."""
    for name in wanted:
        record = pruned_record(manifest, name)
        if record:
            return (
                f"{name} was pruned from this bundle on {record.get('when', '?')}; rebuild it with "
                f"`{rebuild_command(manifest, name, record.get('precision'), record.get('format'))}`"
            )
    return f"re-export with `{rebuild_command(manifest, wanted[0] if wanted else 'ARTIFACT', precision)}`"


def _bundle_bytes(bundle_dir: Path, files: Sequence[str]) -> int:
    return sum((bundle_dir / f).stat().st_size for f in files if (bundle_dir / f).exists())


class KeepError(BundleError):
    """--keep names no artifact, or one the bundle does not have: a usage error, not a broken bundle."""


def _select(manifest: Manifest, keep: Sequence[str], where: Path) -> tuple[list[Artifact], list[Artifact]]:
    have = [a.name for a in manifest.artifacts]
    if not keep:
        raise KeepError(f"--keep names no artifact; name one or more of: {', '.join(have)}")
    for name in keep:
        if name not in have:
            why = missing_artifact_hint(manifest, [name]) if pruned_record(manifest, name) else f"it has: {', '.join(have)}"
            raise KeepError(f"--keep {name}: bundle {where} has no artifact named {name!r} ({why})")
    kept = [a for a in manifest.artifacts if a.name in keep]
    return kept, [a for a in manifest.artifacts if a.name not in keep]


def _pruned_manifest(manifest: Manifest, kept: list[Artifact], dropped: list[Artifact]) -> Manifest:
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    records = [
        {"name": a.name, "format": a.format, "precision": a.precision, "file": a.file, "when": when}
        for a in dropped
    ]
    earlier = [p for p in manifest.pruned if p.get("name") not in {a.name for a in kept}]
    return dataclasses.replace(manifest, artifacts=kept, pruned=earlier + records)


def prune_bundle(
    bundle_dir: str | Path,
    keep: str | Sequence[str],
    out_dir: str | Path | None = None,
    verify: bool = True,
    overwrite: bool = False,
) -> PruneResult:
    """Keep only the artifacts named in `keep`.

    In place (out_dir None): the manifest is replaced atomically first, then the dropped
    artifacts' files are deleted, so an interruption leaves stray files, never a manifest that
    lists missing ones. With out_dir: a new bundle holding only what is kept (hard links where the
    filesystem allows, copies otherwise), moved into place once complete.
    """
    bundle_dir = Path(bundle_dir)
    manifest = load_manifest(bundle_dir)
    kept, dropped = _select(manifest, parse_names(keep), bundle_dir)
    needed = [manifest.tokenizer["file"], *dict.fromkeys(f for a in kept for f in a.files)]
    if verify:  # never produce a "valid" bundle from damaged files
        verify_files(bundle_dir, {manifest.tokenizer["file"]: manifest.tokenizer["sha256"]})
        for artifact in kept:
            verify_files(bundle_dir, artifact.sha256)
    removed_files = [f for f in dict.fromkeys(f for a in dropped for f in a.files) if f not in needed]
    before = _bundle_bytes(bundle_dir, [MANIFEST_FILE, *needed, *removed_files])
    new_manifest = _pruned_manifest(manifest, kept, dropped)
    if out_dir is None:
        write_manifest(bundle_dir, new_manifest)
        for name in removed_files:
            (bundle_dir / name).unlink(missing_ok=True)
        target = bundle_dir
    else:
        target = _write_copy(bundle_dir, Path(out_dir), needed, new_manifest, overwrite)
    return PruneResult(
        bundle_dir=target,
        kept=[a.name for a in kept],
        removed=[a.name for a in dropped],
        removed_files=removed_files,
        bytes_before=before,
        bytes_after=_bundle_bytes(target, [MANIFEST_FILE, *needed]),
    )


def _write_copy(src: Path, out_dir: Path, files: list[str], manifest: Manifest, overwrite: bool) -> Path:
    if out_dir.resolve() == src.resolve():
        raise BundleError(f"--out {out_dir} is the bundle itself; leave --out away to prune in place")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise BundleError(f"{out_dir} is not empty; pass --overwrite to replace it, or choose another --out")
    with staged_bundle(out_dir, ".seaembed-prune-") as staging:
        for name in files:
            try:
                os.link(src / name, staging / name)  # same filesystem: no second copy of a 600 MB graph
            except OSError:
                shutil.copy2(src / name, staging / name)
        write_manifest(staging, manifest)
    return out_dir


@contextmanager
def staged_bundle(out_dir: Path, prefix: str) -> Iterator[Path]:
    """A hidden sibling directory to build a bundle in; it replaces out_dir only if the block completes,
    so a failed export or prune never leaves half a bundle."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=out_dir.parent))
    try:
        yield staging
        staging.chmod(0o755)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def describe(result: PruneResult) -> str:
    gb = 1e9
    return (
        f"kept {', '.join(result.kept)}; removed {', '.join(result.removed) or 'nothing'} "
        f"({len(result.removed_files)} files); {result.bundle_dir}: "
        f"{result.bytes_before / gb:.3f} GB → {result.bytes_after / gb:.3f} GB"
    )
