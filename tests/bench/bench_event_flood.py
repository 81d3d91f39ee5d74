"""Event flood benchmark: how many Event objects a burst of events on one Service writes.

Starts a real kube-apiserver (localkube), creates a Service and records N events (default
3,000) on it through canaryctl's EventRecorder, twice: once with a different message each
time (weight changes), once with the same message (a Warning repeated on every retry).
Prints, per scenario, the caller's cost per recorded event, the time until everything was
written, the Event objects in etcd, their counts and how many events were dropped.

    python tests/bench/bench_event_flood.py [--events 3000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from kubernetes import client

from canaryctl.event_correlator import AGGREGATE_PREFIX
from canaryctl.events import EventRecorder
from canaryctl.objects import Service
from canaryctl.testing.localkube import LocalKube


def flood(api: client.ApiClient, service: Service, events: int, message: str) -> None:
    core = client.CoreV1Api(api)
    recorder = EventRecorder(api)
    started = time.perf_counter()
    for index in range(events):
        recorder.normal(service, "CanaryWeightChanged", message.format(index=index))
    recorded = time.perf_counter() - started
    recorder.flush(120)
    written = time.perf_counter() - started
    recorder.stop()
    items = json.loads(
        core.list_namespaced_event(
            service.namespace,
            field_selector=f"involvedObject.uid={service.uid}",
            _preload_content=False,
        ).data
    )["items"]
    combined = [e["count"] for e in items if e["message"].startswith(AGGREGATE_PREFIX)]
    print(f"{events} events, message {message!r}:")
    print(
        f"  record(): {recorded / events * 1e6:.1f} µs per call; all written after {written:.2f} s"
    )
    print(
        f"  Event objects: {len(items)} (counts {sorted(e['count'] for e in items)}), "
        f"combined: {combined}, dropped: {recorder.dropped}"
    )


def make_service(api: client.ApiClient, namespace: str, name: str) -> Service:
    body = {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}]}}
    answer = client.CoreV1Api(api).create_namespaced_service(
        namespace, body, _preload_content=False
    )
    return Service.from_dict(json.loads(answer.data))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    with LocalKube(progress=lambda m: print(m, file=sys.stderr)) as kube:
        namespace = kube.create_namespace()
        with kube.api_client() as api:
            flood(api, make_service(api, namespace, "weights"), args.events, "weight {index}%")
            flood(api, make_service(api, namespace, "retries"), args.events, "HTTP 503")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
