"""The lean runtime never imports heavy libraries or the exporter."""

import json
import subprocess
import sys

FORBIDDEN = ("torch", "transformers", "tokenizers", "sentencepiece", "sentence_transformers", "seaembed.export")

SCRIPT = """
import json, sys
from seaembed.runtime import Embedder
embedder = Embedder.load(sys.argv[1])
vectors = embedder.encode(["hello", "xin chào"], prompt_name="query")
assert vectors.shape == (2, embedder.dim)
print(json.dumps(sorted(sys.modules)))
"""


def test_runtime_imports_only_lean_dependencies(tiny_bundle):
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_bundle)], capture_output=True, text=True, check=True)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    offending = [m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert offending == []
