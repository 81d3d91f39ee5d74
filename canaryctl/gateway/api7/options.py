"""`canaryctl run --gateway api7`: the flags and environment that reach API7 Cloud.

The token comes from API7_CLOUD_TOKEN (the seed's Secret `api7-cloud`, key `token`), the
address from API7_CLOUD_ADDR; flags override both. Organization and cluster are chosen by id
or name; without one, the only one there is.
"""

from __future__ import annotations

import argparse
import logging
import os

from canaryctl.gateway.api7.backend import Api7Gateway
from canaryctl.gateway.api7.client import Api7Client
from canaryctl.gateway.api7.transport import DEFAULT_BASE_URL, DEFAULT_TIMEOUT
from canaryctl.gateway.base import ConnectError, Connection, GatewayError

log = logging.getLogger("canaryctl")


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("API7 Cloud (--gateway api7)")
    group.add_argument(
        "--api7-addr",
        default=os.environ.get("API7_CLOUD_ADDR") or DEFAULT_BASE_URL,
        help="API7 Cloud address (env API7_CLOUD_ADDR)",
    )
    group.add_argument(
        "--api7-token",
        default=None,
        help="API7 Cloud access token (env API7_CLOUD_TOKEN; "
        "prefer the environment: flags are visible in the process list)",
    )
    group.add_argument("--api7-ca-bundle", help="CA bundle to verify API7 Cloud's certificate")
    group.add_argument(
        "--api7-timeout",
        type=float,
        default=DEFAULT_TIMEOUT[1],
        metavar="SECONDS",
        help="how long one request waits for API7 Cloud's answer (default: %(default)s)",
    )
    group.add_argument("--api7-org", help="organization id or name (default: the only one)")
    group.add_argument("--api7-cluster", help="cluster id or name (default: the only one)")


def connect(args: argparse.Namespace, user_agent: str) -> Connection:
    """The API7 Cloud cluster canaryctl works in, chosen as the flags say."""
    token = args.api7_token or os.environ.get("API7_CLOUD_TOKEN")
    if not token:
        raise ConnectError("no API7 Cloud token: set API7_CLOUD_TOKEN (or --api7-token)", 2)
    timeout = (DEFAULT_TIMEOUT[0], args.api7_timeout)
    client = Api7Client(
        token, args.api7_addr, timeout=timeout, ca_bundle=args.api7_ca_bundle, user_agent=user_agent
    )
    try:
        cluster = client.resolve_cluster(args.api7_org, args.api7_cluster)
    except GatewayError as error:
        client.close()
        raise ConnectError(f"cannot choose the API7 Cloud cluster: {error}", 1) from None
    log.info(
        "using API7 Cloud cluster",
        extra={
            "org": cluster.org_name,
            "cluster": cluster.cluster_name,
            "cluster_id": cluster.cluster_id,
        },
    )
    return Connection(Api7Gateway(client, cluster.cluster_id), client.close)
