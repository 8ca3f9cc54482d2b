"""Why an embed-dataset run stopped, beyond bad input (inputs.py) and bad bundles (manifest.py)."""


class OutputConflictError(ValueError):
    """OUTPUT holds something this run must not overwrite or mix with: another run's parts, other files."""


class WorkerDiedError(RuntimeError):
    """A worker process or actor died mid-part; finished parts are kept and a rerun resumes."""
