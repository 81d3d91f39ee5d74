"""Decide, for one application, what the gateway should hold and what to tell users about it.

This is the heart of the controller and deliberately pure: given the application's member
Services and what the gateway holds under its name, `plan_app` returns one action
(noop / apply / delete / hold), the desired `AppSpec`, Warning and Normal events, and a
status for every member. It depends only on its inputs, never on which event fired, so a
restart, resync or re-list of an unchanged world plans "noop" (product.md §1).

Roles: the stable is the member without the canary flag, or else the flagged member the
gateway already uses as default upstream (a promoted canary stays stable after the old
stable is gone). The canary is the other flagged member. Any doubt (invalid annotations, a
foreign application of the same name, two stables, two canaries, a canary whose stable
vanished below 100 %) is a "hold": the gateway keeps its last good state and the affected
Services get a Warning.

Promotion: when the stable has left and the gateway routes the canary, the canary becomes
the default upstream if it is at 100 % in the gateway, or if 100 % is now asked for
(otherwise the StableMissing warning's advice "set 100 to promote" could never work).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from canaryctl.annotations import APP, CANARY, PERCENT, Member, Problem, parse_member
from canaryctl.gateway.model import AppSpec, AppState, Upstream
from canaryctl.objects import Service
from canaryctl.status import StatusDoc

Action = Literal["noop", "apply", "delete", "hold"]


@dataclass(frozen=True)
class Warning:  # noqa: A001 - the Kubernetes Event type it becomes
    """A Warning Event for one Service: emitted whatever the outcome of the plan."""

    service_key: str
    reason: str  # InvalidAnnotation, Conflict, StableMissing
    message: str


@dataclass(frozen=True)
class Notice:
    """A Normal Event, emitted only once the plan has been applied successfully."""

    service_key: str  # "" for CleanedUp: no member is left to carry it
    reason: str  # Published, CanaryAdded, CanaryWeightChanged, CanaryRemoved, Promoted,
    # StableChanged, UpstreamChanged, DriftCorrected, CleanedUp
    message: str


@dataclass(frozen=True)
class AppPlan:
    """What to do for one application, and what to say about it."""

    app: str
    action: Action
    spec: AppSpec | None  # the desired state for "apply" and "noop"; None for "hold" and "delete"
    warnings: list[Warning]
    notices: list[Notice]
    statuses: dict[str, StatusDoc]  # by Service key, one per current member


def plan_app(
    app: str,
    members: Sequence[Service],
    observed: AppState | None,
    cluster_domain: str,
    weight_override: int | None = None,
) -> AppPlan:
    """Plan application `app` from its member Services and the gateway's current state of it.

    `members` are the Services whose `app_of` is `app`; `observed` is what the gateway holds
    under that name (None if nothing).

    `weight_override`, when given, replaces the canary's percentage annotation (the release
    automation decides the weight); it must be 0-100.
    """
    if weight_override is not None and not 0 <= weight_override <= 100:
        raise ValueError(f"weight_override must be 0-100, got {weight_override}")
    views = sorted(members, key=lambda view: view.key)
    if not views:
        return _plan_without_members(app, observed)
    parsed = [(view, parse_member(view, cluster_domain)) for view in views]
    invalid = {view.key: result for view, result in parsed if isinstance(result, list)}
    foreign = observed is not None and not observed.owned
    if invalid or foreign:
        return _hold_bad_input(app, views, invalid, foreign)
    valid = [result for _, result in parsed if isinstance(result, Member)]
    return _plan_members(app, valid, observed, weight_override)


def _plan_members(
    app: str, valid: list[Member], observed: AppState | None, weight_override: int | None
) -> AppPlan:
    """Assign stable and canary among valid members, then plan the resulting spec."""
    unflagged = [member for member in valid if not member.is_canary]
    if len(unflagged) > 1:
        return _hold_conflict(app, valid, unflagged, _two_stables_message(app, unflagged))
    stable = unflagged[0] if unflagged else _sticky_stable(valid, observed)
    canaries = [member for member in valid if member.is_canary and member is not stable]
    if len(canaries) > 1:
        return _hold_conflict(app, valid, canaries, _two_canaries_message(app, canaries))
    canary = canaries[0] if canaries else None
    if stable is None:  # then every member is flagged, so `canary` is the only one
        return _plan_without_stable(app, canary, observed, weight_override)
    return _plan_spec(_desired_spec(app, stable, canary, weight_override), stable, canary, observed)


def _sticky_stable(valid: list[Member], observed: AppState | None) -> Member | None:
    """The flagged member the gateway already uses as default upstream, if any."""
    if observed is None or observed.stable is None:
        return None
    return next((m for m in valid if m.upstream.key == observed.stable.key), None)


def _desired_spec(
    app: str, stable: Member, canary: Member | None, weight_override: int | None
) -> AppSpec:
    if canary is None:
        return AppSpec(name=app, stable=stable.upstream)
    weight = weight_override if weight_override is not None else canary.percent
    return AppSpec(name=app, stable=stable.upstream, canary=canary.upstream, weight=weight or 0)


def _plan_spec(
    spec: AppSpec, stable: Member, canary: Member | None, observed: AppState | None
) -> AppPlan:
    """Apply `spec` unless the gateway already routes exactly so."""
    statuses = _serving_statuses(spec, stable, canary)
    if observed is not None and observed.matches(spec):
        return AppPlan(spec.name, "noop", spec, [], [], statuses)
    return AppPlan(
        spec.name, "apply", spec, [], _describe_change(observed, spec, stable, canary), statuses
    )


def _plan_without_stable(
    app: str, canary: Member, observed: AppState | None, weight_override: int | None
) -> AppPlan:
    """Only a canary is left: promote it if it already (or is asked to) take everything, else hold."""
    routed = (
        observed is not None
        and observed.canary is not None
        and observed.canary.key == canary.upstream.key
    )
    desired = weight_override if weight_override is not None else canary.percent
    if routed and (observed.weight == 100 or desired == 100):
        return _plan_spec(AppSpec(name=app, stable=canary.upstream), canary, None, observed)
    if routed:
        message = (
            f"the stable of application {app} left while canary {canary.service.key} is at "
            f"{observed.weight} %; not shifting traffic: set {PERCENT}=100 to promote the canary, "
            f"or restore the stable"
        )
    else:
        message = (
            f"canary {canary.service.key} has no stable: no Service publishes application {app} "
            f"without {CANARY}=true; publish the stable first, or remove the canary flag"
        )
    status = StatusDoc("canary", app, None, "Holding", message)
    return _hold(
        app, [Warning(canary.service.key, "StableMissing", message)], {canary.service.key: status}
    )


def _plan_without_members(app: str, observed: AppState | None) -> AppPlan:
    """No Service publishes `app` any more: delete what canaryctl created, never anything else."""
    if observed is None or not observed.owned:
        return AppPlan(app, "noop", None, [], [], {})
    notice = Notice(
        "",
        "CleanedUp",
        f"application {app} has no member Services left; "
        f"deleted it and everything canaryctl created for it from the gateway",
    )
    return AppPlan(app, "delete", None, [], [notice], {})


def _hold(app: str, warnings: list[Warning], statuses: dict[str, StatusDoc]) -> AppPlan:
    return AppPlan(app, "hold", None, warnings, [], statuses)


def _hold_bad_input(
    app: str, views: list[Service], invalid: dict[str, list[Problem]], foreign: bool
) -> AppPlan:
    """Warn about every invalid annotation and a foreign namesake; touch nothing in the gateway."""
    warnings: list[Warning] = []
    statuses: dict[str, StatusDoc] = {}
    for key, problems in invalid.items():
        warnings += [Warning(key, "InvalidAnnotation", problem.message) for problem in problems]
        statuses[key] = StatusDoc(
            "none", app, None, "Invalid", "; ".join(p.message for p in problems)
        )
    if foreign:
        message = (
            f"an application named {app} already exists in the gateway and is not managed "
            f"by canaryctl; leaving it alone"
        )
        warnings += [Warning(view.key, "Conflict", message) for view in views]
        statuses.update(
            {
                view.key: StatusDoc("none", app, None, "Conflict", message)
                for view in views
                if view.key not in statuses
            }
        )
    waiting = (
        f"application {app} is on hold until {', '.join(invalid)} "
        f"{'has' if len(invalid) == 1 else 'have'} valid annotations; the gateway keeps its last good state"
    )
    statuses.update(
        {
            view.key: StatusDoc("none", app, None, "Holding", waiting)
            for view in views
            if view.key not in statuses
        }
    )
    return _hold(app, sorted(warnings, key=lambda w: w.service_key), statuses)


def _hold_conflict(app: str, valid: list[Member], culprits: list[Member], message: str) -> AppPlan:
    """Several members claim one role: warn each of them, hold the application."""
    culprit_keys = {member.service.key for member in culprits}
    waiting = f"application {app} is on hold: {message}"
    statuses = {
        member.service.key: StatusDoc(
            "none",
            app,
            None,
            "Conflict" if member.service.key in culprit_keys else "Holding",
            message if member.service.key in culprit_keys else waiting,
        )
        for member in valid
    }
    return _hold(
        app, [Warning(member.service.key, "Conflict", message) for member in culprits], statuses
    )


def _two_stables_message(app: str, stables: list[Member]) -> str:
    return (
        f"Services {_names(stables)} all publish application {app} without the canary flag; "
        f"an application has one stable: set {CANARY}=true on all but one, or remove their {APP}"
    )


def _two_canaries_message(app: str, canaries: list[Member]) -> str:
    return (
        f"Services {_names(canaries)} are all canaries of application {app}; at most one canary "
        f"runs at a time: remove {APP} or {CANARY} from all but one"
    )


def _names(members: list[Member]) -> str:
    keys = [member.service.key for member in members]
    return ", ".join(keys[:-1]) + " and " + keys[-1]


def _serving_statuses(spec: AppSpec, stable: Member, canary: Member | None) -> dict[str, StatusDoc]:
    """Statuses of the members of an application that routes as `spec`."""
    app = spec.name
    if canary is None:
        if stable.is_canary:
            message = (
                f"promoted from canary to default upstream of application {app}; receives all "
                f"requests ({CANARY} may now be removed)"
            )
            return {stable.service.key: StatusDoc("stable", app, 100, "Promoted", message)}
        message = f"default upstream of application {app}; receives all requests"
        return {stable.service.key: StatusDoc("stable", app, 100, "Stable", message)}
    stable_message = (
        f"default upstream of application {app}; receives {100 - spec.weight} % of requests, "
        f"canary {canary.service.key} the other {spec.weight} %"
    )
    canary_message = (
        f"canary of application {app}; receives {spec.weight} % of requests, "
        f"stable {stable.service.key} the rest"
    )
    return {
        stable.service.key: StatusDoc("stable", app, 100 - spec.weight, "Stable", stable_message),
        canary.service.key: StatusDoc("canary", app, spec.weight, "Canary", canary_message),
    }


def _describe_change(
    observed: AppState | None, spec: AppSpec, stable: Member, canary: Member | None
) -> list[Notice]:
    """Normal events naming what applying `spec` over `observed` changes, one concept each."""
    if observed is None or observed.stable is None:
        notices = [
            Notice(
                stable.service.key,
                "Published",
                f"published as application {spec.name} (host {spec.name}) with default "
                f"upstream {_target(spec.stable)}",
            )
        ]
        return notices + _canary_change(None, 0, spec, stable, canary)
    notices = _stable_change(observed, spec, stable)
    notices += _canary_change(observed.canary, observed.weight, spec, stable, canary)
    return notices or [
        Notice(
            stable.service.key,
            "DriftCorrected",
            f"application {spec.name} had been changed in the gateway outside "
            f"canaryctl; restored it",
        )
    ]


def _stable_change(observed: AppState, spec: AppSpec, stable: Member) -> list[Notice]:
    before, after = observed.stable, spec.stable
    if before.key == after.key:
        if before == after:
            return []
        return [
            Notice(
                stable.service.key,
                "UpstreamChanged",
                f"upstream {after.key} of application {spec.name} now targets {_target(after)}",
            )
        ]
    if observed.canary is not None and observed.canary.key == after.key:
        return [
            Notice(
                stable.service.key,
                "Promoted",
                f"canary {after.key} promoted to default upstream of application {spec.name}, "
                f"replacing {before.key}; its canary rule has ended",
            )
        ]
    return [
        Notice(
            stable.service.key,
            "StableChanged",
            f"{after.key} is now the default upstream of application {spec.name}, "
            f"replacing {before.key}",
        )
    ]


def _canary_change(
    before: Upstream | None,
    before_weight: int,
    spec: AppSpec,
    stable: Member,
    canary: Member | None,
) -> list[Notice]:
    """Notices about the canary: added, removed, re-targeted or re-weighted."""
    after = spec.canary
    promoted = before is not None and before.key == spec.stable.key
    notices: list[Notice] = []
    if before is not None and not promoted and (after is None or after.key != before.key):
        notices.append(
            Notice(
                stable.service.key,
                "CanaryRemoved",
                f"canary {before.key} removed from application {spec.name}; its rule "
                f"and upstream are deleted",
            )
        )
    if after is None:
        return notices
    key = canary.service.key
    if before is None or before.key != after.key:
        return [
            *notices,
            Notice(
                key,
                "CanaryAdded",
                f"canary of application {spec.name} at {spec.weight} % "
                f"of requests, upstream {_target(after)}",
            ),
        ]
    if before != after:
        notices.append(
            Notice(
                key,
                "UpstreamChanged",
                f"upstream {after.key} of application {spec.name} now targets {_target(after)}",
            )
        )
    if before_weight != spec.weight:
        notices.append(
            Notice(
                key,
                "CanaryWeightChanged",
                f"canary of application {spec.name}: {before_weight} % -> {spec.weight} % "
                f"of requests",
            )
        )
    return notices


def _target(upstream: Upstream) -> str:
    return f"{upstream.key} ({upstream.host}:{upstream.port})"
