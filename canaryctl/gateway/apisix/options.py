"""`canaryctl run --gateway apisix`: the flags and environment that reach APISIX's Admin API.

The Admin API address comes from APISIX_ADMIN_URL (default `http://127.0.0.1:9180`, APISIX's
own default listener), the key from APISIX_ADMIN_KEY (in a cluster: a Secret `apisix-admin`
with key `key`, passed as that environment variable); flags override both. At start one
filtered list request checks that the address speaks the Admin API v3 and takes the key, so a
wrong key or certificate stops the controller at once instead of at its first reconcile.
Release analysis defaults to `APISIX_QUERIES` (see `canaryctl.release.analysis`).
"""

from __future__ import annotations

import argparse
import logging
import os

from canaryctl.gateway.apisix.backend import ApisixGateway
from canaryctl.gateway.apisix.client import AdminClient
from canaryctl.gateway.apisix.diff import ROUTES
from canaryctl.gateway.apisix.transport import DEFAULT_ADMIN_URL
from canaryctl.gateway.base import (
    ConnectError,
    Connection,
    TerminalGatewayError,
    TransientGatewayError,
)
from canaryctl.release.analysis import APISIX_QUERIES

log = logging.getLogger("canaryctl")
URL_ENV, KEY_ENV = "APISIX_ADMIN_URL", "APISIX_ADMIN_KEY"
PROBE_LABEL = "canaryctl-connection-check"  # a label key no object has
# Real APISIX labels `node` with the balanced-to address: a Service's ClusterIP.
DEFAULT_QUERIES = APISIX_QUERIES


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Apache APISIX Admin API (--gateway apisix)")
    group.add_argument(
        "--apisix-admin-url",
        default=os.environ.get(URL_ENV) or DEFAULT_ADMIN_URL,
        help=f"Admin API address, without /apisix/admin (env {URL_ENV}; "
        f"default {DEFAULT_ADMIN_URL})",
    )
    group.add_argument(
        "--apisix-admin-key",
        default=None,
        help=f"Admin API key with the admin role (env {KEY_ENV}; prefer the environment: "
        "flags are visible in the process list)",
    )
    group.add_argument(
        "--apisix-ca-bundle", help="CA bundle to verify an https Admin API's certificate"
    )


def connect(args: argparse.Namespace, user_agent: str) -> Connection:
    """A client of the Admin API the flags name, checked with one request."""
    key = args.apisix_admin_key or os.environ.get(KEY_ENV)
    if not key:
        log.warning(
            "no APISIX Admin API key (set %s or --apisix-admin-key): requests carry none, "
            "which only an Admin API with admin_key_required: false accepts",
            KEY_ENV,
        )
    client = AdminClient(
        key, args.apisix_admin_url, ca_bundle=args.apisix_ca_bundle, user_agent=user_agent
    )
    try:
        client.list(ROUTES, label=PROBE_LABEL)  # matches nothing: one small answer
    except TerminalGatewayError as error:
        client.close()
        raise ConnectError(f"cannot use the APISIX Admin API: {error}", 1) from None
    except TransientGatewayError as error:  # it may come up: the controller retries its read
        log.warning("APISIX Admin API not reachable yet: %s", error)
    log.info("using the APISIX Admin API", extra={"admin_url": args.apisix_admin_url})
    return Connection(ApisixGateway(client), client.close)
