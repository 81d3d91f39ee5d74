"""`canaryctl.gateway.model`: the lazily decided `Verdict` behind `AppState.conforms`."""

from __future__ import annotations

import dataclasses

import pytest

from canaryctl.gateway.model import AppSpec, AppState, Upstream, Verdict

V1 = Upstream("demo", "v1", "v1.demo.svc.cluster.local", 80)
V2 = Upstream("demo", "v2", "v2.demo.svc.cluster.local", 80)


def counting(answer: bool) -> tuple[Verdict, list[int]]:
    asked: list[int] = []
    return Verdict(lambda: asked.append(1) or answer), asked


@pytest.mark.parametrize("answer", [True, False])
def test_a_verdict_decides_once_when_first_asked(answer):
    verdict, asked = counting(answer)
    assert asked == []
    assert bool(verdict) is answer and bool(verdict) is answer
    assert asked == [1]


@pytest.mark.parametrize("answer", [True, False])
def test_a_verdict_compares_and_hashes_as_its_bool(answer):
    verdict, _ = counting(answer)
    assert verdict == answer and verdict != (not answer)
    assert hash(verdict) == hash(answer) and repr(verdict) == repr(answer)
    assert verdict == counting(answer)[0] and verdict != counting(not answer)[0]


def test_states_with_an_equal_verdict_are_equal():
    state = AppState("a", True, V1, V2, 10, conforms=True)
    assert state == dataclasses.replace(state, conforms=counting(True)[0])
    assert state != dataclasses.replace(state, conforms=counting(False)[0])


@pytest.mark.parametrize(
    "spec, asks",
    [
        (AppSpec("a", V1, V2, 20), False),  # another weight: decided without conformity
        (AppSpec("a", V2, V1, 10), False),  # other upstreams
        (AppSpec("a", V1, V2, 10, owner="team"), False),  # another owner
        (AppSpec("a", V1, V2, 10), True),  # all else equal: only conformity can tell
    ],
)
def test_matches_asks_conformity_last(spec, asks):
    verdict, asked = counting(False)
    state = AppState("a", True, V1, V2, 10, conforms=verdict)
    assert not state.matches(spec)
    assert asked == ([1] if asks else [])
