"""Predicate canaries, pure: the `canary-match` grammar, what each gateway can express, how the
decision applies a match, and the match-only first stage of an automated release."""

from __future__ import annotations

from datetime import UTC, datetime
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canaryctl import annotations as ann
from canaryctl.decision import decide
from canaryctl.gateway.api7.bodies import canary_body, rules_match
from canaryctl.gateway.apisix.bodies import match_vars, vars_match
from canaryctl.gateway.gatewayapi.route import match_from, match_of
from canaryctl.gateway.model import AppSpec, AppState, MatchTerm, Upstream
from canaryctl.matching import MATCH, describe, parse_match, unsupported
from canaryctl.objects import Service, ServicePort
from canaryctl.outcome import AppInputs
from canaryctl.problems import Invalid
from canaryctl.release.config import STEPS, ReleaseConfig, parse_release
from canaryctl.release.decide import start

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HEADER = MatchTerm("header", "x-canary", "always")


def up(name: str) -> Upstream:
    return Upstream("demo", name, f"{name}.demo.svc.cluster.local", 80)


def svc(name: str, **annotations: str) -> Service:
    return Service(
        "demo", name, "uid-" + name, "1", MappingProxyType(annotations), (ServicePort("http", 80),)
    )


def canary(percent: str = "0", **more: str) -> Service:
    return svc(
        "v2",
        **{
            ann.APP: "shop",
            ann.CANARY: "true",
            ann.PERCENT: percent,
            MATCH: "header:X-Canary=always",
        },
        **more,
    )


# --- the grammar -----------------------------------------------------------------------------

VALID = {
    "header:X-Canary=always": (HEADER,),
    " header:X-Canary=always ": (HEADER,),
    "cookie:beta=1,query:region~^eu-": (
        MatchTerm("cookie", "beta", "1"),
        MatchTerm("query", "region", "^eu-", True),
    ),
    r"header:X-Team=a\,b": (MatchTerm("header", "x-team", "a,b"),),
    "query:v~^(1|2)$": (MatchTerm("query", "v", "^(1|2)$", True),),
}
INVALID = [
    "",
    "header:X-Canary",  # no operator
    "header:=x",  # no name
    "body:x=1",  # an unknown kind
    "header:X-Canary=",  # an empty value
    "header:a=1,header:A=2",  # the same header twice
    "header:a~(?=x)",  # look-ahead: not RE2
    r"header:a~(x)\1",  # a back-reference: not RE2
    "header:a~[",  # not a regular expression at all
    "header:a=" + "x" * 300,  # too long
    "header:a=line\nbreak",  # a control character
    "header:a=x\\",  # ends with a backslash: ambiguous before a comma
]


@pytest.mark.parametrize("text, expected", VALID.items(), ids=list(VALID))
def test_valid_matches_parse_to_their_terms(text, expected):
    assert parse_match(text) == expected


@pytest.mark.parametrize("text", INVALID)
def test_invalid_matches_name_the_annotation_the_value_and_what_is_accepted(text):
    result = parse_match(text)
    assert isinstance(result, Invalid)
    message = result.message
    assert MATCH in message and "header, cookie, query" in message


terms = st.builds(
    MatchTerm,
    st.sampled_from(["header", "cookie", "query"]),
    st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20).filter(
        lambda value: not value.endswith("\\")
    ),
    st.just(False),
)


@given(st.lists(terms, min_size=1, max_size=3, unique_by=lambda t: (t.kind, t.name)))
def test_the_written_form_reads_back_as_the_same_match(found):
    match = tuple(found)
    assert parse_match(describe(match)) == match


# --- what each gateway can express --------------------------------------------------------------

CAN = [
    ("api7", (HEADER,), 0),
    ("apisix", (HEADER,), 30),
    ("gateway-api", (HEADER, MatchTerm("cookie", "beta", "1")), 30),
]
CANNOT = [
    ("api7", (HEADER,), 10, "by percentage or by rule, not both"),
    ("apisix", (MatchTerm("header", "x_team", "a"),), 0, "nginx variables"),
    ("gateway-api", (MatchTerm("cookie", "beta", "^1", True),), 0, "regular expression"),
    (
        "gateway-api",
        (MatchTerm("header", "cookie", "a"), MatchTerm("cookie", "b", "1")),
        0,
        "Cookie header twice",
    ),
]


