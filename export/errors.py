"""The export's user-facing error for checkpoints (its own module so every reader can raise it)."""


class CheckpointError(ValueError):
    """The checkpoint is missing something or uses a feature seaembed does not support."""
