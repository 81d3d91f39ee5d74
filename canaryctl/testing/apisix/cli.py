"""Run the APISIX emulator (Admin API + data plane) in the foreground until Ctrl-C or SIGTERM.

`canaryctl dev apisix --admin-port P --dataplane-port Q --admin-key K` prints one
`key: value` line each for the Admin API URL (with `/apisix/admin`) and the data-plane URL,
then serves. The key comes from `--admin-key` or the environment variable APISIX_ADMIN_KEY;
without either, the Admin API asks for no key (APISIX's `admin_key_required: false`).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from canaryctl.testing.httpemulation.resolve import resolve_argument

KEY_ENV = "APISIX_ADMIN_KEY"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address both servers listen on (default 127.0.0.1)"
    )
    parser.add_argument("--admin-port", type=int, default=0, help="Admin API port (default: free)")
    parser.add_argument(
        "--dataplane-port", type=int, default=0, help="data-plane port (default: a free one)"
    )
    parser.add_argument(
        "--admin-key", default=None, help=f"key clients must send (default: ${KEY_ENV})"
    )
    parser.add_argument("--viewer-key", default=None, help="an additional read-only key")
    parser.add_argument(
        "--resolve",
        type=resolve_argument,
        action="append",
        default=[],
        metavar="HOST:PORT=ADDR:PORT",
        help="send data-plane traffic for upstream node HOST:PORT to ADDR:PORT (repeatable)",
    )
    parser.add_argument(
        "--node-label",
        choices=("target", "address"),
        default="target",
        help="metrics `node`: the node as configured (default) or its address, as APISIX does",
    )
    parser.add_argument(
        "--metrics-scope",
        choices=("global", "route"),
        default="global",
        help="count every request (default) or only routes with the prometheus plugin",
    )
    parser.add_argument("--fault-seed", type=int, default=None, help="seed for random faults")


def run(args: Any) -> int:
    from canaryctl.backgroundhttp import stop_signals
    from canaryctl.testing.apisix.emulator import ApisixEmulator  # not needed to parse flags

    try:
        emulator = ApisixEmulator(
            admin_key=args.admin_key or os.environ.get(KEY_ENV),
            viewer_key=args.viewer_key,
            resolve=dict(args.resolve),
            host=args.host,
            admin_port=args.admin_port,
            dataplane_port=args.dataplane_port,
            fault_seed=args.fault_seed,
            node_label=args.node_label,
            metrics_scope=args.metrics_scope,
        )
    except (ValueError, OSError) as error:
        print(f"canaryctl dev apisix: {error}", file=sys.stderr)
        return 2
    with stop_signals() as stop, emulator:
        print(f"admin-api-url: {emulator.admin_api}", flush=True)
        print(f"dataplane-url: {emulator.dataplane_url}", flush=True)
        stop.wait()
    return 0
