"""Run the API7 Cloud emulator (Open API + data plane) in the foreground until Ctrl-C or SIGTERM.

Prints one `key: value` line each for the Open API URL, the data-plane URL, the
organization id and the cluster id, then serves. The token comes from `--token` or the
environment variable API7_CLOUD_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from canaryctl.backgroundhttp import stop_signals
from canaryctl.testing.api7cloud.emulator import Emulator
from canaryctl.testing.httpemulation.resolve import resolve_argument

TOKEN_ENV = "API7_CLOUD_TOKEN"


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
        type=resolve_argument,
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
