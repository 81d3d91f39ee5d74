"""Run the API7 Cloud emulator (Open API + data plane) in the foreground until Ctrl-C or SIGTERM.

Prints one `key: value` line each for the Open API URL, the data-plane URL, the
organization id and the cluster id, then serves. The token comes from `--token` or the
environment variable API7_CLOUD_TOKEN.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

from canaryctl.testing.api7cloud.dataplane import split_host_port
from canaryctl.testing.api7cloud.emulator import Emulator

TOKEN_ENV = "API7_CLOUD_TOKEN"


def _resolve_entry(value: str) -> tuple[str, str]:
    target, sep, address = value.partition("=")
    try:
        split_host_port(target)
        split_host_port(address)
    except ValueError:
        sep = ""
    if not sep:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT=ADDR:PORT, got {value!r}")
    return target, address


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address both servers listen on (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=0, help="Open API port (default: a free one)")
    parser.add_argument(
        "--dataplane-port", type=int, default=0, help="data-plane port (default: a free one)"
    )
    parser.add_argument(
        "--token", default=None, help=f"access token clients must send (default: ${TOKEN_ENV})"
    )
    parser.add_argument(
        "--resolve",
        type=_resolve_entry,
        action="append",
        default=[],
        metavar="HOST:PORT=ADDR:PORT",
        help="send data-plane traffic for upstream target HOST:PORT to ADDR:PORT (repeatable)",
    )
    parser.add_argument("--org-name", default="default")
    parser.add_argument("--cluster-name", default="default")
    parser.add_argument(
        "--org-id", default=None, help="decimal id of the organization (default: generated)"
    )
    parser.add_argument(
        "--cluster-id", default=None, help="decimal id of the cluster (default: generated)"
    )
    parser.add_argument(
        "--fault-seed", type=int, default=None, help="seed for probabilistic faults"
    )


@contextlib.contextmanager
def stop_signals() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM while inside the block (handlers restored after)."""
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(args: Any) -> int:
    token = args.token or os.environ.get(TOKEN_ENV)
    if not token:
        print(
            f"canaryctl dev api7cloud: a token is required (--token or ${TOKEN_ENV})",
            file=sys.stderr,
        )
        return 2
    try:
        emulator = Emulator(
            token=token,
            org_name=args.org_name,
            cluster_name=args.cluster_name,
            resolve=dict(args.resolve),
            host=args.host,
            port=args.port,
            dataplane_port=args.dataplane_port,
            fault_seed=args.fault_seed,
            org_id=args.org_id,
            cluster_id=args.cluster_id,
        )
    except (ValueError, OSError) as error:
        print(f"canaryctl dev api7cloud: {error}", file=sys.stderr)
        return 2
    with stop_signals() as stop, emulator:
        print(f"open-api-url: {emulator.url}", flush=True)
        print(f"dataplane-url: {emulator.dataplane_url}", flush=True)
        print(f"org-id: {emulator.org_id}", flush=True)
        print(f"cluster-id: {emulator.cluster_id}", flush=True)
        stop.wait()
    return 0
