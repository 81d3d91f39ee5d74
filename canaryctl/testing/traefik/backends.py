"""Demo backends reachable through Kubernetes Services, without a kubelet.

A Gateway API implementation resolves an HTTPRoute's backendRef to a Service and its
EndpointSlices. Nothing here runs pods, so each backend is the seed's error-page server
started inside the test's network namespace, and the kit writes the Service and an
EndpointSlice that points at it, as the EndpointSlice controller would for a ready pod.
The slice's port name equals the Service port name, which is how implementations pair them.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from canaryctl.examples.errorpage import PATH
from canaryctl.testing.processes import terminate, wait_until

PORT_NAME = "http"
SERVICE_PORT = 80
MANAGED_BY = "canaryctl-testing"


@dataclass
class Backend:
    """One error-page server behind Service `namespace/service`."""

    namespace: str
    service: str
    version: str
    address: str
    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}{PATH}"

    def stop(self) -> None:
        terminate(self.process, grace=5)


def error_page_command(version: str, address: str, port: int, fail_rate: float) -> list[str]:
    """`canaryctl error-page` with this interpreter (PYTHONPATH is inherited)."""
    return [
        sys.executable,
        "-m",
        "canaryctl",
        "error-page",
        f"--version={version}",
        f"--host={address}",
        f"--port={port}",
        f"--fail-rate={fail_rate}",
    ]


def wait_serving(backend: Backend, log_path: Path, timeout: float = 30) -> None:
    """Poll the backend from this side of the veth pair until it answers its version."""

    def serving() -> bool:
        if backend.process.poll() is not None:
            log = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"error-page {backend.version} exited:\n{log}")
        try:
            answer = requests.get(backend.url, timeout=2)
        except requests.RequestException:
            return False
        return answer.ok and answer.json().get("version") == backend.version

    wait_until(serving, timeout, f"error-page {backend.version} at {backend.url}")


def service_body(name: str) -> dict:
    """A ClusterIP Service with one named port; no selector, since no pods back it."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"ports": [{"name": PORT_NAME, "port": SERVICE_PORT, "protocol": "TCP"}]},
    }


def slice_name(service: str) -> str:
    return f"{service}-{MANAGED_BY}"


def endpoint_slice_body(service: str, address: str, port: int) -> dict:
    """One ready endpoint for `service`, labelled the way the EndpointSlice controller does."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": slice_name(service),
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "addressType": "IPv4",
        "endpoints": [
            {
                "addresses": [address],
                "conditions": {"ready": True, "serving": True, "terminating": False},
            }
        ],
        "ports": [{"name": PORT_NAME, "port": port, "protocol": "TCP"}],
    }


def create_service(api_client, namespace: str, service: str, address: str, port: int) -> None:
    """Write the Service and its EndpointSlice."""
    from kubernetes import client

    service_object: Any = service_body(service)  # the client takes plain dicts as bodies
    client.CoreV1Api(api_client).create_namespaced_service(namespace, service_object)
    create_endpoint_slice(api_client, namespace, service, address, port)


def create_endpoint_slice(
    api_client, namespace: str, service: str, address: str, port: int
) -> None:
    """Write the EndpointSlice of `service` (which may not exist yet, or come from a manifest
    whose port is named `http`)."""
    from kubernetes import client

    slice_object: Any = endpoint_slice_body(service, address, port)
    client.DiscoveryV1Api(api_client).create_namespaced_endpoint_slice(namespace, slice_object)
