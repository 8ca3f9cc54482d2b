"""`seaembed serve` flags for Ray Serve (registered by runtime/cli.py, read by launch.serve_ray_command)."""

from __future__ import annotations

import argparse


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value!r}")
    return number


def add_ray_serve_flags(p: argparse.ArgumentParser, env, boolean) -> None:
    group = p.add_argument_group("Ray Serve (README: Scale out)")
    group.add_argument("--ray", type=boolean, nargs="?", const=True, default=boolean(env("RAY", "false")), help="serve through Ray Serve replicas behind its HTTP proxy on --host/--port, on a local cluster or --ray-address's (needs seaembed[ray]) [SEAEMBED_RAY]")
    group.add_argument("--ray-address", default=env("RAY_ADDRESS"), help="join this Ray cluster (e.g. auto, or ray://head:10001) instead of starting one here [SEAEMBED_RAY_ADDRESS]")
    sizes = group.add_mutually_exclusive_group()
    sizes.add_argument("--replicas", type=_positive, default=env("REPLICAS"), help="fixed replica count (default: one per GPU for cuda/tensorrt, else one per node) [SEAEMBED_REPLICAS]")
    sizes.add_argument("--autoscale", default=env("AUTOSCALE"), metavar="MIN:MAX", help="autoscale between MIN and MAX replicas on ongoing requests per replica (target 16; knobs: $SEAEMBED_RAY_AUTOSCALING) [SEAEMBED_AUTOSCALE]")
