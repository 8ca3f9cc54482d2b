"""Bulk embedding of datasets: `seaembed embed-dataset` and `embed_dataset()` (needs seaembed[bulk], or [ray]).

Importing this package is free: pyarrow, tqdm and Ray are imported by the modules that use them.
"""

from __future__ import annotations


def embed_dataset(*args, **kwargs) -> dict:
    """Embed a JSONL/CSV/TXT/Parquet dataset into Parquet parts; see seaembed.runtime.bulk.job.embed_dataset."""
    from .job import embed_dataset as run

    return run(*args, **kwargs)


__all__ = ["embed_dataset"]
