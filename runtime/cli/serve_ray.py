"""`seaembed serve --ray`: the Ray Serve flags and their checks; the work is runtime/server/ray_serve."""

from __future__ import annotations

import argparse
import os

from .support import parse_bool, usage_error


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return number


def add_flags(p: argparse.ArgumentParser) -> None:
    """--ray, --ray-address, --replicas | --autoscale; each also reads SEAEMBED_<FLAG> (a flag given wins)."""
    env = os.environ.get
    group = p.add_argument_group("Ray Serve (README: Scale out)")
    group.add_argument("--ray", type=parse_bool, nargs="?", const=True, default=parse_bool(env("SEAEMBED_RAY", "false")), help="serve through Ray Serve replicas behind its HTTP proxy on --host/--port, on a local cluster or --ray-address's (needs seaembed[ray]) [SEAEMBED_RAY]")
    group.add_argument("--ray-address", default=env("SEAEMBED_RAY_ADDRESS"), help="join this Ray cluster (e.g. auto, or ray://head:10001) instead of starting one here [SEAEMBED_RAY_ADDRESS]")
    sizes = group.add_mutually_exclusive_group()
    sizes.add_argument("--replicas", type=_positive, default=env("SEAEMBED_REPLICAS"), help="fixed replica count (default: one per GPU for cuda/tensorrt, else one per node) [SEAEMBED_REPLICAS]")
    sizes.add_argument("--autoscale", default=env("SEAEMBED_AUTOSCALE"), metavar="MIN:MAX", help="autoscale between MIN and MAX replicas on ongoing requests per replica (target 16; knobs: $SEAEMBED_RAY_AUTOSCALING) [SEAEMBED_AUTOSCALE]")


def run(args, settings) -> int:
    """The flags' combinations checked (exit 2 with the fix), then serve_ray until a signal."""
    from ..server import configure_logging
    from ..server.ray_serve.launch import SizingError, parse_autoscale, serve_ray

    if settings.workers != 1:
        raise usage_error("--workers is the single-host server's process count; with --ray, size with --replicas N or --autoscale MIN:MAX")
    if args.replicas is not None and args.autoscale is not None:  # both from the environment
        raise usage_error("--replicas and --autoscale exclude each other (SEAEMBED_REPLICAS, SEAEMBED_AUTOSCALE)")
    if args.autoscale is not None:
        try:
            parse_autoscale(args.autoscale)
        except ValueError as err:
            raise usage_error(str(err)) from None
    configure_logging(args.log_level)
    engine = {"backend": args.backend, "threads": args.threads, "precision": args.precision, "artifact": args.artifact}
    replicas = args.replicas  # argparse ran SEAEMBED_REPLICAS through _positive too (a string default is converted)
    try:
        return serve_ray(args.bundle, settings, engine, address=args.ray_address, replicas=replicas, autoscale=args.autoscale, log_level=args.log_level)
    except SizingError as err:
        raise usage_error(str(err)) from None
