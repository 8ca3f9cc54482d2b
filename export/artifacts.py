"""What every builder writes into the manifest: I/O spec, file hashes, op counts, the ONNX artifact record.

The lowest layer of the artifact builders (export/builders/): it knows the manifest's Artifact
record and the files on disk, nothing about how a graph is made or gated.
"""

from __future__ import annotations

import platform
from pathlib import Path

from seaembed.runtime.integrity import sha256_file
from seaembed.runtime.manifest import Artifact
from seaembed.runtime.version import __version__

from .onnx_graph import INPUT_NAMES, OPSET

# Every gate in the bundle is measured against this.
PARITY_REFERENCE = "sentence-transformers (PyTorch FP32, CPU)"


def io_spec(hidden: int) -> tuple[list[dict], list[dict]]:
    """The manifest's inputs and outputs of an encoder graph of width `hidden`."""
    inputs = [{"name": n, "dtype": "int64", "shape": ["batch", "sequence"]} for n in INPUT_NAMES]
    outputs = [
        {"name": "sentence_embedding", "dtype": "float32", "shape": ["batch", hidden]},
        {"name": "pooled_embedding", "dtype": "float32", "shape": ["batch", hidden]},
        {"name": "token_embeddings", "dtype": "float32", "shape": ["batch", "sequence", hidden]},
    ]
    return inputs, outputs


def files_sha(out_dir: Path, *names: str) -> dict[str, str]:
    return {name: sha256_file(out_dir / name) for name in names}


def op_counts(path: Path) -> dict[str, int]:
    """Node count per op type of an ONNX graph (its weights are not read)."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def onnx_artifact(name: str, precision: str, out_dir: Path, graph_file: str, hidden: int, stats: dict, details: dict, opset: int = OPSET) -> Artifact:
    """The manifest entry of a graph saved as graph_file + graph_file.data."""
    inputs, outputs = io_spec(hidden)
    return Artifact(
        name=name,
        format="onnx",
        precision=precision,
        file=graph_file,
        sha256=files_sha(out_dir, graph_file, graph_file + ".data"),
        inputs=inputs,
        outputs=outputs,
        opset=opset,
        parity={"reference": PARITY_REFERENCE, **stats},
        details=details,
    )


def producer_versions() -> dict:
    """The manifest's producer: seaembed, Python and every export library installed here."""
    import importlib.metadata as md

    out = {"seaembed": __version__, "python": platform.python_version()}
    for package in ("torch", "transformers", "sentence-transformers", "onnx", "onnxruntime", "onnxruntime-gpu", "tensorrt", "openvino", "nncf"):
        try:
            out[package] = md.version(package)
        except md.PackageNotFoundError:
            continue
    return out
