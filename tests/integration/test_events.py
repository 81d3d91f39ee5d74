"""EventRecorder on a real kube-apiserver: fields, repeats, similar events, floods, overflow."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from kubernetes import client

from canaryctl import metrics
from canaryctl.event_correlator import AGGREGATE_PREFIX
from canaryctl.events import MAX_MESSAGE_LENGTH, EventRecorder
from canaryctl.objects import Service


@pytest.fixture
def service(core_api, namespace) -> Service:
    body = {"metadata": {"name": "error-page-v2"}, "spec": {"ports": [{"port": 80}]}}
    return Service.from_dict(
        json.loads(core_api.create_namespaced_service(namespace, body, _preload_content=False).data)
    )


@pytest.fixture
def recorders() -> Iterator[list[EventRecorder]]:
    made: list[EventRecorder] = []
    yield made
    for recorder in made:
        recorder.stop()


@pytest.fixture
def recorder_for(kube_api, recorders):
    def make(**options) -> EventRecorder:
        recorder = EventRecorder(kube_api, host="canaryctl-7d9f-abcde", **options)
        recorders.append(recorder)
        return recorder

    return make


def events_of(core_api: client.CoreV1Api, service: Service) -> list[dict]:
    """Our Events on `service` (kube-apiserver's ClusterIP repair loop may add its own)."""
    answer = core_api.list_namespaced_event(
        service.namespace,
        _preload_content=False,
        field_selector=f"involvedObject.uid={service.uid},source=canaryctl",
    )
    return sorted(
        json.loads(answer.data)["items"], key=lambda event: event["metadata"]["creationTimestamp"]
    )


def test_event_carries_the_service_reference_and_reporter(recorder_for, core_api, service):
    recorder = recorder_for()
    before = metrics.events_total.labels("Published")._value.get()

    recorder.normal(service, "Published", "published as error-page on API7 Cloud")
    assert recorder.flush(10)

    (event,) = events_of(core_api, service)
    assert event["type"] == "Normal" and event["reason"] == "Published"
    assert event["message"] == "published as error-page on API7 Cloud"
    assert event["involvedObject"] == {
        "kind": "Service",
        "apiVersion": "v1",
        "name": "error-page-v2",
        "namespace": service.namespace,
        "uid": service.uid,
        "resourceVersion": service.resource_version,
    }
    assert event["source"] == {"component": "canaryctl", "host": "canaryctl-7d9f-abcde"}
    assert (
        event["reportingComponent"] == "canaryctl"
        and event["reportingInstance"] == "canaryctl-7d9f-abcde"
    )
    assert event["count"] == 1 and event["firstTimestamp"] == event["lastTimestamp"]
    assert event["metadata"]["name"].startswith("error-page-v2.")
    assert metrics.events_total.labels("Published")._value.get() == before + 1


def test_identical_warnings_become_one_event_with_a_count(recorder_for, core_api, service):
    recorder = recorder_for()
    for _ in range(5):
        recorder.warning(service, "InvalidAnnotation", "percentage 'abc' is not an integer 0-100")
    assert recorder.flush(10)

    (event,) = events_of(core_api, service)
    assert event["type"] == "Warning" and event["count"] == 5
    assert event["lastTimestamp"] >= event["firstTimestamp"]


def test_different_messages_reasons_or_types_are_different_events(recorder_for, core_api, service):
    recorder = recorder_for()
    recorder.warning(service, "InvalidAnnotation", "percentage 'abc' is not an integer 0-100")
    recorder.warning(service, "InvalidAnnotation", "percentage '150' is not an integer 0-100")
    recorder.warning(service, "Conflict", "percentage '150' is not an integer 0-100")
    recorder.normal(service, "Conflict", "percentage '150' is not an integer 0-100")
    recorder.warning(service, "InvalidAnnotation", "percentage 'abc' is not an integer 0-100")
    assert recorder.flush(10)

    events = events_of(core_api, service)
    assert sorted(
        (e["type"], e["reason"], e["message"].split()[1], e["count"]) for e in events
    ) == [
        ("Normal", "Conflict", "'150'", 1),
        ("Warning", "Conflict", "'150'", 1),
        ("Warning", "InvalidAnnotation", "'150'", 1),
        ("Warning", "InvalidAnnotation", "'abc'", 2),
    ]


def test_a_repeat_after_the_window_or_after_expiry_creates_a_new_event(
    recorder_for, core_api, service
):
    no_window = recorder_for(window=0.0)
    no_window.warning(service, "GatewayError", "HTTP 503 from the gateway")
    no_window.warning(service, "GatewayError", "HTTP 503 from the gateway")
    assert no_window.flush(10)
    assert [e["count"] for e in events_of(core_api, service)] == [1, 1]

    recorder = recorder_for()
    recorder.normal(service, "Promoted", "v2 is the stable upstream")
    assert recorder.flush(10)
    (promoted,) = [e for e in events_of(core_api, service) if e["reason"] == "Promoted"]
    core_api.delete_namespaced_event(
        promoted["metadata"]["name"], service.namespace
    )  # as if it had expired
    recorder.normal(service, "Promoted", "v2 is the stable upstream")
    assert recorder.flush(10)
    (again,) = [e for e in events_of(core_api, service) if e["reason"] == "Promoted"]
    assert again["metadata"]["name"] != promoted["metadata"]["name"] and again["count"] == 1


def test_overflow_drops_and_counts_and_long_messages_are_truncated(recorder_for, core_api, service):
    recorder = recorder_for(max_pending=2, autostart=False)
    queue_full = metrics.events_dropped_total.labels("queue_full")
    dropped_before = queue_full._value.get()
    for index in range(4):
        recorder.warning(service, "AnalysisFailed", f"check {index} " + "x" * 2000)
    assert recorder.dropped == 2
    assert queue_full._value.get() == dropped_before + 2

    recorder.start()
    assert recorder.flush(10)
    events = events_of(core_api, service)
    assert sorted(e["message"][:7] for e in events) == ["check 0", "check 1"]
    assert all(len(e["message"]) == MAX_MESSAGE_LENGTH for e in events)


def test_recording_never_blocks_even_when_the_apiserver_is_unreachable(service):
    unreachable = client.ApiClient(client.Configuration(host="https://127.0.0.1:9"))
    recorder = EventRecorder(unreachable)
    try:
        started = time.monotonic()
        for index in range(50):
            recorder.warning(service, "GatewayError", f"attempt {index}")
        assert time.monotonic() - started < 0.5
    finally:
        recorder.stop()
    assert recorder.dropped >= 49  # at most one was being sent when stop() gave up the rest


def test_a_flood_of_similar_events_makes_ten_objects_and_one_aggregated_count(
    recorder_for, core_api, service
):
    """3,000 weight changes on one Service, each with its own message, as fast as they come.

    client-go's rules: 9 distinct messages get their own Event; from the 10th on, similar
    events (same Service, type, reason) go to one aggregated Event. The spam filter lets a
    Service have 25 events of a type, then one per 5 minutes: so 10 objects, the aggregated
    one counting the 16 accepted after the first 9, and 2,975 dropped.
    """
    recorder = recorder_for()
    spam = metrics.events_dropped_total.labels("spam_filter")
    dropped_before, recorded_before = (
        spam._value.get(),
        metrics.events_total.labels("CanaryWeightChanged")._value.get(),
    )
    for index in range(3000):
        recorder.normal(service, "CanaryWeightChanged", f"canary weight {index / 30:.2f}%")
    assert recorder.flush(30)

    events = events_of(core_api, service)
    plain = [e for e in events if not e["message"].startswith(AGGREGATE_PREFIX)]
    [aggregated] = [e for e in events if e["message"].startswith(AGGREGATE_PREFIX)]
    assert len(events) == 10 and [e["count"] for e in plain] == [1] * 9
    assert sorted(e["message"] for e in plain) == [f"canary weight {i / 30:.2f}%" for i in range(9)]
    assert aggregated["count"] == 16 and aggregated["reason"] == "CanaryWeightChanged"
    assert aggregated["message"] == AGGREGATE_PREFIX + "canary weight 0.80%"  # the 25th, i=24
    assert recorder.dropped == spam._value.get() - dropped_before == 2975
    assert metrics.events_total.labels("CanaryWeightChanged")._value.get() == recorded_before + 25
