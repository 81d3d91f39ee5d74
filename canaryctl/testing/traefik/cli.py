"""`canaryctl dev traefik`: Traefik on a local control plane with the Gateway API, for humans.

Starts kube-apiserver + etcd, installs the Gateway API CRDs, creates a GatewayClass and
Gateway `default/traefik`, runs Traefik for it and, per `--backend SERVICE=VERSION`, an
error-page backend behind a Service in `default`; then prints how to write an HTTPRoute
and reach it. Stops everything on Ctrl-C or SIGTERM.
`--build-only` builds and caches the Traefik binary (CI does this first, with progress).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from canaryctl.testing.localkube.build import LocalKubeUnavailable
from canaryctl.testing.localkube.cluster import LocalKube
from canaryctl.testing.traefik.build import ensure_traefik, tidy_module, traefik_version
from canaryctl.testing.traefik.gateway import TraefikGateway

NAMESPACE = "default"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--build-only", action="store_true", help="build and cache the binary, then exit"
    )
    parser.add_argument(
        "--tidy",
        action="store_true",
        help="maintainers: write the build module, `go mod tidy` it and print where it is",
    )
    parser.add_argument("--dir", help="directory for state and DIR/kubeconfig (default: temp)")
    parser.add_argument(
        "--backend",
        action="append",
        default=[],
        metavar="SERVICE=VERSION",
        help="start an error-page backend answering VERSION behind Service SERVICE",
    )


def run(args: argparse.Namespace) -> int:
    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    backends = [_parse_backend(text) for text in args.backend]
    if None in backends:
        print("traefik: --backend takes SERVICE=VERSION", file=sys.stderr)
        return 2
    try:
        if args.tidy:
            print(tidy_module(progress))
            return 0
        if args.build_only:
            print(ensure_traefik(progress))
            return 0
        _serve(args.dir, backends, progress)
    except LocalKubeUnavailable as error:
        print(f"traefik: {error}", file=sys.stderr)
        return 1
    return 0


def _parse_backend(text: str) -> tuple[str, str] | None:
    service, _, version = text.partition("=")
    return (service, version) if service and version else None


def _serve(workdir: str | None, backends: list, progress) -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with LocalKube(workdir, progress) as kube:
        kube.install_gateway_api()
        with TraefikGateway(kube, NAMESPACE, progress=progress) as gateway:
            for service, version in backends:
                gateway.add_backend(NAMESPACE, service, version)
            gateway.wait_programmed()
            _print_usage(kube, gateway, backends)
            stop.wait()
            print("stopping Traefik, backends, kube-apiserver and etcd", file=sys.stderr)


def _print_usage(kube: LocalKube, gateway: TraefikGateway, backends: list) -> None:
    services = ", ".join(f"{s} ({v})" for s, v in backends) or "none"
    print(
        f"Traefik {traefik_version()} serves Gateway {NAMESPACE}/{gateway.name} "
        f"(class {gateway.gateway_class}) at {gateway.url}\n"
        f"  metrics: {gateway.admin_url}/metrics   api: {gateway.admin_url}/api/rawdata\n"
        f"  backends in {NAMESPACE}: {services}\n"
        f"  export KUBECONFIG={gateway.state_dir.parent / 'kubeconfig'}\n"
        f"  HTTPRoute parentRefs: [{{name: {gateway.name}, namespace: {NAMESPACE}}}]\n"
        f"  curl -H 'Host: NAME' {gateway.url}/api/error_page\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
