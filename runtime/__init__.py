"""seaembed.runtime: a lean runtime for seaembed bundles (numpy + onnxruntime only)."""

from . import bench
from .backends import BackendUnavailable
from .embedder import Embedder
from .manifest import BundleError, Manifest, load_manifest
from .tokenizer import InputTooLongError, InvalidTextError, Tokenizer, TokenizerConfigError
from .version import __version__

__all__ = [
    "Embedder",
    "Tokenizer",
    "Manifest",
    "load_manifest",
    "BundleError",
    "BackendUnavailable",
    "InputTooLongError",
    "InvalidTextError",
    "TokenizerConfigError",
    "__version__",
    "bench",
]
