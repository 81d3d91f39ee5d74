"""Everything canaryctl decides about one application, in one pure function: `decide`.

The reconciler observes first — the application's member Services, what the gateway holds
under its name, and (only when one is due, see `due_check`) an analysis check of the canary —
then calls `decide(AppInputs) -> Outcome` once and carries the outcome out. The outcome is the
whole answer: what the gateway must hold (apply a spec, delete, or keep what it has), the
Warning Events (always) and Normal Events (once the gateway write succeeded), every member's
status document including release progress, whether to read the gateway back, and when to
look again. Inputs and outputs are plain data, so every case is a table row in the tests, and
a restart, resync or relist of an unchanged world decides "keep" with no Events. Who takes
part in which role is worked out once per reconcile (`read`): the due check needs it first.

Roles: the stable is the member without the canary flag, or else the flagged member the
gateway already uses as default upstream (a promoted canary stays stable after the old stable
is gone). The canary is the other flagged member. Any doubt — invalid annotations, a foreign
application of the same name, two stables, two canaries, a canary whose stable left below
100 % — keeps the gateway as it is, with a Warning on the Services concerned.

Promotion: when the stable has left and the gateway routes the canary, the canary becomes the
default upstream if it is at 100 % in the gateway, or if 100 % is now asked for (otherwise the
StableMissing advice "set 100 to promote" could never work).

Tenancy (`canaryctl.tenancy`) comes first: only the Services the owner namespace admits take
part; the others are refused with a Warning and never block the application.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from canaryctl import changes, matching
from canaryctl.annotations import CANARY, PERCENT, Invalid, Member, parse_member
from canaryctl.gateway.model import AppSpec, AppState
from canaryctl.holds import (
    bounded_outcome,
    held_status,
    hold,
    hold_bad_input,
    hold_conflict,
    hold_invalid,
    hold_unsupported_match,
    two_canaries,
    two_stables,
    with_refusals,
)
from canaryctl.outcome import (
    AppInputs,
    Outcome,
    ServiceEvent,
    forgotten,
    previous_status,
)
from canaryctl.release.decide import Decision
from canaryctl.release.runner import CheckRequest, Release, check_request, release_of
from canaryctl.status import MemberStatus
from canaryctl.tenancy import Membership, admit


@dataclass(frozen=True)
class Reading:
    """What `decide` works out about the members before it decides anything: which Services
    the owner admits, their roles (or the hold that bad input or a conflict makes; None when
    no admitted member can be assigned one) and the canary's release settings. `due_check`
    needs exactly this too, so the reconciler reads once (`read`) and hands the reading to both.
    Nothing in it depends on `AppInputs.check`."""

    membership: Membership
    roles: tuple[Member | None, Member | None] | Outcome | None
    release: Release | Invalid | None = None


def read(inputs: AppInputs) -> Reading:
    """The members' reading of `inputs` (see `Reading`)."""
    membership = _membership(inputs)
    if not membership.writable or not membership.admitted:
        return Reading(membership, None)
    roles = _assign_roles(replace(inputs, members=membership.admitted), membership)
    if isinstance(roles, Outcome):
        return Reading(membership, roles)
    stable, canary = roles
    release = None if stable is None else _release(inputs.app, stable, canary)
    return Reading(membership, roles, release)


def decide(inputs: AppInputs, reading: Reading | None = None) -> Outcome:
    """The whole outcome for one application, from what was observed about it (and from
    `read(inputs)`, when the caller has it already)."""
    reading = reading or read(inputs)
    outcome = _decide_admitted(replace(inputs, members=reading.membership.admitted), reading)
    return bounded_outcome(with_refusals(outcome, inputs, reading.membership))


def _decide_admitted(inputs: AppInputs, reading: Reading) -> Outcome:
    """The outcome for the admitted members (tenancy already applied)."""
    owner = reading.membership.owner or ""
    if not reading.membership.writable:
        why = f"application {inputs.app} belongs to namespace {owner}, which is not watched here"
        return Outcome(inputs.app, "keep", held=why)
    if not inputs.members:
        return _without_members(inputs, claimed=bool(reading.membership.refused))
    if isinstance(reading.roles, Outcome):
        return reading.roles  # bad input or a role conflict: on hold
    assert reading.roles is not None  # writable, with admitted members
    stable, canary = reading.roles
    if stable is None:
        assert canary is not None  # members exist and every one is flagged
        return _without_stable(inputs, canary, owner)
    release = reading.release
    if isinstance(release, Invalid):
        assert canary is not None  # only a canary carries release settings
        return hold_invalid(inputs, {canary.service.key: release})
    if release is None:
        return _serve(inputs, owner, stable, canary, weight=canary.percent if canary else 0)
    decision = release.advance(inputs.check, inputs.now)
    return _serve(inputs, owner, stable, canary, decision.weight, decision)


