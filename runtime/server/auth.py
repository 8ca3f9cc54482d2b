"""API keys: `Authorization: Bearer KEY` on the work routes, compared in constant time.

Keys come from --api-key (repeatable, comma-separated), SEAEMBED_API_KEY (comma-separated) and
--api-key-file (one key per line, `#` comments); none given means no authentication. A key is
never logged or echoed: ServerSettings hides them from its repr, errors never include them.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from pathlib import Path


class ApiKeyError(ValueError):
    """A key or key file that cannot be used (empty, whitespace inside, unreadable file)."""


def parse_api_keys(values: Iterable[str] = (), files: Iterable[str | Path] = ()) -> tuple[str, ...]:
    """Keys from comma-separated values and key files, order kept, duplicates dropped."""
    keys: list[str] = []
    for value in values:
        keys.extend(part.strip() for part in value.split(",") if part.strip())
    for file in files:
        try:
            lines = Path(file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ApiKeyError(f"cannot read the API key file {file}: {getattr(err, 'strerror', None) or err}") from None
        found = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        if not found:
            raise ApiKeyError(f"the API key file {file} holds no key (one key per line; # starts a comment)")
        keys.extend(found)
    for number, key in enumerate(keys, 1):
        if any(c.isspace() for c in key) or not key.isprintable() or not key.isascii():
            raise ApiKeyError(f"API key #{number} holds whitespace or non-ASCII characters; a key is one printable ASCII word")
    return tuple(dict.fromkeys(keys))


def bearer_token(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The token of an `Authorization: Bearer TOKEN` header (scheme in any case), else None."""
    for name, value in headers:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and token.strip():
                return token.strip()
            return None
    return None


class ApiKeys:
    def __init__(self, keys: Sequence[str]):
        self._keys = [key.encode("ascii") for key in keys]

    def __repr__(self) -> str:
        return f"ApiKeys({len(self._keys)} keys)"

    def allows(self, headers: Sequence[tuple[bytes, bytes]]) -> bool:
        token = bearer_token(headers)
        if token is None:
            return False
        allowed = False
        for key in self._keys:  # every key is compared: the time taken does not say which one matched
            allowed |= hmac.compare_digest(token, key)
        return allowed
