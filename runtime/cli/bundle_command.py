"""`seaembed bundle prune`: the command-line face of runtime.bundle.prune_bundle."""

from __future__ import annotations

import argparse

from ..bundle import KeepError, describe, prune_bundle
from .support import usage_error


def cmd_prune(args) -> int:
    try:
        result = prune_bundle(args.bundle, args.keep, out_dir=args.out, verify=args.verify, overwrite=args.overwrite)
    except KeepError as err:
        raise usage_error(str(err)) from err
    print(describe(result))
    return 0


def register_cli(sub) -> None:
    bundle = sub.add_parser("bundle", help="manage a bundle's contents (prune to a deployable subset)")
    actions = bundle.add_subparsers(dest="bundle_command", required=True)
    p = actions.add_parser(
        "prune",
        help="keep only the named artifacts (plus tokenizer and manifest): what an edge device or container ships",
        description="Remove every artifact not named by --keep; the manifest is rewritten atomically and remembers "
        "what was removed, so asking for it later says how to rebuild it.",
    )
    p.add_argument("bundle")
    p.add_argument("--keep", action="append", required=True, help="artifact names to keep (see `seaembed info`); repeat or comma-separate")
    p.add_argument("--out", default=None, help="write the pruned bundle here (hard links or copies) and leave BUNDLE as it is")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="skip the sha256 check of the kept files (done by default)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="print the traceback of an error [SEAEMBED_DEBUG]")
    p.intermixed = True
    p.set_defaults(func=cmd_prune)