def due_check(inputs: AppInputs, reading: Reading | None = None) -> CheckRequest | None:
    """The analysis check `decide` will want for these inputs, if one is due now."""
    reading = reading or read(inputs)
    if not isinstance(reading.roles, tuple) or not isinstance(reading.release, Release):
        return None
    stable, canary = reading.roles
    assert stable is not None and canary is not None  # a release needs both
    return check_request(reading.release, inputs.app, canary.upstream, stable.upstream, inputs.now)


# --- roles ------------------------------------------------------------------------------------


def _membership(inputs: AppInputs) -> Membership:
    return admit(
        inputs.app,
        inputs.members,
        inputs.observed,
        inputs.bindings,
        inputs.watched_namespaces,
        inputs.cross_namespace,
    )


def _assign_roles(
    inputs: AppInputs, membership: Membership
) -> tuple[Member | None, Member | None] | Outcome:
    """(stable, canary) among valid members, or the hold that bad input or a conflict makes."""
    services = sorted(inputs.members, key=lambda service: service.key)
    parsed = {service.key: parse_member(service, inputs.cluster_domain) for service in services}
    invalid = {key: result for key, result in parsed.items() if isinstance(result, Invalid)}
    for service, problem in membership.problems:  # an invalid grant is invalid input too
        earlier = invalid[service.key].problems if service.key in invalid else ()
        invalid[service.key] = Invalid((*earlier, problem))
    foreign = inputs.observed is not None and not inputs.observed.owned
    if invalid or foreign:
        return hold_bad_input(inputs, invalid, foreign)
    valid = [result for result in parsed.values() if isinstance(result, Member)]
    unflagged = [member for member in valid if not member.is_canary]
    if len(unflagged) > 1:
        return hold_conflict(inputs, valid, unflagged, two_stables(inputs.app, unflagged))
    stable = unflagged[0] if unflagged else _sticky_stable(valid, inputs.observed)
    canaries = [member for member in valid if member.is_canary and member is not stable]
    if len(canaries) > 1:
        return hold_conflict(inputs, valid, canaries, two_canaries(inputs.app, canaries))
    return stable, canaries[0] if canaries else None


def _sticky_stable(valid: list[Member], observed: AppState | None) -> Member | None:
    """The flagged member the gateway already uses as default upstream, if any."""
    if observed is None or observed.stable is None:
        return None
    return next((m for m in valid if m.upstream.key == observed.stable.key), None)


def _release(app: str, stable: Member, canary: Member | None) -> Release | Invalid | None:
    if canary is None:
        return None
    return release_of(canary.service, previous_status(canary.service).release, app, stable.upstream)


# --- outcomes that route ---------------------------------------------------------------------


def _serve(
    inputs: AppInputs,
    owner: str,
    stable: Member,
    canary: Member | None,
    weight: int | None,
    release: Decision | None = None,
) -> Outcome:
    """Route the stable, and the canary at `weight`: apply unless the gateway already does."""
    spec = AppSpec(inputs.app, stable.upstream, owner=owner, parent=stable.parent)
    if canary is not None:
        spec = replace(spec, canary=canary.upstream, weight=weight or 0, match=canary.match)
        lacking = matching.unsupported(inputs.backend, spec.match, spec.weight)
        if lacking:
            return hold_unsupported_match(inputs, canary, lacking)
    statuses = _serving_statuses(spec, stable, canary, release)
    release_events = (
        tuple(ServiceEvent(canary.service.key, e.type, e.reason, e.message) for e in release.events)
        if release and canary
        else ()
    )
    observed = inputs.observed
    write = observed is None or not observed.matches(spec)
    notices = tuple(
        ServiceEvent(notice.service_key, "Normal", notice.reason, notice.message)
        for notice in (changes.describe(observed, spec, stable, canary) if write else ())
    )
    problems: tuple[ServiceEvent, ...] = ()
    if not write:  # Gateway API: the implementation's verdict on the route canaryctl keeps
        problems, statuses = _gateway_problem(observed, statuses)
    return Outcome(
        inputs.app,
        "apply" if write else "keep",
        spec,
        warnings=problems,
        notices=notices + release_events,
        statuses={**statuses, **forgotten(inputs)},
        verify_weight=write and release is not None,
        requeue_after=release.requeue_after if release else None,
        release_outcome=release.outcome if release else None,
        hooks=release.notify if release else (),
    )


