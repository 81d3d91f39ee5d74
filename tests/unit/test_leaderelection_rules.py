"""Leader election's pure parts: timing validation, identity, and the expiry arithmetic."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from canaryctl.leaderelection import (
    JITTER_FACTOR,
    ElectionConfig,
    ElectionState,
    jittered,
    new_identity,
    user_agent,
)

ME, OTHER = "pod-a_1", "pod-b_2"
WALL = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
HEADER_SAFE = re.compile(r"^[\x21-\x7e ]+$")


def config(**overrides) -> ElectionConfig:
    values = {"lease_name": "canaryctl", "namespace": "ns", **overrides}
    return ElectionConfig(**values)


def lease(holder: str, version: str, seconds: int | None = 15, transitions: int = 0) -> dict:
    spec = {
        "holderIdentity": holder,
        "leaseTransitions": transitions,
        "acquireTime": "2030-01-01T00:00:00.000000Z",
        "renewTime": "1999-01-01T00:00:00.000000Z",  # long ago by any clock: must not matter
    }
    if seconds is not None:
        spec["leaseDurationSeconds"] = seconds
    return {"metadata": {"name": "canaryctl", "resourceVersion": version}, "spec": spec}


# configuration ------------------------------------------------------------------------------


def test_defaults_are_client_gos():
    defaults = config()
    assert (defaults.lease_duration, defaults.renew_deadline, defaults.retry_period) == (15, 10, 2)
    assert defaults.safety_margin == 5
    assert defaults.lease_duration_seconds == 15


@pytest.mark.parametrize(
    "timings, message",
    [
        ({"lease_duration": 10, "renew_deadline": 10}, "greater than the renew deadline"),
        ({"lease_duration": 9, "renew_deadline": 10}, "greater than the renew deadline"),
        ({"renew_deadline": 2.4, "retry_period": 2}, "retry period"),
        ({"renew_deadline": 2.0, "retry_period": 2}, "retry period"),
        ({"retry_period": 0}, "positive"),
        ({"lease_duration": -1}, "positive"),
        ({"lease_duration": 15.5}, "whole seconds"),
        ({"lease_name": ""}, "Lease name"),
    ],
)
def test_invalid_timings_are_refused(timings, message):
    with pytest.raises(ValueError, match=message):
        config(**timings)


def test_short_test_timings_are_accepted():
    short = config(lease_duration=3, renew_deadline=2, retry_period=0.5)
    assert short.safety_margin == 1
    assert config(renew_deadline=2.41, retry_period=2).renew_deadline == 2.41


def test_jitter_adds_up_to_one_point_two_periods():
    assert jittered(2.0, lambda: 0.0) == 2.0
    assert jittered(2.0, lambda: 1.0) == pytest.approx(2.0 * (1 + JITTER_FACTOR))
    assert jittered(2.0, lambda: 0.5) == pytest.approx(3.2)


# identity ----------------------------------------------------------------------------------


def test_identity_is_pod_name_and_a_unique_suffix():
    first = new_identity({"POD_NAME": "canaryctl-7d9f-abcde", "HOSTNAME": "ignored"})
    second = new_identity({"POD_NAME": "canaryctl-7d9f-abcde"})
    pod, suffix = first.split("_")
    assert pod == "canaryctl-7d9f-abcde"
    assert re.fullmatch(r"[0-9a-f]{32}", suffix)
    assert first != second


def test_identity_falls_back_to_hostname_and_is_header_safe():
    assert new_identity({"HOSTNAME": "replica-1"}).startswith("replica-1_")
    hostile = new_identity({"HOSTNAME": "evil\r\nX-Injected: 1 _x"})
    assert hostile.count("_") == 1
    assert re.fullmatch(r"[A-Za-z0-9.-]+_[0-9a-f]{32}", hostile)


def test_user_agent_carries_the_identity_as_a_comment():
    identity = new_identity({"POD_NAME": "canaryctl-0"})
    agent = user_agent("canaryctl/0.1.0", identity)
    assert agent == f"canaryctl/0.1.0 ({identity})"
    assert HEADER_SAFE.match(user_agent("canaryctl/0.1.0", "bad\r\nid"))
    assert "\r" not in user_agent("canaryctl/0.1.0", "bad\r\nid")


# expiry arithmetic ----------------------------------------------------------------------------


def test_another_holder_expires_a_lease_duration_after_we_first_saw_its_version():
    state = ElectionState(ME, config())
    state.observe(lease(OTHER, "10", seconds=15), now=100.0)
    assert state.held_by_other(now=114.9)
    assert not state.held_by_other(now=115.0)  # the remote renewTime (1999) played no part


def test_a_new_version_restarts_the_wait_and_the_same_version_does_not():
    state = ElectionState(ME, config())
    state.observe(lease(OTHER, "10"), now=100.0)
    state.observe(lease(OTHER, "10"), now=110.0)  # re-read, unchanged: wait keeps running
    assert state.expires_at() == 115.0
    state.observe(lease(OTHER, "11"), now=112.0)  # renewed: wait starts again
    assert state.expires_at() == 127.0
    assert state.held_by_other(now=120.0)


def test_the_leases_own_duration_counts_and_a_missing_one_falls_back_to_ours():
    state = ElectionState(ME, config(lease_duration=15, renew_deadline=10))
    state.observe(lease(OTHER, "1", seconds=40), now=0.0)
    assert state.expires_at() == 40.0
    state.observe(lease(OTHER, "2", seconds=None), now=50.0)
    assert state.expires_at() == 65.0


def test_released_or_own_leases_are_not_held_by_another():
    state = ElectionState(ME, config())
    state.observe(lease("", "5", seconds=1), now=0.0)
    assert not state.held_by_other(now=0.0)
    state.observe(lease(ME, "6"), now=1.0)
    assert not state.held_by_other(now=1.0)


def test_free_from_when_seen_released_or_missing_or_when_the_holder_expires():
    state = ElectionState(ME, config())
    assert state.free_at() == 0.0  # never seen: no news to act on early
    state.observe(lease(OTHER, "1", seconds=15), now=10.0)
    assert state.free_at() == 25.0  # held: free once it runs out by our clock
    state.observe(lease("", "2", seconds=1), now=12.0)
    assert state.free_at() == 12.0  # released: free from when we saw it
    state.observe(lease(OTHER, "3"), now=13.0)
    state.forget_lease(now=14.0)  # deleted
    assert state.free_at() == 14.0
    state.forget_lease(now=20.0)  # still missing: no newer news
    assert state.free_at() == 14.0
    state.wrote(lease(ME, "4"), sent_at=21.0, now=21.1)
    assert state.free_at() is None  # ours


def test_a_stale_version_seen_late_only_postpones_expiry():
    """A watch may deliver an older version after a read returned a newer one: judging by it
    restarts the wait (later, never earlier), and the takeover's own read decides anyway."""
    state = ElectionState(ME, config())
    state.observe(lease(OTHER, "11"), now=100.0)
    state.observe(lease(OTHER, "10"), now=101.0)  # late, older
    assert state.expires_at() == 116.0 > 115.0


