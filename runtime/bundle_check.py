"""`seaembed info --verify`: every file of a bundle against its sha256, and its tokenizer parsed."""

from __future__ import annotations

from pathlib import Path

from .integrity import verify_files
from .manifest import Manifest
from .tokenizer import Tokenizer


def verify_bundle(bundle_dir: str | Path, manifest: Manifest) -> int:
    """Hash every file the manifest lists (tokenizer, every artifact's files) against its sha256, then parse
    tokenizer.json; BundleError (or TokenizerConfigError) on the first problem. Returns the number of files checked.

    This is what `seaembed info --verify` runs; loading a bundle checks only the files it is about to use.
    Every file is hashed, even one this machine remembers as verified (a copy with its mtime restored would pass that).
    """
    bundle_dir = Path(bundle_dir)
    expected = {manifest.tokenizer["file"]: manifest.tokenizer["sha256"]}
    for artifact in manifest.artifacts:
        expected.update(artifact.sha256)
    verify_files(bundle_dir, expected, fresh=True)  # a deliberate check trusts no earlier one
    Tokenizer.from_file(bundle_dir / manifest.tokenizer["file"], max_tokens=manifest.max_tokens, prompts=manifest.prompts, sha256=manifest.tokenizer["sha256"])
    return len(expected)
