"""`canaryctl dev localkube`: a real kube-apiserver + etcd in the foreground, for humans.

Writes DIR/kubeconfig, prints how to use it, and stops everything on Ctrl-C or SIGTERM.
`--build-only` just builds and caches the binaries (CI does this first, with progress).
`--gateway-api` installs the Gateway API standard-channel CRDs once the apiserver is ready.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from canaryctl.testing.localkube import gateway_api
from canaryctl.testing.localkube.build import (
    KUBERNETES_VERSION,
    LocalKubeUnavailable,
    ensure_binaries,
)
from canaryctl.testing.localkube.cluster import LocalKube


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", help="directory for state and DIR/kubeconfig (default: a temp dir)"
    )
    parser.add_argument(
        "--build-only", action="store_true", help="build and cache the binaries, then exit"
    )
    parser.add_argument(
        "--gateway-api",
        action="store_true",
        help="install the Gateway API standard-channel CRDs after start "
        "(with --build-only: fetch and cache them)",
    )
    parser.add_argument(
        "--version",
        dest="kube_version",
        default=KUBERNETES_VERSION,
        help=f"Kubernetes release to build (default {KUBERNETES_VERSION})",
    )


def run(args: argparse.Namespace) -> int:
    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        if args.build_only:
            print(ensure_binaries(args.kube_version, progress))
            if args.gateway_api:
                print(gateway_api.ensure_crds(progress=progress))
            return 0
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        started = time.monotonic()
        with LocalKube(args.dir, progress, args.kube_version) as kube:
            if args.gateway_api:
                crds = kube.install_gateway_api()
                progress(f"gateway-api {gateway_api.GATEWAY_API_VERSION}: {len(crds)} CRDs")
            _print_usage(kube, time.monotonic() - started)
            stop.wait()
            print("stopping kube-apiserver and etcd", file=sys.stderr, flush=True)
    except LocalKubeUnavailable as error:
        print(f"localkube: {error}", file=sys.stderr)
        return 1
    return 0


def _print_usage(kube: LocalKube, seconds: float) -> None:
    kubeconfig = kube.started_dir / "kubeconfig"
    print(
        f"kube-apiserver {kube.version} ready at {kube.server} in {seconds:.1f} s\n"
        f"  export KUBECONFIG={kubeconfig}\n"
        f"  {kube.kubectl_path} --kubeconfig {kubeconfig} get --raw /readyz\n"
        "Press Ctrl-C to stop.",
        flush=True,
    )
