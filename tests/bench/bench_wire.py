"""CPU per API request by HTTP stack: why the controller speaks HTTP through `canaryctl.wire`.

Starts a real kube-apiserver (localkube) and sends the controller's most frequent request,
the status annotation's merge PATCH over TLS with a client certificate, N times through
each of: the kubernetes client's own urllib3 pool (what `kube.api_request` used before),
http.client on one kept-alive connection, and `canaryctl.wire` (through `kube.api_request`).
Prints this process's CPU per request (time.process_time: user + system) and the wall time.

    python tests/bench/bench_wire.py [--requests 500]
"""

from __future__ import annotations

import argparse
import http.client
import json
import ssl
import sys
import time
import urllib.parse
from collections.abc import Callable

import urllib3
from kubernetes import client

from canaryctl import kube
from canaryctl.testing.localkube import LocalKube

WARM_UP = 20


def measure(name: str, requests: int, send: Callable[[int], None]) -> None:
    for number in range(WARM_UP):
        send(number)
    cpu, wall = time.process_time(), time.perf_counter()
    for number in range(requests):
        send(number)
    cpu_ms = (time.process_time() - cpu) / requests * 1000
    wall_ms = (time.perf_counter() - wall) / requests * 1000
    print(f"{name:<34} {cpu_ms:6.3f} ms CPU per request, {wall_ms:6.2f} ms wall", flush=True)


def body(number: int) -> bytes:
    return json.dumps({"metadata": {"annotations": {"bench": str(number)}}}).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    requests = parser.parse_args().requests
    print(f"python {sys.version.split()[0]}; {requests} PATCHes of one Service's annotation")
    with LocalKube(progress=lambda m: print(m, file=sys.stderr)) as local:
        namespace = local.create_namespace("bench-wire")
        api = local.api_client()
        path = f"/api/v1/namespaces/{namespace}/services/bench"
        service = {"metadata": {"name": "bench"}, "spec": {"ports": [{"port": 80}]}}
        client.CoreV1Api(api).create_namespaced_service(namespace, service)
        configuration = api.configuration
        headers = {"Content-Type": kube.MERGE_PATCH, "Accept": kube.JSON}

        def with_urllib3(number: int) -> None:
            answer = api.rest_client.pool_manager.request(
                "PATCH",
                configuration.host + path,
                body=body(number),
                headers=headers,
                timeout=urllib3.Timeout(connect=5, read=30),
                preload_content=False,
            )
            answer.drain_conn()
            answer.release_conn()
            assert answer.status == 200, answer.status

        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
        address = urllib.parse.urlsplit(configuration.host)
        connection = http.client.HTTPSConnection(
            address.hostname or "", address.port, context=context
        )

        def with_http_client(number: int) -> None:
            connection.request("PATCH", path, body=body(number), headers=headers)
            answer = connection.getresponse()
            answer.read()
            assert answer.status == 200, answer.status

        def with_wire(number: int) -> None:
            changes = {"bench": str(number)}
            kube.write_service_annotations(api, namespace, "bench", changes)

        measure("urllib3 (kubernetes client pool)", requests, with_urllib3)
        measure("http.client", requests, with_http_client)
        measure("canaryctl.wire (kube.api_request)", requests, with_wire)


if __name__ == "__main__":
    main()
