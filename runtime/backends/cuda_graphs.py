"""CUDA graphs for short queries on ONNX Runtime's CUDA EP (on by default; SEAEMBED_CUDA_GRAPHS=0 turns them off).

A captured CUDA graph replays a whole forward pass with one launch, which is what a short
query's latency is made of. ORT captures one graph per `gpu_graph_id`, and a graph replays
with the addresses it was captured with, so each shape bucket owns fixed device buffers
(I/O binding) and its own graph id. A batch is padded up to its bucket: extra columns are
masked out (the embedding of a row does not change), extra rows repeat row 0 and are dropped.
"""

from __future__ import annotations

import numpy as np

BUCKET_BATCHES = (1, 2, 4, 8)
BUCKET_LENGTHS = (16, 32, 64, 128)


def bucket_for(batch: int, seq: int) -> tuple[int, int] | None:
    """The smallest (batch, length) bucket holding this batch, or None above the largest."""
    b = next((x for x in BUCKET_BATCHES if x >= batch), None)
    s = next((x for x in BUCKET_LENGTHS if x >= seq), None)
    return (b, s) if b is not None and s is not None else None


def pad_to_bucket(input_ids: np.ndarray, attention_mask: np.ndarray, bucket: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad columns (masked out) and append copies of row 0 up to the bucket's shape."""
    batch, seq = input_ids.shape
    rows, cols = bucket
    ids = np.zeros((rows, cols), dtype=np.int64)
    mask = np.zeros((rows, cols), dtype=np.int64)
    ids[:batch, :seq], mask[:batch, :seq] = input_ids, attention_mask
    ids[batch:, :seq], mask[batch:, :seq] = input_ids[0], attention_mask[0]
    return ids, mask


class CudaGraphRunner:
    """One ORT session with enable_cuda_graph; per bucket: bound device buffers and a graph id."""

    def __init__(self, graph_path: str, hidden: int, session_options, device_id: int = 0, artifact: str | None = None):
        import onnxruntime as ort

        self.artifact = artifact or graph_path  # what the backend reports as captured
        self._ort = ort
        provider = ("CUDAExecutionProvider", {"device_id": device_id, "enable_cuda_graph": "1"})
        # raises if any node would run on the CPU: ORT cannot capture such a graph
        self.session = ort.InferenceSession(graph_path, session_options, providers=[provider])
        self.hidden = hidden
        self.device_id = device_id
        self._outputs = [o.name for o in self.session.get_outputs()]
        self._buckets: dict[tuple[int, int], tuple] = {}

    def covers(self, batch: int, seq: int) -> bool:
        return bucket_for(batch, seq) is not None

    def _bucket(self, bucket: tuple[int, int]):
        if bucket not in self._buckets:
            ort, (rows, cols) = self._ort, bucket
            values = {
                "input_ids": ort.OrtValue.ortvalue_from_shape_and_type((rows, cols), np.int64, "cuda", self.device_id),
                "attention_mask": ort.OrtValue.ortvalue_from_shape_and_type((rows, cols), np.int64, "cuda", self.device_id),
            }
            for name in self._outputs:
                shape = (rows, cols, self.hidden) if name == "token_embeddings" else (rows, self.hidden)
                values[name] = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cuda", self.device_id)
            binding = self.session.io_binding()
            for name in ("input_ids", "attention_mask"):
                binding.bind_ortvalue_input(name, values[name])
            for name in self._outputs:
                binding.bind_ortvalue_output(name, values[name])
            options = ort.RunOptions()
            options.add_run_config_entry("gpu_graph_id", str(len(self._buckets) + 1))
            self._buckets[bucket] = (values, binding, options)
        return self._buckets[bucket]

    def embed(self, input_ids: np.ndarray, attention_mask: np.ndarray, output: str) -> np.ndarray:
        batch, seq = input_ids.shape
        bucket = bucket_for(batch, seq)
        if bucket is None:
            raise ValueError(f"batch {batch}×{seq} is above the largest CUDA graph bucket {BUCKET_BATCHES[-1]}×{BUCKET_LENGTHS[-1]}")
        values, binding, options = self._bucket(bucket)
        ids, mask = pad_to_bucket(input_ids, attention_mask, bucket)
        values["input_ids"].update_inplace(ids)
        values["attention_mask"].update_inplace(mask)
        self.session.run_with_iobinding(binding, options)
        return values[output].numpy()[:batch].astype(np.float32, copy=True)