def test_leading_ends_a_renew_deadline_after_the_last_good_write_was_sent():
    state = ElectionState(ME, config(lease_duration=15, renew_deadline=10))
    state.wrote(lease(ME, "7"), sent_at=50.0, now=50.8)  # the answer took 0.8 s
    assert state.leading(now=59.9)
    assert not state.leading(now=60.0)  # counted from sending, not from the answer
    assert state.leading_until() == 60.0


def test_a_write_that_names_someone_else_is_not_leading():
    state = ElectionState(ME, config())
    state.wrote(lease(ME, "7"), sent_at=0.0, now=0.1)
    state.observe(lease(OTHER, "8"), now=1.0)
    assert not state.holding
    assert not state.leading(now=1.0)
    assert state.leading_until() is None


def test_the_leader_stops_before_any_standby_may_start():
    timings = config(lease_duration=15, renew_deadline=10)
    leader, standby = ElectionState(ME, timings), ElectionState(OTHER, timings)
    written = lease(ME, "9")
    leader.wrote(written, sent_at=1000.0, now=1000.2)
    standby.observe(written, now=1000.1)  # seen as early as possible: right after the write
    assert leader.leading_until() + timings.safety_margin <= standby.expires_at() + 0.1
    assert standby.held_by_other(now=leader.leading_until())


# the records written ---------------------------------------------------------------------------


def test_creating_starts_at_zero_transitions():
    spec = ElectionState(ME, config()).acquire_or_renew_spec(WALL)
    assert spec == {
        "holderIdentity": ME,
        "leaseDurationSeconds": 15,
        "acquireTime": "2030-01-02T03:04:05.678901Z",
        "renewTime": "2030-01-02T03:04:05.678901Z",
        "leaseTransitions": 0,
    }


def test_taking_over_counts_a_transition_and_renewing_keeps_acquire_time():
    state = ElectionState(ME, config())
    state.observe(lease(OTHER, "3", transitions=4), now=0.0)
    takeover = state.acquire_or_renew_spec(WALL)
    assert (takeover["leaseTransitions"], takeover["acquireTime"]) == (5, takeover["renewTime"])
    state.wrote(lease(ME, "4", transitions=5), sent_at=20.0, now=20.1)
    renewal = state.acquire_or_renew_spec(WALL)
    assert renewal["leaseTransitions"] == 5
    assert renewal["acquireTime"] == "2030-01-01T00:00:00.000000Z"
    assert renewal["renewTime"] == "2030-01-02T03:04:05.678901Z"


def test_taking_over_a_released_lease_is_a_transition_too():
    state = ElectionState(ME, config())
    state.observe(lease("", "3", seconds=1, transitions=2), now=0.0)
    assert state.acquire_or_renew_spec(WALL)["leaseTransitions"] == 3


def test_release_empties_the_holder_with_a_one_second_lease():
    state = ElectionState(ME, config())
    state.wrote(lease(ME, "4", transitions=5), sent_at=0.0, now=0.0)
    spec = state.release_spec(WALL)
    assert spec["holderIdentity"] == ""
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 5
