"""A Service's ClusterIP, from the API object to the analysis query, for real APISIX's metrics
(its `node` label is the address it balanced to: the ClusterIP of a Service DNS node)."""

from __future__ import annotations

from datetime import UTC, datetime

from canaryctl.annotations import STATUS, Member, parse_member
from canaryctl.decision import due_check
from canaryctl.gateway.model import Upstream
from canaryctl.objects import Service
from canaryctl.outcome import AppInputs
from canaryctl.release.analysis import APISIX_QUERIES, VARIABLES, QueryTemplates
from canaryctl.release.state import ReleaseState
from canaryctl.status import MemberStatus

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def service(name: str, cluster_ip: str, **annotations: str) -> Service:
    return Service.from_dict(
        {
            "metadata": {
                "namespace": "shop",
                "name": name,
                "annotations": {"api7.cloud/published-service": "web", **annotations},
            },
            "spec": {"clusterIP": cluster_ip, "ports": [{"name": "http", "port": 80}]},
        }
    )


def test_the_clusterip_rides_on_the_upstream_but_never_changes_what_the_gateway_holds():
    member = parse_member(service("web-v1", "10.96.0.10"), "cluster.local")
    assert isinstance(member, Member) and member.upstream.cluster_ip == "10.96.0.10"
    as_read_back = Upstream("shop", "web-v1", "web-v1.shop.svc.cluster.local", 80)
    assert member.upstream == as_read_back and hash(member.upstream) == hash(as_read_back)


def test_a_due_check_asks_prometheus_about_each_sides_clusterip():
    stable = service("web-v1", "10.96.0.10")
    step_started = datetime(2026, 6, 1, 11, 58, tzinfo=UTC)  # two minutes into step 10 %
    release = ReleaseState("Progressing", 0, 10, step_started, percent_seen=10)
    canary = service(
        "web-v2",
        "10.96.0.11",
        **{
            "api7.cloud/published-canary-service": "true",
            "api7.cloud/published-service-canary-percentage": "10",
            "api7.cloud/canary-steps": "10,50",
            STATUS: MemberStatus("canary", "web", 10, "Canary", "", release=release).render(NOW),
        },
    )
    request = due_check(AppInputs("web", (stable, canary), None, NOW))
    assert request is not None
    assert (request.canary.cluster_ip, request.stable.cluster_ip) == ("10.96.0.11", "10.96.0.10")
    rendered = APISIX_QUERIES.render(APISIX_QUERIES.requests, request.canary, "20s")
    assert rendered == 'sum(increase(apisix_http_status{node="10.96.0.11"}[20s]))'


def test_cluster_ip_is_a_query_variable_and_the_apisix_defaults_use_it_everywhere():
    assert "cluster_ip" in VARIABLES
    QueryTemplates(requests="sum(x{node='{cluster_ip}'})")  # accepted, not an unknown variable
    for template in (
        APISIX_QUERIES.requests,
        APISIX_QUERIES.errors,
        APISIX_QUERIES.latency_p99,
        APISIX_QUERIES.latency_buckets,
    ):
        assert 'node="{cluster_ip}"' in template and "{target}" not in template
