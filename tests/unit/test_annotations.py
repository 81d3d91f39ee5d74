"""Annotation parsing: every accepted value, every rejected one, and the port choice rules."""

from __future__ import annotations

import json
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canaryctl import annotations as ann
from canaryctl.annotations import (
    Invalid,
    Member,
    Problem,
    app_of,
    parse_member,
    parse_percent,
    relevant_fingerprint,
)
from canaryctl.gateway.model import Upstream
from canaryctl.objects import Service, ServicePort

DOMAIN = "cluster.local"
HTTP = ServicePort("http", 80)


def service(
    annotations: dict[str, str] | None = None,
    *,
    name: str = "error-page-v1",
    namespace: str = "demo",
    ports: tuple[ServicePort, ...] = (HTTP,),
    type_: str = "ClusterIP",
) -> Service:
    values = {ann.APP: "error-page", **(annotations or {})}
    return Service(
        namespace=namespace,
        name=name,
        uid="uid-" + name,
        resource_version="1",
        annotations=MappingProxyType({k: v for k, v in values.items() if v is not None}),
        ports=ports,
        type=type_,
    )


def problems_of(view: Service) -> list[Problem]:
    result = parse_member(view, DOMAIN)
    assert isinstance(result, Invalid), f"expected problems, got {result}"
    return list(result.problems)


def member_of(view: Service) -> Member:
    result = parse_member(view, DOMAIN)
    assert isinstance(result, Member), f"expected a member, got {result}"
    return result


# --- constants and fingerprints -------------------------------------------------------------


def test_fingerprint_ignores_status_and_foreign_annotations():
    view = service({ann.PERCENT: "10"})
    touched = service(
        {
            ann.PERCENT: "10",
            ann.STATUS: '{"phase":"Canary"}',
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
        }
    )
    assert relevant_fingerprint(view) == relevant_fingerprint(touched)


@pytest.mark.parametrize(
    "changed",
    [
        service({ann.PERCENT: "20"}),
        service({ann.CANARY: "true"}),
        service({ann.APP: "other"}),
        service({"api7.cloud/future-input": "x"}),
        service(ports=(ServicePort("http", 8080),)),
        service(type_="NodePort"),
    ],
)
def test_fingerprint_changes_with_every_input(changed):
    assert relevant_fingerprint(service()) != relevant_fingerprint(changed)


def test_app_of_strips_and_keeps_invalid_names_for_the_decision():
    assert app_of(service({ann.APP: " error-page\n"})) == "error-page"
    assert app_of(service({ann.APP: "Not_DNS"})) == "Not_DNS"
    assert app_of(service({ann.APP: ""})) == ""
    assert app_of(service({ann.APP: None})) is None


# --- valid members --------------------------------------------------------------------------


def test_stable_member_targets_the_service_dns_name():
    member = member_of(service())
    assert member.app == "error-page"
    assert member.is_canary is False
    assert member.percent is None
    assert member.upstream == Upstream(
        "demo", "error-page-v1", "error-page-v1.demo.svc.cluster.local", 80
    )


def test_canary_member_carries_its_percentage():
    member = member_of(service({ann.CANARY: "true", ann.PERCENT: "10"}))
    assert member.is_canary and member.percent == 10


def test_canary_without_percentage_gets_zero():
    assert member_of(service({ann.CANARY: "true"})).percent == 0


@pytest.mark.parametrize(
    "flag, expected",
    [("true", True), ("TRUE", True), (" True\n", True), ("false", False), ("False", False)],
)
def test_canary_flag_is_case_insensitive_true_or_false(flag, expected):
    assert member_of(service({ann.CANARY: flag})).is_canary is expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0", 0),
        ("100", 100),
        (" 25 ", 25),
        ("10\n", 10),
        ("010", 10),
        ("0100", 100),
        ("0" * 5000 + "7", 7),
    ],
)
def test_percentage_accepts_decimal_integers_up_to_100(value, expected):
    assert member_of(service({ann.CANARY: "true", ann.PERCENT: value})).percent == expected


def test_percentage_is_ignored_on_a_service_without_the_canary_flag():
    assert member_of(service({ann.PERCENT: "30"})).percent is None
    assert member_of(service({ann.CANARY: "false", ann.PERCENT: "30"})).percent is None


