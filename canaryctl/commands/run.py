"""Run the controller: watch Services, publish them as canary releases on a gateway.

`--gateway` chooses the backend (API7 Cloud by default); each backend's module adds its own
flags and connects (see `GATEWAYS`). In a pod canaryctl uses the in-cluster config; elsewhere
`--kubeconfig`. SIGTERM or Ctrl-C: stop taking work, finish in-flight reconciles, exit 0.

With `--metrics-secure`, `/metrics` is served over HTTPS to callers that kube-apiserver
authenticates (bearer token, TokenReview) and authorizes for `get` on `/metrics`
(SubjectAccessReview), with the mounted certificate or a self-signed one made at start.

With `--leader-elect`, replicas contend for a Lease and only its holder writes (see
`canaryctl.leadership`). Every replica has an identity (pod name + random suffix) that its
gateway requests carry in their User-Agent, so a gateway's log shows which replica wrote.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import signal
import ssl
import threading

import canaryctl
from canaryctl import leadership, logs, tls
from canaryctl.assembly import build_controller
from canaryctl.controller import Controller, Settings
from canaryctl.delegated_auth import KubernetesAuthGuard
from canaryctl.gateway.api7 import options as api7_options
from canaryctl.gateway.apisix import options as apisix_options
from canaryctl.gateway.base import ConnectError
from canaryctl.gateway.gatewayapi import options as gatewayapi_options
from canaryctl.kube import load_api_client
from canaryctl.leaderelection import ElectionConfig, new_identity, user_agent
from canaryctl.leadership import ElectedController
from canaryctl.notify.config import CONFIG_ENV, FORMAT_ENV, URL_FILE_ENV, channels_from_env
from canaryctl.notify.messages import FORMATS
from canaryctl.notify.notifier import Notifier
from canaryctl.release.analysis import VARIABLES, Analyzer, QueryTemplates
from canaryctl.release.hookclient import HookClient
from canaryctl.release.hooktargets import HookTargets
from canaryctl.release.prometheus import PrometheusClient
from canaryctl.server import MetricsEndpointFactory, metrics_endpoint

log = logging.getLogger("canaryctl")

# --gateway NAME -> the module that adds the backend's flags and connects it (and may name its
# default analysis queries as DEFAULT_QUERIES)
GATEWAYS = {"api7": api7_options, "apisix": apisix_options, "gateway-api": gatewayapi_options}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: in-cluster config, then ~/.kube/config)"
    )
    parser.add_argument(
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NS",
        help="watch only this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument(
        "--gateway",
        choices=sorted(GATEWAYS),
        default="api7",
        help="the gateway backend (default: %(default)s)",
    )
    parser.add_argument(
        "--cluster-domain", default="cluster.local", help="Kubernetes cluster DNS domain"
    )
    parser.add_argument("--workers", type=int, default=2, help="concurrent reconciles")
    parser.add_argument(
        "--resync-period",
        type=float,
        default=600.0,
        help="seconds between full re-reads of the gateway",
    )
    parser.add_argument(
        "--suspect-window",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long a gateway write whose answer was lost may still land: the app is read "
        "before its next write and once more when this window ends (default: %(default)s)",
    )
    parser.add_argument(
        "--require-app-binding",
        action="store_true",
        help="a namespace may publish only the app names its Namespace lists in the annotation "
        "api7.cloud/allowed-apps (needs get/list/watch on namespaces)",
    )
    parser.add_argument(
        "--hook-allow",
        action="append",
        default=[],
        metavar="HOST|.SUFFIX|CIDR",
        help="release hooks may call only hosts of this name or suffix, or addresses in this "
        "network (repeatable; default: any address but link-local)",
    )
    parser.add_argument("--metrics-addr", default=":8080", help="address serving /metrics")
    parser.add_argument(
        "--health-addr", default=":8081", help="address serving /healthz and /readyz"
    )
    parser.add_argument(
        "--metrics-secure",
        action="store_true",
        help="serve /metrics over HTTPS, only to bearer tokens kube-apiserver accepts "
        "(TokenReview) whose user may get the non-resource URL /metrics (SubjectAccessReview)",
    )
    parser.add_argument(
        "--metrics-cert-file",
        metavar="PEM",
        help="certificate (chain) for --metrics-secure (default: self-signed, made at start)",
    )
    parser.add_argument("--metrics-key-file", metavar="PEM", help="its private key")
    parser.add_argument("--log-format", choices=("json", "text"), default="text")
    parser.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default="info"
    )
    parser.add_argument("--dry-run", action="store_true", help="log the plan, write nothing")
    leadership.add_options(parser)
    for backend in GATEWAYS.values():
        backend.add_options(parser)
    _configure_notifications(parser)
    analysis = parser.add_argument_group("release analysis (canaries with api7.cloud/canary-steps)")
    analysis.add_argument(
        "--prometheus-url", help="Prometheus HTTP API base URL, e.g. http://prometheus:9090"
    )
    variables = " ".join(f"{{{name}}}" for name in VARIABLES)
    # latency-buckets: canary-compare statistical; observed-requests: the observed split
    for name in ("requests", "errors", "latency-p99", "latency-buckets", "observed-requests"):
        field = name.replace("-", "_")
        defaults = " | ".join(
            f"{gateway}: {getattr(_default_queries(gateway), field)}" for gateway in GATEWAYS
        )
        analysis.add_argument(
            f"--query-{name}",
            default=None,
            metavar="PROMQL",
            help=f"query template; variables {variables} (default per --gateway, "
            f"{defaults.replace('%', '%%')})",
        )


def _configure_notifications(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "notifications (release events to webhooks; URLs only in files mounted from Secrets)"
    )
    group.add_argument(
        "--notify-url-file",
        metavar="PATH",
        help=f"file holding the webhook URL of the `default` channel (env {URL_FILE_ENV})",
    )
    group.add_argument(
        "--notify-format",
        choices=FORMATS,
        help=f"payload of the `default` channel: json or slack (default: json; env {FORMAT_ENV})",
    )
    group.add_argument(
        "--notify-config",
        metavar="PATH",
        help="JSON file naming more channels, for Services' api7.cloud/canary-notify "
        f"(env {CONFIG_ENV})",
    )


def run(args: argparse.Namespace) -> int:
    logs.setup(args.log_format, args.log_level)
    try:
        settings = _settings(args)
        metrics_tls = _metrics_tls(args)
        election = leadership.election_config(args)
    except (ValueError, OSError) as error:  # e.g. an unknown {variable}, an unreadable cert
        log.error("invalid flag: %s", error)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    identity = new_identity()
    agent = user_agent(f"canaryctl/{canaryctl.__version__}", identity)
    try:
        connection = GATEWAYS[args.gateway].connect(args, agent)
    except ConnectError as error:
        log.error("%s", error)
        return error.exit_code
    api = load_api_client(args.kubeconfig)
    if metrics_tls is not None:
        settings = dataclasses.replace(settings, metrics_server=_secure_metrics(api, metrics_tls))
    replica = _replica(api, election, identity)
    may_write = replica.elector.is_leader if replica else None
    controller = build_controller(api, connection.gateway, settings, may_write)
    failed = threading.Event()
    threading.Thread(
        target=_start, args=(controller, replica, stop, failed), name="start", daemon=True
    ).start()
    stop.wait()
    log.info("shutting down" if not failed.is_set() else "giving up")
    if replica is not None:
        replica.stop()  # a leader drains its work, then hands the Lease back
    controller.stop()
    connection.close()
    return 1 if failed.is_set() else 0


def _replica(api, election: ElectionConfig | None, identity: str) -> ElectedController | None:
    if election is None:
        return None
    log.info("leader election on", extra={"lease": election.describe(), "identity": identity})
    return ElectedController(api, election, identity)


def _start(
    controller: Controller,
    replica: ElectedController | None,
    stop: threading.Event,
    failed: threading.Event,
) -> None:
    """Start in the background so a signal during start-up still stops the process promptly."""
    try:
        if replica is None:
            controller.start()
        else:
            replica.start(controller)
    except Exception:
        log.exception("controller failed to start")
        failed.set()
        stop.set()


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(
        namespaces=args.namespaces,
        cluster_domain=args.cluster_domain,
        workers=args.workers,
        resync_period=args.resync_period,
        metrics_addr=args.metrics_addr,
        health_addr=args.health_addr,
        dry_run=args.dry_run,
        analyzer=_analyzer(args),
        suspect_window=args.suspect_window,
        require_app_binding=args.require_app_binding,
        notifier=_notifier(args),
        hooks=HookClient(targets=HookTargets(args.hook_allow)),
    )


def _notifier(args: argparse.Namespace) -> Notifier | None:
    """The webhook notifier, or None when no channel is configured; ValueError when invalid."""
    channels = channels_from_env(args.notify_url_file, args.notify_format, args.notify_config)
    if not channels:
        return None
    log.info("release notifications on", extra={"channels": ",".join(sorted(channels))})
    return Notifier.from_channels(channels)


def _metrics_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The TLS context for --metrics-secure: the given certificate, else a self-signed one."""
    cert, key = args.metrics_cert_file, args.metrics_key_file
    if not args.metrics_secure:
        if cert or key:
            raise ValueError("--metrics-cert-file/--metrics-key-file need --metrics-secure")
        return None
    if bool(cert) != bool(key):
        raise ValueError("--metrics-cert-file and --metrics-key-file go together")
    if cert:
        return tls.server_context_from_files(cert, key)
    log.info("serving /metrics with a self-signed certificate made at start")
    return tls.server_context()


def _secure_metrics(api, context: ssl.SSLContext) -> MetricsEndpointFactory:
    """`/metrics` over HTTPS behind Kubernetes authentication and authorization."""
    return functools.partial(metrics_endpoint, tls=context, guard=KubernetesAuthGuard(api))


def _default_queries(gateway: str) -> QueryTemplates:
    """The analysis queries that fit what `gateway`'s data plane puts in its metrics."""
    return getattr(GATEWAYS[gateway], "DEFAULT_QUERIES", QueryTemplates())


def _analyzer(args: argparse.Namespace) -> Analyzer | None:
    if not args.prometheus_url:
        return None
    defaults = _default_queries(args.gateway)
    templates = QueryTemplates(
        args.query_requests or defaults.requests,
        args.query_errors or defaults.errors,
        args.query_latency_p99 or defaults.latency_p99,
        args.query_latency_buckets or defaults.latency_buckets,
        args.query_observed_requests or defaults.observed_requests,
    )
    return Analyzer(PrometheusClient(args.prometheus_url), templates)
