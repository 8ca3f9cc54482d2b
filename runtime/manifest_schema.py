"""The manifest's schema, checked on load: types, ranges and paths, one BundleError naming the field.

A bundle may come from anywhere, so nothing in manifest.json is trusted before it is checked:
every number is an integer in the range the architecture allows (dim ≤ hidden, max tokens ≤ the
positions the model has), every file is a plain name in the bundle directory that stays inside it
after symlinks are followed, and every file an artifact reads is one it lists with a sha256. A
failure names the field (`artifacts[1].file`), the value and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath, PureWindowsPath

from .bundle_errors import BundleError

SHA256 = re.compile(r"[0-9a-f]{64}")
ARTIFACT_FORMATS = ("onnx", "tensorrt", "openvino")
# Far above any encoder this project exports, far below what would make allocation itself the failure.
LIMITS = {"layers": 1024, "hidden": 65536, "heads": 1024, "ffn": 1 << 20, "vocab_size": 1 << 24, "max_position_embeddings": 1 << 20}
# tokenizer.json is parsed whole into memory: XLM-R's 250k-piece vocabulary is 17 MB.
MAX_TOKENIZER_BYTES = 256 * 1024 * 1024


def _fail(where: str, field: str, problem: str) -> BundleError:
    return BundleError(f"{where}: `{field}` {problem}; re-export the bundle or restore its manifest.json")


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _typed(data: dict, key: str, kind, where: str, prefix: str = "", optional: bool = False):
    field = f"{prefix}{key}"
    if key not in data:
        if optional:
            return None
        raise _fail(where, field, "is missing")
    value = data[key]
    if value is None and optional:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join("an object" if k is dict else "a list" if k is list else f"a {k.__name__}" for k in kinds)
        raise _fail(where, field, f"must be {names}, got {_shown(value)}")
    return value


def _int_in(data: dict, key: str, low: int, high: int, where: str, prefix: str = "") -> int:
    value = _typed(data, key, int, where, prefix)
    if not low <= value <= high:
        raise _fail(where, f"{prefix}{key}", f"is {value}; it must be from {low} to {high}")
    return value


def plain_file_name(value, field: str, where: str) -> str:
    """A file name in the bundle directory itself: no directory part, not absolute, no `..`, no drive."""
    if not isinstance(value, str) or not value:
        raise _fail(where, field, f"must be a file name, got {_shown(value)}")
    if "\x00" in value or "\\" in value or PureWindowsPath(value).drive or PurePosixPath(value).is_absolute():
        raise _fail(where, field, f"is {_shown(value)}; bundle files are plain names inside the bundle (no absolute path)")
    if PurePosixPath(value).name != value or value in (".", ".."):
        raise _fail(where, field, f"is {_shown(value)}; bundle files are plain names inside the bundle directory (no `/`, no `..`)")
    return value


def check_inside(bundle_dir: Path, name: str, field: str, where: str) -> None:
    """A listed file (or symlink) must resolve to a file inside the bundle directory."""
    path = bundle_dir / name
    if not (path.exists() or path.is_symlink()):
        return  # a missing file is verify_files' message (or an artifact shipped without files)
    root = bundle_dir.resolve()
    target = path.resolve()
    if target.parent != root and root not in target.parents:
        raise _fail(where, field, f"{name!r} is a link to {target}, outside the bundle {root}")
    if not target.is_file():
        raise _fail(where, field, f"{name!r} is not a regular file")


def _check_architecture(data: dict, where: str) -> dict:
    arch = _typed(data, "architecture", dict, where)
    _typed(arch, "family", str, where, "architecture.")
    for key, high in LIMITS.items():  # 0 layers: the overhead benchmarks' embedding-only bundle
        _int_in(arch, key, 0 if key == "layers" else 1, high, where, "architecture.")
    _int_in(arch, "position_offset", 0, arch["max_position_embeddings"] - 1, where, "architecture.")
    if arch["hidden"] % arch["heads"]:
        raise _fail(where, "architecture.heads", f"is {arch['heads']}, which does not divide hidden {arch['hidden']}")
    return arch


def _check_artifact(artifact, i: int, where: str) -> None:
    prefix = f"artifacts[{i}]."
    if not isinstance(artifact, dict):
        raise _fail(where, f"artifacts[{i}]", f"must be an object, got {_shown(artifact)}")
    _typed(artifact, "name", str, where, prefix)
    fmt = _typed(artifact, "format", str, where, prefix)
    if fmt not in ARTIFACT_FORMATS:
        raise _fail(where, f"{prefix}format", f"is {fmt!r}; this runtime reads {', '.join(ARTIFACT_FORMATS)}")
    _typed(artifact, "precision", str, where, prefix)
    file = plain_file_name(artifact.get("file"), f"{prefix}file", where)
    files = _typed(artifact, "sha256", dict, where, prefix)
    for name, digest in files.items():
        plain_file_name(name, f"{prefix}sha256 key {name!r}", where)
        if not isinstance(digest, str) or not SHA256.fullmatch(digest):
            raise _fail(where, f"{prefix}sha256[{name!r}]", f"must be 64 lowercase hex digits, got {_shown(digest)}")
    if files and file not in files:
        raise _fail(where, f"{prefix}file", f"{file!r} has no sha256 in {prefix}sha256: every file an artifact reads is listed and checked")
    for key, kind in (("inputs", list), ("outputs", list), ("parity", dict), ("details", dict)):
        _typed(artifact, key, kind, where, prefix, optional=True)
    opset = _typed(artifact, "opset", int, where, prefix, optional=True)
    if opset is not None and not 1 <= opset <= 1000:
        raise _fail(where, f"{prefix}opset", f"is {opset}; it must be from 1 to 1000")


def check_manifest(data, where: str, bundle_dir: Path | None = None) -> None:
    """Raise BundleError naming the first field that is missing, of the wrong type, out of range,
    or a path leaving the bundle. With bundle_dir, listed files that exist are resolved too."""
    if not isinstance(data, dict):
        raise BundleError(f"{where} must hold a JSON object, got {type(data).__name__}; is it a seaembed bundle manifest?")
    _typed(data, "model_name", str, where)
    _typed(data, "source", dict, where)
    arch = _check_architecture(data, where)
    _int_in(data, "embedding_dim", 1, arch["hidden"], where)
    _int_in(data, "max_tokens", 1, arch["max_position_embeddings"] - arch["position_offset"], where)
    _typed(data, "pooling", str, where)
    _typed(data, "normalize", bool, where)
    prompts = _typed(data, "prompts", dict, where)
    for name, text in prompts.items():
        if not isinstance(text, str):
            raise _fail(where, f"prompts[{name!r}]", f"must be a string, got {_shown(text)}")
    default = _typed(data, "default_prompt_name", str, where, optional=True)
    if default is not None and default not in prompts:
        raise _fail(where, "default_prompt_name", f"is {default!r}, which `prompts` does not define")
    tokenizer = _typed(data, "tokenizer", dict, where)
    plain_file_name(tokenizer.get("file"), "tokenizer.file", where)
    digest = _typed(tokenizer, "sha256", str, where, "tokenizer.")
    if not SHA256.fullmatch(digest):
        raise _fail(where, "tokenizer.sha256", f"must be 64 lowercase hex digits, got {_shown(digest)}")
    artifacts = _typed(data, "artifacts", list, where)
    for i, artifact in enumerate(artifacts):
        _check_artifact(artifact, i, where)
    _typed(data, "producer", dict, where)
    _typed(data, "created", str, where)
    pruned = _typed(data, "pruned", list, where, optional=True) or []
    for i, record in enumerate(pruned):
        if not isinstance(record, dict):
            raise _fail(where, f"pruned[{i}]", f"must be an object, got {_shown(record)}")
    if bundle_dir is not None:
        check_files(data, bundle_dir, where)


def check_files(data: dict, bundle_dir: Path, where: str) -> None:
    """Every listed file stays inside the bundle; tokenizer.json is of a size the parser can hold;
    ONNX graphs read external data only from files their artifact lists."""
    from .integrity import verify_files
    from .onnx_external_data import external_data_locations

    check_inside(bundle_dir, data["tokenizer"]["file"], "tokenizer.file", where)
    tokenizer = bundle_dir / data["tokenizer"]["file"]
    if tokenizer.is_file() and tokenizer.stat().st_size > MAX_TOKENIZER_BYTES:
        raise _fail(where, "tokenizer.file", f"{tokenizer.name} is {tokenizer.stat().st_size:,} bytes; a tokenizer.json over {MAX_TOKENIZER_BYTES:,} is refused")
    for i, artifact in enumerate(data["artifacts"]):
        for name in dict.fromkeys([artifact["file"], *artifact["sha256"]]):
            check_inside(bundle_dir, name, f"artifacts[{i}].file" if name == artifact["file"] else f"artifacts[{i}].sha256 key {name!r}", where)
        graph = bundle_dir / artifact["file"]
        if artifact["format"] != "onnx" or not graph.is_file():
            continue
        try:
            locations = external_data_locations(graph)
        except ValueError as err:
            if artifact["file"] in artifact["sha256"]:  # a changed file: the sha256 message says so and what to do
                verify_files(bundle_dir, {artifact["file"]: artifact["sha256"][artifact["file"]]})
            raise _fail(where, f"artifacts[{i}].file", f"{artifact['file']} is not a readable ONNX graph ({err})") from None
        for location in locations:
            field = f"artifacts[{i}] external data of {artifact['file']}"
            plain_file_name(location, field, where)
            if location not in artifact["sha256"]:
                raise _fail(where, field, f"names {location!r}, which the artifact does not list with a sha256")
