"""`canaryctl status` rows and table, built from Services as the API returns them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from canaryctl.annotations import APP, CANARY, STATUS
from canaryctl.commands.status import COLUMNS, Row, Step, format_table, row_to_dict, rows_of
from canaryctl.objects import Service
from canaryctl.release.config import STEPS
from canaryctl.release.state import CheckResult, MetricCheck, ReleaseState

NOW = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)
FAILED_CHECK = CheckResult(
    "fail",
    "error rate 30.2 % > 1 %",
    57.0,
    30,
    (MetricCheck("latency_p99", 80.0, 500.0, True), MetricCheck("error_rate", 30.2, 1.0, False)),
)


def service(
    name: str, namespace: str = "shop", status: object | None = None, **annotations: str
) -> Service:
    """A Service as the API returns it; `status` is JSON-encoded unless it is already text."""
    if status is not None:
        annotations[STATUS] = status if isinstance(status, str) else json.dumps(status)
    return Service.from_dict(
        {
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
            "spec": {"ports": [{"port": 80}]},
        }
    )


def status(
    role: str,
    app: str,
    desired: int | None,
    applied: int | None,
    phase: str,
    message: str = "",
    release: ReleaseState | None = None,
) -> dict:
    doc = {
        "role": role,
        "app": app,
        "desiredWeight": desired,
        "appliedWeight": applied,
        "phase": phase,
        "message": message,
        "time": "2024-06-01T11:59:00Z",
    }
    if release is not None:
        doc["release"] = release.to_dict()
    return doc


def release(
    phase="Progressing", step=2, weight=25, check=None, checked_ago=None, reason=""
) -> ReleaseState:
    return ReleaseState(
        phase,
        step,
        weight,
        NOW - timedelta(minutes=5),
        last_check=check,
        reason=reason,
        last_check_at=None if checked_ago is None else NOW - checked_ago,
    )


def table_lines(rows) -> list[list[str]]:
    """The table split back into cells (cells never contain two spaces in a row)."""
    lines = format_table(rows, NOW).splitlines()
    return [[cell.strip() for cell in line.split("  ") if cell.strip()] for line in lines]


def test_an_automated_canary_and_its_stable_make_one_row():
    views = [
        service("web-v1", status=status("stable", "web", 75, 75, "Stable")),
        service(
            "web-v2",
            status=status(
                "canary",
                "web",
                25,
                25,
                "Canary",
                release=release(check=FAILED_CHECK, checked_ago=timedelta(seconds=12)),
            ),
            **{STEPS: "5,10,25,50"},
        ),
    ]
    [row] = rows_of(views)
    assert (row.namespace, row.app, row.stables, row.canary) == (
        "shop",
        "web",
        ("shop/web-v1",),
        "shop/web-v2",
    )
    assert (row.desired_weight, row.applied_weight, row.phase) == (25, 25, "Progressing")
    assert row.step == Step(number=3, count=5, weight=25, scheduled=25)
    assert table_lines([row]) == [
        list(COLUMNS),
        [
            "shop",
            "web",
            "web-v1",
            "web-v2",
            "25/25",
            "Progressing",
            "3/5 25%",
            "fail error_rate 30.2% > 1%, 12s ago",
        ],
    ]


def test_an_app_without_canary_gets_one_row_with_its_status_phase():
    [row] = rows_of(
        [service("api", status=status("stable", "api", 100, 100, "Stable", "default upstream"))]
    )
    assert (row.app, row.stables, row.canary, row.phase, row.message) == (
        "api",
        ("shop/api",),
        None,
        "Stable",
        "default upstream",
    )
    assert table_lines([row])[1] == ["shop", "api", "api", "-", "-", "Stable", "-", "-"]


def test_a_manual_canary_shows_its_status_phase_and_no_step():
    views = [
        service("v1", status=status("stable", "web", 90, 90, "Stable")),
        service("v2", status=status("canary", "web", 10, None, "Canary")),
    ]
    assert table_lines(rows_of(views))[1] == [
        "shop",
        "web",
        "v1",
        "v2",
        "10/-",
        "Canary",
        "-",
        "-",
    ]


def test_garbage_status_is_shown_as_unknown_under_its_published_app():
    views = [
        service("broken", status="{not json", **{APP: "legacy"}),
        service("list", status="[1, 2]"),
        service(
            "typed",
            status={
                "role": 7,
                "app": ["x"],
                "desiredWeight": "50",
                "appliedWeight": True,
                "phase": None,
                "release": {"phase": "Nope"},
            },
            **{APP: "typed-app"},
        ),
    ]
    rows = {row.stables: row for row in rows_of(views)}
    broken, listed, typed = rows[("shop/broken",)], rows[("shop/list",)], rows[("shop/typed",)]
    assert (broken.app, broken.phase) == ("legacy", "Unknown")
    assert "not a JSON object" in broken.message
    assert (listed.app, listed.phase) == ("", "Unknown")
    assert (typed.app, typed.phase, typed.desired_weight, typed.step) == (
        "typed-app",
        "Unknown",
        None,
        None,
    )
    assert table_lines([listed])[1] == ["shop", "-", "list", "-", "-", "Unknown", "-", "-"]


def test_services_without_an_app_do_not_merge_into_one_row():
    rows = rows_of([service("a", status="oops"), service("b", status="oops")])
    assert sorted(row.stables for row in rows) == [("shop/a",), ("shop/b",)]


def test_services_without_status_are_not_listed():
    assert rows_of([service("plain", **{APP: "web"})]) == []


def test_a_held_app_shows_the_hold_before_the_release_phase():
    views = [
        service("v1", status=status("none", "web", None, None, "Invalid", "bad port")),
        service(
            "v2",
            status=status("none", "web", None, None, "Holding", "waiting for v1"),
            **{CANARY: "true"},
        ),
    ]
    [row] = rows_of(views)
    assert (row.stables, row.canary, row.phase, row.message) == (
        ("shop/v1",),
        "shop/v2",
        "Invalid",
        "bad port",
    )


def test_two_canaries_get_a_row_each():
    views = [
        service("v1", status=status("stable", "web", 100, 100, "Stable")),
        service(
            "v2",
            status=status("none", "web", None, None, "Conflict", "two canaries"),
            **{CANARY: "true"},
        ),
        service(
            "v3",
            status=status("none", "web", None, None, "Conflict", "two canaries"),
            **{CANARY: "true"},
        ),
    ]
    rows = rows_of(views)
    assert [(row.canary, row.phase) for row in rows] == [
        ("shop/v2", "Conflict"),
        ("shop/v3", "Conflict"),
    ]


def test_members_in_other_namespaces_are_named_with_their_namespace():
    views = [
        service("v1", namespace="prod", status=status("stable", "web", 90, 90, "Stable")),
        service("v2", namespace="canary", status=status("canary", "web", 10, 10, "Canary")),
    ]
    [row] = rows_of(views)
    assert table_lines([row])[1][:4] == ["canary", "web", "prod/v1", "v2"]


def test_a_paused_release_explains_itself_and_shows_a_hand_set_weight():
    paused = release("Paused", step=2, weight=20, reason="weight set by hand to 20 %")
    [row] = rows_of(
        [
            service(
                "v2",
                status=status("canary", "web", 20, 20, "Canary", release=paused),
                **{STEPS: "5,10,25"},
            )
        ]
    )
    assert (row.phase, row.message) == ("Paused", "weight set by hand to 20 %")
    assert table_lines([row])[1][6] == "20% (before 3/4)"


def test_a_step_without_a_readable_schedule_shows_a_question_mark():
    [row] = rows_of(
        [
            service(
                "v2",
                status=status("canary", "web", 25, 25, "Canary", release=release()),
                **{STEPS: "garbage"},
            )
        ]
    )
    assert table_lines([row])[1][6] == "3/? 25%"


def test_last_check_cells_for_each_outcome():
    def cell(check: CheckResult, ago: timedelta | None) -> str:
        view = service(
            "v2",
            status=status(
                "canary", "web", 25, 25, "Canary", release=release(check=check, checked_ago=ago)
            ),
        )
        return table_lines(rows_of([view]))[1][7]

    assert (
        cell(
            CheckResult("pass", "fine", 100.0, 30, (MetricCheck("error_rate", 0.1, 1.0, True),)),
            timedelta(minutes=3),
        )
        == "pass, 3m ago"
    )
    assert (
        cell(CheckResult("no_data", "few", 3.4, 30), timedelta(hours=5))
        == "no-data (3 requests), 5h ago"
    )
    assert cell(CheckResult("error", "prometheus down"), timedelta(days=3)) == "error, 3d ago"
    assert (
        cell(
            CheckResult(
                "fail", "slow", 90.0, 30, (MetricCheck("latency_p99", 812.345, 500.0, False),)
            ),
            None,
        )
        == "fail latency_p99 812.3ms > 500ms"
    )
    statistical = MetricCheck("slow_requests", 8.0, 1.2, False, 0.2)  # compare=statistical
    assert cell(CheckResult("fail", "", 1000.0, 30, (statistical,)), None) == (
        "fail slow_requests 8% > 1.2%"
    )


def test_json_rows_carry_full_keys_and_the_check():
    views = [
        service("web-v1", status=status("stable", "web", 75, 75, "Stable")),
        service(
            "web-v2",
            status=status(
                "canary",
                "web",
                25,
                25,
                "Canary",
                release=release(check=FAILED_CHECK, checked_ago=timedelta(seconds=12)),
            ),
            **{STEPS: "5,10,25,50"},
        ),
    ]
    [row] = rows_of(views)
    document = json.loads(json.dumps(row_to_dict(row)))
    assert document["stable"] == ["shop/web-v1"] and document["canary"] == "shop/web-v2"
    assert document["step"] == {"number": 3, "count": 5, "weight": 25, "scheduledWeight": 25}
    assert document["lastCheck"]["at"] == "2024-06-01T11:59:48Z"
    assert document["lastCheck"]["metrics"][1] == {
        "name": "error_rate",
        "value": 30.2,
        "threshold": 1.0,
        "passed": False,
    }


def test_rows_are_sorted_by_namespace_then_app():
    views = [
        service("b", namespace="z", status=status("stable", "b", 100, 100, "Stable")),
        service("a2", namespace="a", status=status("stable", "zeta", 100, 100, "Stable")),
        service("a1", namespace="a", status=status("stable", "alpha", 100, 100, "Stable")),
    ]
    assert [(row.namespace, row.app) for row in rows_of(views)] == [
        ("a", "alpha"),
        ("a", "zeta"),
        ("z", "b"),
    ]


def test_table_columns_line_up():
    rows = [
        Row("ns", "a-very-long-application-name", ("ns/s",), None, None, None, "Stable", ""),
        Row("namespace-2", "b", ("namespace-2/s",), "namespace-2/c", 5, 5, "Canary", ""),
    ]
    lines = format_table(rows, NOW).splitlines()
    starts = {
        line.index(cell) for line, cell in zip(lines, ("APP", "a-very-long", "b  "), strict=False)
    }
    assert len(starts) == 1


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
status_texts = st.text(max_size=200) | st.fixed_dictionaries(
    {},
    optional={
        "role": json_values | st.sampled_from(["stable", "canary"]),
        "app": json_values,
        "phase": json_values,
        "message": json_values,
        "desiredWeight": json_values,
        "appliedWeight": json_values,
        "release": json_values,
    },
).map(json.dumps)


@given(status_texts)
def test_any_status_annotation_yields_one_table_line(text):
    [row] = rows_of([service("s", status=text, **{APP: "web"})])
    assert row.stables == ("shop/s",) or row.canary == "shop/s"
    lines = format_table([row], NOW).splitlines()
    assert len(lines) == 2 and all(char.isprintable() for char in lines[1])
