"""seaembed.export: checkpoint → ONNX graphs (→ TensorRT engines) → a self-describing bundle."""

from .artifacts import producer_versions
from .checkpoint import DEFAULT_MODEL_ID, CheckpointError, load_checkpoint
from .exporter import export_bundle, summarize
from .parity import ParityError

__all__ = ["export_bundle", "summarize", "producer_versions", "load_checkpoint", "CheckpointError", "ParityError", "DEFAULT_MODEL_ID"]
