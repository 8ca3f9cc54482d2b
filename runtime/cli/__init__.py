"""The command-line layer: argument parsing, exit codes, input-file readers, progress output.

It sits above the library (tokenizer, backends, embedder, manifest, bundle), which never imports it:
`import seaembed.runtime` loads no argparse code (tests/test_layout.py).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """The `seaembed` console script."""
    from .commands import main as run

    return run(argv)