def test_cluster_domain_is_used_as_given():
    member = parse_member(service(namespace="shop", name="cart"), "corp.example")
    assert member.upstream.host == "cart.shop.svc.corp.example"


# --- rejected values ------------------------------------------------------------------------


def test_invalid_percentage_message_names_annotation_value_and_accepted_values():
    [problem] = problems_of(service({ann.CANARY: "true", ann.PERCENT: "abc"}))
    assert problem == Problem(ann.PERCENT, "abc", "integers 0-100")
    assert problem.message == (
        'annotation api7.cloud/published-service-canary-percentage="abc" is invalid: '
        "accepted values are integers 0-100"
    )


@pytest.mark.parametrize(
    "value", ["abc", "150", "101", "-1", "10.5", "+5", " ", "", "1e2", "0x10", "10%", "١٠", "5 0"]
)
def test_percentage_rejects_everything_but_integers_0_to_100(value):
    [problem] = problems_of(service({ann.CANARY: "true", ann.PERCENT: value}))
    assert (problem.annotation, problem.value) == (ann.PERCENT, value)
    assert "accepted values are integers 0-100" in problem.message


def test_invalid_percentage_on_a_stable_is_still_reported():
    [problem] = problems_of(service({ann.PERCENT: "150"}))
    assert problem.annotation == ann.PERCENT


@pytest.mark.parametrize("flag", ["yes", "1", "on", "", "truee"])
def test_canary_flag_rejects_anything_but_true_or_false(flag):
    [problem] = problems_of(service({ann.CANARY: flag}))
    assert problem == Problem(ann.CANARY, flag, "true or false")
    assert problem.message == (
        f"annotation api7.cloud/published-canary-service={json.dumps(flag)} is invalid: "
        f"accepted values are true or false"
    )


@pytest.mark.parametrize(
    "app",
    [
        "",
        "   ",
        "Error-Page",
        "error_page",
        "-error",
        "error-",
        "error..page",
        ".error",
        "error page",
        "x" * 254,
        "é",
    ],
)
def test_app_name_must_be_a_dns_subdomain(app):
    [problem] = problems_of(service({ann.APP: app}))
    assert (problem.annotation, problem.value) == (ann.APP, app)
    assert "DNS-1123 subdomain" in problem.message


@pytest.mark.parametrize("app", ["a", "error-page", "shop.error-page", "0abc9", "x" * 253])
def test_app_name_accepts_dns_subdomains(app):
    assert member_of(service({ann.APP: app})).app == app


def test_external_name_service_is_rejected_naming_the_accepted_types():
    [problem] = problems_of(service(type_="ExternalName", ports=()))
    assert (problem.annotation, problem.value) == (ann.APP, "error-page")
    assert "ExternalName" in problem.message
    assert "Services of type ClusterIP, NodePort or LoadBalancer" in problem.message


@pytest.mark.parametrize("ports", [(), (ServicePort("dns", 53, "UDP"),)])
def test_service_without_tcp_ports_is_rejected(ports):
    [problem] = problems_of(service(ports=ports))
    assert (problem.annotation, problem.value) == (ann.APP, "error-page")
    assert "no TCP ports" in problem.message


def test_all_problems_of_a_service_are_reported_together():
    problems = problems_of(
        service({ann.APP: "Bad_Name", ann.CANARY: "yes", ann.PERCENT: "abc"}, ports=())
    )
    assert [p.annotation for p in problems] == [ann.APP, ann.CANARY, ann.PERCENT, ann.APP]


def test_long_values_are_shortened_in_messages():
    [problem] = problems_of(service({ann.CANARY: "true", ann.PERCENT: "9" * 5000}))
    assert problem.value == "9" * 5000
    assert len(problem.message) < 300


def test_control_characters_are_escaped_in_messages():
    [problem] = problems_of(service({ann.CANARY: "tr\nue"}))
    assert "\n" not in problem.message and '"tr\\nue"' in problem.message


# --- port choice ----------------------------------------------------------------------------

WEB, METRICS = ServicePort("web", 8080), ServicePort("metrics", 9090)


