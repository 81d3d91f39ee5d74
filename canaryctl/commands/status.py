"""Show canary releases from the cluster: one row per canary, and one per application without one.

Everything shown is read from the `api7.cloud/canary-status` annotations the controller
writes on member Services (plus the canary's `api7.cloud/canary-steps` for the step count),
so the command needs nothing but read access to Services, and shows the last known state
even while the controller is down. A status that cannot be read is shown as `Unknown`,
never an error: one broken annotation must not hide every other release.

Columns: WEIGHT is the canary's desired/applied share in percent (`-`: unknown); PHASE is
the release phase of an automated canary (Progressing, Paused, Succeeded, RolledBack,
Aborted), else the status phase (Stable, Canary, Promoted, Holding, Invalid, Conflict);
an application on hold shows its hold phase first. STEP is `3/5 25%` (step 3 of 5 at 25 %),
or `20% (before 3/5)` for a hand-set weight. LAST CHECK is the result, the first failing
metric's value against its threshold, and the check's age.

Default namespace: the kubeconfig context's, else `default`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.config.config_exception import ConfigException

from canaryctl import yamlout
from canaryctl.annotations import CANARY, STATUS, app_of
from canaryctl.kube import (
    add_kube_flags,
    context_namespace,
    describe_error,
    list_services,
    load_api_client,
    service_list_request,
)
from canaryctl.objects import Service
from canaryctl.release.config import STEPS, parse_steps
from canaryctl.release.state import CheckResult, ReleaseState
from canaryctl.status import MemberStatus
from canaryctl.timestamps import format_utc

HOLD_PHASES = ("Conflict", "Invalid", "Holding")  # an application on hold: most telling first
UNKNOWN = "Unknown"
COLUMNS = ("NAMESPACE", "APP", "STABLE", "CANARY", "WEIGHT", "PHASE", "STEP", "LAST CHECK")
_UNITS = {"error_rate": "%", "latency_p99": "ms", "slow_requests": "%"}


@dataclass(frozen=True)
class Step:
    """Where an automated release stands in its schedule."""

    number: int  # 1-based
    count: int | None  # steps in the schedule; None when canary-steps is gone or unreadable
    weight: int  # the canary weight the release wants
    scheduled: (
        int | None
    )  # the schedule's weight at this step; differs from `weight` when set by hand


@dataclass(frozen=True)
class Row:
    """One canary (or one application without a canary), as `canaryctl status` shows it."""

    namespace: str
    app: str
    stables: tuple[str, ...]  # namespace/name of each non-canary member
    canary: str | None  # namespace/name
    desired_weight: int | None
    applied_weight: int | None
    phase: str
    message: str  # the release's reason, or the status message of the member that set the phase
    step: Step | None = None
    last_check: CheckResult | None = None
    last_check_at: datetime | None = None


@dataclass(frozen=True)
class _Member:
    """A Service's status annotation, read leniently."""

    service: Service
    app: str
    is_canary: bool
    phase: str
    message: str
    desired: int | None
    applied: int | None
    release: ReleaseState | None


def rows_of(services: Iterable[Service]) -> list[Row]:
    """One row per canary and per app without one, from Services with a status annotation."""
    apps: dict[str, list[_Member]] = {}
    for service in services:
        if STATUS in service.annotations:
            member = _read_member(service)
            apps.setdefault(member.app or "/" + service.key, []).append(
                member
            )  # no app: a group of its own
    rows = [
        row
        for members in apps.values()
        for row in _rows_of_app(sorted(members, key=lambda m: m.service.key))
    ]
    return sorted(rows, key=lambda row: (row.namespace, row.app, row.canary or ""))


def format_table(rows: Sequence[Row], now: datetime) -> str:
    """A kubectl-style table: left-aligned columns two spaces apart, ages relative to `now`."""
    cells = [COLUMNS] + [tuple(_printable(cell) for cell in _cells(row, now)) for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
        for line in cells
    )


def row_to_dict(row: Row) -> dict[str, Any]:
    """The row for `-o json`: full Service keys, times in UTC, the check's metrics."""
    step = row.step and {
        "number": row.step.number,
        "count": row.step.count,
        "weight": row.step.weight,
        "scheduledWeight": row.step.scheduled,
    }
    return {
        "namespace": row.namespace,
        "app": row.app,
        "stable": list(row.stables),
        "canary": row.canary,
        "desiredWeight": row.desired_weight,
        "appliedWeight": row.applied_weight,
        "phase": row.phase,
        "message": row.message,
        "step": step,
        "lastCheck": _check_to_dict(row.last_check, row.last_check_at),
    }


# --- reading status annotations -------------------------------------------------------------


def _read_member(service: Service) -> _Member:
    status = MemberStatus.parse(service.annotations[STATUS])
    if status is None:
        status = MemberStatus("none", "", None, "", f"the {STATUS} annotation is not a JSON object")
    role_known = status.role in ("stable", "canary")
    return _Member(
        service=service,
        app=(status.app or app_of(service) or "").strip(),
        is_canary=status.role == "canary" if role_known else _has_canary_flag(service),
        phase=status.phase or UNKNOWN,
        message=status.message,
        desired=status.desired_weight,
        applied=status.applied_weight,
        release=status.release,
    )


def _has_canary_flag(service: Service) -> bool:
    return service.annotations.get(CANARY, "").strip().lower() == "true"


# --- building rows ----------------------------------------------------------------------------


def _rows_of_app(members: list[_Member]) -> list[Row]:
    canaries = [member for member in members if member.is_canary]
    stables = [member for member in members if not member.is_canary]
    return [_row(members, stables, canary) for canary in canaries] or [_row(members, stables, None)]