def _gateway_problem(
    observed: AppState | None, statuses: dict[str, MemberStatus]
) -> tuple[tuple[ServiceEvent, ...], dict[str, MemberStatus]]:
    """A `RouteNotAccepted` Warning per member, and the problem in their statuses.

    Isolated for the Gateway API backend: its AppState carries the implementation's
    Accepted/ResolvedRefs verdict (`problem`, `problem_reason`); other backends leave it empty.
    """
    if observed is None or not observed.problem:
        return (), statuses
    message = f"application {observed.name} is not routed as written: {observed.problem}"
    warnings = tuple(
        ServiceEvent(key, "Warning", "RouteNotAccepted", message) for key in sorted(statuses)
    )
    noted = {
        key: replace(status, message=f"{status.message}; {message}")
        for key, status in statuses.items()
    }
    return warnings, noted


def _without_stable(inputs: AppInputs, canary: Member, owner: str) -> Outcome:
    """Only a canary is left: promote it if it takes (or is asked to take) everything, else hold."""
    observed = inputs.observed
    routed = (
        observed is not None
        and observed.canary is not None
        and observed.canary.key == canary.upstream.key
    )
    app, key = inputs.app, canary.service.key
    if routed:
        assert observed is not None
        if observed.weight == 100 or canary.percent == 100:
            return _serve(inputs, owner, canary, None, 0)
        message = (
            f"the stable of application {app} left while canary {key} is at {observed.weight} "
            f"%; not shifting traffic: set {PERCENT}=100 to promote the canary, or restore the "
            "stable"
        )
    else:
        message = (
            f"canary {key} has no stable: no Service publishes application {app} without "
            f"{CANARY}=true; publish the stable first, or remove the canary flag"
        )
    status = held_status(canary.service, "canary", app, "Holding", message)
    warning = ServiceEvent(key, "Warning", "StableMissing", message)
    # the route is kept as it is: what the implementation says of it (e.g. the stable's
    # Service not found) still reaches the canary
    problems, statuses = _gateway_problem(observed, {key: status}) if routed else ((), {})
    return hold(inputs, message, (warning, *problems), {key: status, **statuses})


def _without_members(inputs: AppInputs, claimed: bool = False) -> Outcome:
    """No admitted Service publishes the app any more: delete what canaryctl created, nothing
    else. Refused claimants get another look right after, as the name is then free."""
    observed, app = inputs.observed, inputs.app
    if observed is None or not observed.owned:
        return Outcome(app, "keep", statuses=forgotten(inputs))
    message = (
        f"application {app} has no member Services left; deleted it and everything canaryctl "
        "created for it from the gateway"
    )
    notices = tuple(
        ServiceEvent(service.key, "Normal", "CleanedUp", message)
        for service in inputs.former_members
    )
    requeue = 1.0 if claimed else None
    return Outcome(
        app, "delete", notices=notices, statuses=forgotten(inputs), requeue_after=requeue
    )


# --- statuses of a routing application ---------------------------------------------------------


def _serving_statuses(
    spec: AppSpec, stable: Member, canary: Member | None, release: Decision | None
) -> dict[str, MemberStatus]:
    """Statuses of the members of an application that routes as `spec`."""
    app = spec.name
    if canary is None:
        if stable.is_canary:
            message = (
                f"promoted from canary to default upstream of application {app}; receives all "
                f"requests ({CANARY} may now be removed)"
            )
            return {stable.service.key: MemberStatus("stable", app, 100, "Promoted", message)}
        message = f"default upstream of application {app}; receives all requests"
        return {stable.service.key: MemberStatus("stable", app, 100, "Stable", message)}
    stable_message = (
        f"default upstream of application {app}; receives {100 - spec.weight} % of requests, "
        f"canary {canary.service.key} the other {spec.weight} %"
    )
    matched = f" and every request matching {matching.describe(spec.match)}" if spec.match else ""
    canary_message = (
        f"canary of application {app}; receives {spec.weight} % of requests{matched}, "
        f"stable {stable.service.key} the rest"
    )
    progress = release.state if release else previous_status(canary.service).release
    return {
        stable.service.key: MemberStatus(
            "stable", app, 100 - spec.weight, "Stable", stable_message
        ),
        canary.service.key: MemberStatus(
            "canary", app, spec.weight, "Canary", canary_message, release=progress
        ),
    }