@pytest.mark.parametrize("backend, match, weight", CAN)
def test_what_a_gateway_can_express(backend, match, weight):
    assert unsupported(backend, match, weight) == ""


@pytest.mark.parametrize("backend, match, weight, why", CANNOT)
def test_what_a_gateway_cannot_express_is_said_plainly(backend, match, weight, why):
    assert why in unsupported(backend, match, weight)


def test_each_backend_writes_a_match_it_reads_back():
    match = (HEADER, MatchTerm("cookie", "beta", "1"), MatchTerm("query", "r", "^eu-", True))
    spec = AppSpec("shop", up("v1"), up("v2"), 0, "demo", match=match)
    assert rules_match(canary_body(spec)) == match
    assert canary_body(spec)["type"] == "rule"
    assert vars_match(match_vars(match)) == match
    assert match_from(match_of(match)) == match


# --- the decision -----------------------------------------------------------------------------


def decide_for(members, observed=None, backend="api7"):
    return decide(AppInputs("shop", tuple(members), observed, NOW, backend=backend))


def owned(weight: int = 0, match=()) -> AppState:
    return AppState("shop", True, up("v1"), up("v2"), weight, owner="demo", match=match)


def test_a_canary_at_0_percent_with_a_match_is_published_with_it():
    outcome = decide_for([svc("v1", **{ann.APP: "shop"}), canary()])
    assert outcome.gateway == "apply" and outcome.spec.match == (HEADER,)
    assert "every request matching header:x-canary=always" in outcome.statuses["demo/v2"].message
    added = next(n for n in outcome.notices if n.reason == "CanaryAdded")
    assert "requests matching header:x-canary=always" in added.message


def test_a_match_the_gateway_cannot_express_holds_with_a_warning():
    outcome = decide_for([svc("v1", **{ann.APP: "shop"}), canary("10")], owned(0, (HEADER,)))
    assert outcome.gateway == "keep" and outcome.held
    [warning] = outcome.warnings
    assert warning.reason == "MatchUnsupported" and "API7 Cloud" in warning.message
    assert MATCH in warning.message and "header:x-canary=always" in warning.message
    assert outcome.statuses["demo/v2"].phase == "Unsupported"
    assert decide_for([svc("v1", **{ann.APP: "shop"}), canary("10")], backend="apisix").spec


def test_a_changed_match_is_one_write_and_says_so():
    before = (MatchTerm("header", "x-canary", "beta"),)
    outcome = decide_for([svc("v1", **{ann.APP: "shop"}), canary()], owned(0, before))
    assert outcome.gateway == "apply"
    assert [n.reason for n in outcome.notices] == ["CanaryMatchChanged"]
    assert outcome.notices[0].message.endswith("header:x-canary=beta -> header:x-canary=always")
    again = decide_for([svc("v1", **{ann.APP: "shop"}), canary()], owned(0, (HEADER,)))
    assert again.gateway == "keep" and not again.notices  # restart, resync: nothing to write


def test_an_invalid_match_holds_like_any_invalid_annotation():
    bad = svc("v2", **{ann.APP: "shop", ann.CANARY: "true", MATCH: "header:X-Canary"})
    outcome = decide_for([svc("v1", **{ann.APP: "shop"}), bad], owned())
    assert outcome.gateway == "keep"
    assert [w.reason for w in outcome.warnings] == ["InvalidAnnotation"]


def test_a_match_on_the_stable_is_not_routed():
    stable = svc("v1", **{ann.APP: "shop", MATCH: "header:X-Canary=always"})
    outcome = decide_for([stable])
    assert outcome.spec == AppSpec("shop", up("v1"), owner="demo")


# --- the match-only first stage --------------------------------------------------------------


def test_a_release_can_start_with_a_match_only_stage():
    config = parse_release(canary(**{STEPS: "match,10,50"}))
    assert isinstance(config, ReleaseConfig) and config.steps == (0, 10, 50, 100)
    decision = start(config, NOW)
    assert (decision.state.weight, decision.state.step, decision.state.phase) == (
        0,
        0,
        "Progressing",
    )
    assert "only requests matching" in decision.events[0].message


def test_a_match_stage_needs_a_match():
    service = svc("v2", **{ann.APP: "shop", ann.CANARY: "true", STEPS: "match,10"})
    result = parse_release(service)
    assert isinstance(result, Invalid)
    assert "a match stage needs api7.cloud/canary-match" in result.message
