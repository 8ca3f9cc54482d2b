"""sha256 verification of bundle files, remembered across warm starts.

A file whose size, mtime and inode match a previous successful check is not re-hashed,
so a 2 GB graph is hashed once per machine, not on every start.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from .bundle_errors import BundleError


def cache_dir() -> Path:
    base = os.environ.get("SEAEMBED_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "seaembed"
    )
    return Path(base)


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _fingerprint(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


class VerifiedFiles:
    """Record of files already hashed on this machine."""

    def __init__(self, path: Path | None = None):
        self.path = path or cache_dir() / "verified-files.json"
        try:
            entries = json.loads(self.path.read_text())
        except (OSError, ValueError, RecursionError):  # a damaged cache only costs a re-hash
            entries = {}
        self._entries: dict = {k: v for k, v in entries.items() if isinstance(v, dict)} if isinstance(entries, dict) else {}

    def is_verified(self, path: Path, sha256: str) -> bool:
        entry = self._entries.get(str(path.resolve()))
        return bool(entry) and entry.get("sha256") == sha256 and entry.get("fingerprint") == _fingerprint(path)

    def remember(self, path: Path, sha256: str) -> None:
        self._entries[str(path.resolve())] = {"sha256": sha256, "fingerprint": _fingerprint(path)}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._entries))
            tmp.replace(self.path)
        except OSError:
            pass  # a read-only cache only costs a re-hash next time


def verify_files(bundle_dir: Path, expected: dict[str, str], record: VerifiedFiles | None = None, fresh: bool = False) -> None:
    """Raise BundleError unless every file exists with the expected sha256 (fresh: hash even files remembered as verified)."""
    record = record or VerifiedFiles()
    for name, sha in expected.items():
        if Path(name).name != name:
            raise BundleError(f"manifest names file {name!r}; bundle files must be plain names in the bundle directory")
        path = bundle_dir / name
        if not path.exists():
            raise BundleError(f"bundle file {path} listed in the manifest is missing")
        if not fresh and record.is_verified(path, sha):
            continue
        actual = sha256_file(path)
        if actual != sha:
            raise BundleError(
                f"bundle file {path} has sha256 {actual[:16]}…, the manifest expects {sha[:16]}…: "
                "the file was changed or belongs to another export; re-export the bundle"
            )
        record.remember(path, sha)

