"""The optional compiled tokenizer core; everything else about the package is in pyproject.toml.

`pip install .` / `pip install -e .` compile runtime/tokenizer/native into
seaembed.runtime.tokenizer._native. The extension is optional: where no C++17 compiler
exists the install still succeeds and the runtime uses its pure-Python tokenizer (it logs
that once). The sources' hash is compiled in, so an editable install whose C++ changed
since the last build is detected at import instead of silently running old code.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from setuptools import Extension, setup

NATIVE = Path("runtime") / "tokenizer" / "native"


def native_source_hash(folder: Path) -> str:
    """Same function as seaembed.runtime.tokenizer.native_loader.source_hash."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        if path.suffix in (".cc", ".h"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


if sys.platform == "win32":
    compile_args, link_args = ["/std:c++17", "/O2", "/EHsc"], []
else:
    compile_args = ["-std=c++17", "-O3", "-pthread", "-fvisibility=hidden", "-Wall"]
    link_args = ["-pthread"]

native = Extension(
    "seaembed.runtime.tokenizer._native",
    sources=sorted(str(p) for p in NATIVE.glob("*.cc")),
    depends=sorted(str(p) for p in NATIVE.glob("*.h")),
    include_dirs=[str(NATIVE)],
    language="c++",
    define_macros=[("SEATOK_SOURCE_HASH", f'"{native_source_hash(NATIVE)}"')],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    optional=True,  # no compiler: install anyway, the Python tokenizer takes over
)

setup(ext_modules=[native])
