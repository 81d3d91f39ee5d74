"""`canaryctl run --gateway gateway-api`: the Gateway the routes attach to, and the apiserver.

HTTPRoutes live in the same kube-apiserver as the Services, so the backend uses the same
credentials (`--kubeconfig`, else in-cluster). `--gateway-api-parent NAMESPACE/NAME[/SECTION]`
(env CANARYCTL_GATEWAY_API_PARENT) is the Gateway every route attaches to unless the stable
asks for another with the annotation `api7.cloud/gateway-api-parent`. At start canaryctl
checks that the HTTPRoute API is served; a missing parent Gateway is only logged (routes may
be created before their Gateway, and the implementation reports them not Accepted).
"""

from __future__ import annotations

import argparse
import logging
import os

from canaryctl.gateway.base import ConnectError, Connection, GatewayError
from canaryctl.gateway.gatewayapi.backend import GatewayApiGateway
from canaryctl.gateway.gatewayapi.client import RouteClient
from canaryctl.gateway.model import PARENT_FORMAT, ParentRef
from canaryctl.kube import load_api_client

log = logging.getLogger("canaryctl")
PARENT_ENV = "CANARYCTL_GATEWAY_API_PARENT"


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Gateway API (--gateway gateway-api)")
    group.add_argument(
        "--gateway-api-parent",
        metavar="NAMESPACE/NAME[/SECTION]",
        default=os.environ.get(PARENT_ENV),
        help="the Gateway (and listener) HTTPRoutes attach to; per app: annotation "
        f"api7.cloud/gateway-api-parent on the stable (env {PARENT_ENV})",
    )


def connect(args: argparse.Namespace, user_agent: str) -> Connection:
    """A Gateway API backend on the cluster canaryctl watches."""
    if not args.gateway_api_parent:
        raise ConnectError(f"--gateway-api-parent is required: the {PARENT_FORMAT}", 2)
    parent = ParentRef.parse(args.gateway_api_parent)
    if parent is None:
        raise ConnectError(
            f"--gateway-api-parent={args.gateway_api_parent!r} is not {PARENT_FORMAT}", 2
        )
    api = load_api_client(args.kubeconfig)
    api.user_agent = user_agent
    routes = RouteClient(api)
    # is the HTTPRoute API served? Asked where canaryctl may list routes: a controller scoped
    # to namespaces may do so only there (Helm's watchNamespaces grants Roles, not a ClusterRole)
    checked = args.namespaces[0] if args.namespaces else parent.namespace
    try:
        routes.named(checked, "canaryctl-start-check")
        found = routes.gateway(parent.namespace, parent.name)
    except GatewayError as error:
        api.close()
        raise ConnectError(f"cannot use the Gateway API: {error}", 1) from None
    if found is None:
        log.warning("parent Gateway %s does not exist (yet)", parent)
    gateway = GatewayApiGateway(
        routes, parent, namespaces=args.namespaces, cluster_domain=args.cluster_domain
    )
    log.info("using the Gateway API", extra={"parent": str(parent)})

    def close() -> None:
        gateway.stop()
        api.close()

    return Connection(gateway, close)