def _row(members: list[_Member], stables: list[_Member], canary: _Member | None) -> Row:
    lead = canary or stables[0]
    release = canary.release if canary else None
    phase, message = _phase(members, lead, release)
    return Row(
        namespace=lead.service.namespace,
        app=lead.app,
        stables=tuple(m.service.key for m in stables),
        canary=canary.service.key if canary else None,
        desired_weight=canary.desired if canary else None,
        applied_weight=canary.applied if canary else None,
        phase=phase,
        message=message,
        step=_step(lead.service, release) if release else None,
        last_check=release.last_check if release else None,
        last_check_at=release.last_check_at if release else None,
    )


def _phase(members: list[_Member], lead: _Member, release: ReleaseState | None) -> tuple[str, str]:
    """(phase, message): a hold first, then the release's phase, then the lead member's own."""
    for hold in HOLD_PHASES:
        held = next((member for member in members if member.phase == hold), None)
        if held:
            return held.phase, held.message
    if release:
        return release.phase, release.reason or lead.message
    return lead.phase, lead.message


def _step(service: Service, release: ReleaseState) -> Step:
    steps = (
        parse_steps(service.annotations[STEPS].strip()) if STEPS in service.annotations else None
    )
    scheduled = steps[release.step] if steps and release.step < len(steps) else None
    return Step(release.step + 1, len(steps) if steps else None, release.weight, scheduled)


# --- formatting -------------------------------------------------------------------------------


def _cells(row: Row, now: datetime) -> tuple[str, ...]:
    stables = ",".join(_local_name(key, row.namespace) for key in row.stables) or "-"
    canary = _local_name(row.canary, row.namespace) if row.canary else "-"
    return (
        row.namespace or "-",
        row.app or "-",
        stables,
        canary,
        _weight_cell(row),
        row.phase,
        _step_cell(row.step),
        _check_cell(row.last_check, row.last_check_at, now),
    )


def _printable(cell: str) -> str:
    """A cell on one line, without control characters: status annotations are anyone's input."""
    return " ".join("".join(char if char.isprintable() else " " for char in cell).split()) or "-"


def _local_name(key: str, namespace: str) -> str:
    """`name` for a Service in the row's namespace, `namespace/name` for one elsewhere."""
    own, _, name = key.partition("/")
    return name if own == namespace else key


def _weight_cell(row: Row) -> str:
    if row.canary is None:
        return "-"
    return "/".join(
        "-" if weight is None else str(weight)
        for weight in (row.desired_weight, row.applied_weight)
    )


def _step_cell(step: Step | None) -> str:
    if step is None:
        return "-"
    position = f"{step.number}/{'?' if step.count is None else step.count}"
    if step.scheduled in (None, step.weight):
        return f"{position} {step.weight}%"
    return f"{step.weight}% (before {position})"


def _check_cell(check: CheckResult | None, at: datetime | None, now: datetime) -> str:
    if check is None:
        return "-"
    text = check.result.replace("_", "-")
    failing = next((metric for metric in check.metrics if not metric.passed), None)
    if failing:
        unit = _UNITS.get(failing.name, "")
        text += f" {failing.name} {failing.value:.4g}{unit} > {failing.threshold:.4g}{unit}"
    elif check.result == "no_data":
        text += f" ({check.requests:.0f} requests)"
    return text if at is None else f"{text}, {_age((now - at).total_seconds())} ago"


def _age(seconds: float) -> str:
    """kubectl-style age: 45s, 5m, 3h, 2d."""
    seconds = max(0, int(seconds))
    for limit, size, unit in ((120, 1, "s"), (7200, 60, "m"), (172800, 3600, "h")):
        if seconds < limit:
            return f"{seconds // size}{unit}"
    return f"{seconds // 86400}d"


def _check_to_dict(check: CheckResult | None, at: datetime | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "result": check.result,
        "at": None if at is None else format_utc(at),
        "message": check.message,
        "requests": check.requests,
        "metrics": [
            {"name": m.name, "value": m.value, "threshold": m.threshold, "passed": m.passed}
            for m in check.metrics
        ],
    }


# --- the command ------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "-n", "--namespace", help="only this namespace (default: the kubeconfig context's)"
    )
    where.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    add_kube_flags(parser)
    parser.add_argument(
        "-o", "--output", choices=("table", "json", "yaml"), default="table", help="output format"
    )
    parser.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="keep watching: redraw the table on every change (json/yaml: one event per changed "
        "row, as JSON Lines / YAML documents)",
    )


def run(args: argparse.Namespace) -> int:
    namespace = (
        None
        if args.all_namespaces
        else args.namespace or context_namespace(args.kubeconfig, args.context)
    )
    if args.watch:
        from canaryctl.commands.status_watch import watch

        with load_api_client(args.kubeconfig, args.context) as api:
            return watch(api, namespace, args.output)
    try:
        with load_api_client(args.kubeconfig, args.context) as api:
            rows = rows_of(list_services(service_list_request(api, namespace))[0])
    except (client.ApiException, ConfigException, OSError) as error:
        print(f"error: cannot list Services: {describe_error(error)}", file=sys.stderr)
        return 1
    if args.output == "json":
        print(json.dumps([row_to_dict(row) for row in rows], indent=2))
    elif args.output == "yaml":
        print(yamlout.dump([row_to_dict(row) for row in rows]), end="")
    elif rows:
        print(format_table(rows, datetime.now(UTC)))
    else:
        where = "any namespace" if namespace is None else f"namespace {namespace}"
        print(f"No Services with a {STATUS} annotation in {where}.", file=sys.stderr)
    return 0