def test_only_port_is_chosen_whatever_its_name():
    assert member_of(service(ports=(WEB,))).upstream.port == 8080


def test_unnamed_only_port_is_chosen():
    assert member_of(service(ports=(ServicePort(None, 3000),))).upstream.port == 3000


def test_port_named_http_is_chosen_among_several():
    assert member_of(service(ports=(METRICS, ServicePort("http", 8000)))).upstream.port == 8000


@pytest.mark.parametrize("requested", ["metrics", "9090", " metrics "])
def test_port_annotation_chooses_by_name_or_number(requested):
    view = service({ann.PORT: requested}, ports=(ServicePort("http", 80), METRICS))
    assert member_of(view).upstream.port == 9090


def test_port_annotation_wins_over_the_only_port_and_must_exist():
    [problem] = problems_of(service({ann.PORT: "8080"}, ports=(HTTP,)))
    assert (problem.annotation, problem.value) == (ann.PORT, "8080")
    assert problem.message.endswith(
        "accepted values are this Service's port names or numbers: http or 80"
    )


def test_udp_ports_are_not_candidates():
    view = service(ports=(ServicePort("dns", 53, "UDP"), ServicePort("dns-tcp", 53)))
    assert member_of(view).upstream.port == 53
    [problem] = problems_of(service({ann.PORT: "dns"}, ports=(ServicePort("dns", 53, "UDP"), WEB)))
    assert problem.annotation == ann.PORT


def test_several_ports_without_http_need_the_port_annotation():
    [problem] = problems_of(service(ports=(WEB, METRICS, ServicePort(None, 7000))))
    assert (problem.annotation, problem.value) == (ann.PORT, None)
    assert problem.message == (
        "annotation api7.cloud/published-service-port is not set (the Service has 3 ports "
        'and none is named "http"): accepted values are this Service\'s port names or '
        "numbers: web or 8080, metrics or 9090, 7000"
    )


# --- properties -----------------------------------------------------------------------------


def test_every_integer_0_to_100_is_accepted():
    assert [parse_percent(str(n)) for n in range(101)] == list(range(101))


@given(st.text())
def test_percentage_accepts_only_zero_padded_decimal_digits_of_0_to_100(text):
    percent = parse_percent(text)
    if percent is not None:
        assert 0 <= percent <= 100
        assert text.strip().lstrip("0") == str(percent).lstrip("0")


@given(st.integers().filter(lambda n: not 0 <= n <= 100))
def test_integers_outside_0_to_100_are_rejected(number):
    assert parse_percent(str(number)) is None


@given(st.floats().filter(lambda number: not number.is_integer()))
def test_fractions_are_rejected(number):
    assert parse_percent(str(number)) is None


annotation_values = st.one_of(
    st.none(), st.text(), st.sampled_from(["true", "false", "10", "http", "80"])
)


@given(
    app=annotation_values,
    canary=annotation_values,
    percent=annotation_values,
    port=annotation_values,
    type_=st.sampled_from(["ClusterIP", "NodePort", "LoadBalancer", "ExternalName", "Weird"]),
    ports=st.lists(
        st.builds(
            ServicePort,
            st.one_of(st.none(), st.sampled_from(["http", "web"])),
            st.integers(0, 65535),
            st.sampled_from(["TCP", "UDP", "SCTP"]),
        ),
        max_size=3,
    ),
)
def test_parse_member_never_raises_and_problems_always_explain(
    app, canary, percent, port, type_, ports
):
    view = service(
        {ann.APP: app, ann.CANARY: canary, ann.PERCENT: percent, ann.PORT: port},
        ports=tuple(ports),
        type_=type_,
    )
    result = parse_member(view, DOMAIN)
    if isinstance(result, Member):
        assert result.app == app.strip()
        assert result.upstream.port in {p.port for p in ports}
        assert result.percent is None or 0 <= result.percent <= 100
    else:
        assert result.problems, "a rejected Service names at least one problem"
        for problem in result.problems:
            assert problem.annotation in {ann.APP, ann.CANARY, ann.PERCENT, ann.PORT}
            assert (
                problem.annotation in problem.message and "accepted values are" in problem.message
            )
