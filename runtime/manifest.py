"""manifest.json: the one record of what a bundle holds, written by export, validated at load.

Every other piece (tokenizer limits, backends, server /info) reads it instead of
re-deriving anything.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .bundle_errors import BundleError
from .json_limits import JsonLimitError, read_json_file
from .manifest_schema import check_manifest

FORMAT = "seaembed-bundle"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
# Manifest fields added after format version 1 was fixed: absent from older manifests, ignored by older readers.
_OPTIONAL = ("pruned",)
# A manifest is a few kilobytes (tens with many artifacts); anything near this is not one.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Artifact:
    name: str  # e.g. "onnx-fp32"
    format: str  # "onnx" or "tensorrt"
    precision: str  # "fp32", "fp16", "int8"
    file: str
    sha256: dict[str, str]  # every file the artifact needs → its sha256
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)
    opset: int | None = None
    parity: dict = field(default_factory=dict)
    # backend-specific facts: {"ort_only": true}, TensorRT version, compute capability, …
    details: dict = field(default_factory=dict)

    @property
    def files(self) -> list[str]:
        return list(self.sha256)


@dataclass(frozen=True)
class Manifest:
    format_version: int
    model_name: str
    source: dict
    architecture: dict
    embedding_dim: int
    max_tokens: int
    pooling: str
    normalize: bool
    prompts: dict[str, str]
    default_prompt_name: str | None
    tokenizer: dict
    artifacts: list[Artifact]
    producer: dict
    created: str
    # artifacts removed by `seaembed bundle prune` / `export --keep`: name, format, precision, file, when
    pruned: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        out = asdict(self)
        out = {"format": FORMAT, **out}
        return out

    @classmethod
    def from_json(cls, data: dict, where: str = MANIFEST_FILE, bundle_dir: Path | None = None) -> Manifest:
        """Check the manifest against its schema (manifest_schema.py; with bundle_dir its files too) and build it."""
        if not isinstance(data, dict):
            raise BundleError(f"{where} must hold a JSON object, got {type(data).__name__}; is it a seaembed bundle manifest?")
        if data.get("format") != FORMAT:
            raise BundleError(f"{where} is not a seaembed bundle manifest (format={data.get('format')!r})")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise BundleError(
                f"{where} has bundle format_version {version}; this seaembed reads version {FORMAT_VERSION}. "
                "Re-export the bundle with this seaembed version, or install the seaembed that wrote it."
            )
        check_manifest(data, where, bundle_dir)
        try:
            artifacts = [Artifact(**a) for a in data["artifacts"]]
            fields = {k: data[k] for k in cls.__dataclass_fields__ if k not in ("artifacts", *_OPTIONAL)}
            fields.update({k: data[k] for k in _OPTIONAL if k in data})
        except (KeyError, TypeError) as err:
            raise BundleError(f"{where} is malformed: {err}") from None
        if not artifacts:
            raise BundleError(f"{where} lists no artifacts")
        if fields["pooling"] != "mean":
            raise BundleError(f"{where} declares pooling {fields['pooling']!r}; this runtime implements 'mean'")
        return cls(artifacts=artifacts, **fields)

    def find(self, format: str | None = None, precision: str | None = None) -> list[Artifact]:
        return [
            a
            for a in self.artifacts
            if (format is None or a.format == format) and (precision is None or a.precision == precision)
        ]


def load_manifest(bundle_dir: str | Path) -> Manifest:
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST_FILE
    if not bundle_dir.is_dir():
        raise BundleError(f"bundle directory {bundle_dir} does not exist; create one with `seaembed export`")
    if not path.exists():
        raise BundleError(f"{bundle_dir} has no {MANIFEST_FILE}; is it a seaembed bundle? (`seaembed export` writes one)")
    try:
        data = read_json_file(path, MAX_MANIFEST_BYTES)
    except JsonLimitError as err:
        raise BundleError(f"{path} {err}; is it a seaembed bundle manifest?") from None
    return Manifest.from_json(data, str(path), bundle_dir)


def write_manifest(bundle_dir: str | Path, manifest: Manifest) -> Path:
    """Write manifest.json atomically: a reader sees the old manifest or the new one, never half of one."""
    path = Path(bundle_dir) / MANIFEST_FILE
    tmp = path.with_name(f".{MANIFEST_FILE}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            tmp.chmod(path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
