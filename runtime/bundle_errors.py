"""The one error a bad bundle raises (exit code 4 on the command line; the server does not start)."""

from __future__ import annotations


class BundleError(ValueError):
    """A bundle is missing, malformed, tampered with, or built for something else."""
