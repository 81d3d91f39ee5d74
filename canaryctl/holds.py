"""Outcomes that keep the gateway as it is — invalid input, role conflicts, a match the gateway
cannot express — and what is added to every outcome: warnings for refused claimants, and bounds
on every message (values come from annotations users typed)."""

from __future__ import annotations

from dataclasses import replace

from canaryctl import matching
from canaryctl.annotations import APP, CANARY, Invalid, Member
from canaryctl.objects import Service
from canaryctl.outcome import AppInputs, Outcome, ServiceEvent, forgotten, previous_status
from canaryctl.status import MAX_MESSAGE, MemberStatus, Role, bounded
from canaryctl.tenancy import Membership

# --- holds: the gateway keeps its last good state ----------------------------------------------


def hold(
    inputs: AppInputs,
    why: str,
    warnings: tuple[ServiceEvent, ...],
    statuses: dict[str, MemberStatus],
) -> Outcome:
    return Outcome(
        inputs.app, "keep", held=why, warnings=warnings, statuses={**statuses, **forgotten(inputs)}
    )


def hold_bad_input(inputs: AppInputs, invalid: dict[str, Invalid], foreign: bool) -> Outcome:
    """Warn about every invalid annotation and a foreign namesake; touch nothing in the gateway."""
    app, members = inputs.app, sorted(inputs.members, key=lambda service: service.key)
    warnings = [
        ServiceEvent(key, "Warning", "InvalidAnnotation", problem.message)
        for key, result in invalid.items()
        for problem in result.problems
    ]
    phases = {key: ("Invalid", result.message) for key, result in invalid.items()}
    if foreign:
        message = (
            f"an application named {app} already exists in the gateway and is not managed by "
            "canaryctl; leaving it alone"
        )
        warnings += [ServiceEvent(s.key, "Warning", "Conflict", message) for s in members]
        phases = {s.key: ("Conflict", message) for s in members} | phases
    waiting = (
        f"application {app} is on hold until {', '.join(invalid)} "
        f"{'has' if len(invalid) == 1 else 'have'} valid annotations; the gateway keeps its last "
        "good state"
    )
    statuses = {
        s.key: held_status(s, "none", app, *phases.get(s.key, ("Holding", waiting)))
        for s in members
    }
    why = "; ".join(message for _, message in phases.values())
    return hold(inputs, why, tuple(sorted(warnings, key=lambda w: w.service_key)), statuses)


def hold_invalid(inputs: AppInputs, invalid: dict[str, Invalid]) -> Outcome:
    """Invalid release settings on the canary: hold, as for any invalid annotation."""
    return hold_bad_input(inputs, invalid, foreign=False)


def hold_conflict(
    inputs: AppInputs, valid: list[Member], culprits: list[Member], message: str
) -> Outcome:
    """Several members claim one role: warn each of them, hold the application."""
    app = inputs.app
    culprit_keys = {member.service.key for member in culprits}
    waiting = f"application {app} is on hold: {message}"
    statuses = {
        m.service.key: held_status(m.service, "none", app, "Conflict", message)
        if m.service.key in culprit_keys
        else held_status(m.service, "none", app, "Holding", waiting)
        for m in valid
    }
    warnings = tuple(ServiceEvent(m.service.key, "Warning", "Conflict", message) for m in culprits)
    return hold(inputs, message, warnings, statuses)


def hold_unsupported_match(inputs: AppInputs, canary: Member, lacking: str) -> Outcome:
    """The gateway cannot express the canary's match with its weight: hold, say what it lacks."""
    value = matching.describe(canary.match)
    message = (
        f"annotation {matching.MATCH}={value!r} cannot be applied here: {lacking}; the gateway "
        "keeps its last good state"
    )
    key = canary.service.key
    status = held_status(canary.service, "canary", inputs.app, "Unsupported", message)
    warning = ServiceEvent(key, "Warning", "MatchUnsupported", message)
    return hold(inputs, message, (warning,), {key: status})


def held_status(service: Service, role: Role, app: str, phase: str, message: str) -> MemberStatus:
    """A member's status while its app is on hold; a release state it carries is kept."""
    return MemberStatus(role, app, None, phase, message, release=previous_status(service).release)


def two_stables(app: str, stables: list[Member]) -> str:
    return (
        f"Services {_names(stables)} all publish application {app} without the canary flag; an "
        f"application has one stable: set {CANARY}=true on all but one, or remove their {APP}"
    )


def two_canaries(app: str, canaries: list[Member]) -> str:
    return (
        f"Services {_names(canaries)} are all canaries of application {app}; at most one canary "
        f"runs at a time: remove {APP} or {CANARY} from all but one"
    )


def _names(members: list[Member]) -> str:
    keys = [member.service.key for member in members]
    return ", ".join(keys[:-1]) + " and " + keys[-1]


# --- tenancy: refused claimants, and bounds on what is echoed ----------------------------------


def with_refusals(outcome: Outcome, inputs: AppInputs, membership: Membership) -> Outcome:
    """Warn every refused claimant, tell the owner's Services, and give the refused a status."""
    if not membership.refused:
        return outcome
    app = inputs.app
    warnings = [
        ServiceEvent(r.service.key, "Warning", "Forbidden", r.message) for r in membership.refused
    ]
    claimants = ", ".join(sorted(r.service.key for r in membership.refused))
    told = (
        f"Services {claimants} tried to join application {app}, which belongs to namespace "
        f"{membership.owner}; they were left out"
    )
    warnings += [
        ServiceEvent(s.key, "Warning", "ClaimRefused", told)
        for s in membership.admitted
        if s.namespace == membership.owner
    ]
    statuses = {
        r.service.key: MemberStatus("none", app, None, "Forbidden", r.message)
        for r in membership.refused
    }
    return replace(
        outcome,
        warnings=outcome.warnings + tuple(warnings),
        statuses={**outcome.statuses, **statuses},
    )


MAX_APP = 253  # characters of an app name in a status: a DNS name's length


def bounded_outcome(outcome: Outcome) -> Outcome:
    """Every message cut to a size Events, statuses and logs can carry (values are user input).

    Almost every outcome already fits: it is handed back as it is, not rebuilt."""
    if _fits(outcome):
        return outcome

    def cut(event: ServiceEvent) -> ServiceEvent:
        return replace(event, message=bounded(event.message))

    statuses = {
        key: None
        if s is None
        else replace(s, app=bounded(s.app, MAX_APP), message=bounded(s.message))
        for key, s in outcome.statuses.items()
    }
    return replace(
        outcome,
        held=bounded(outcome.held),
        warnings=tuple(cut(e) for e in outcome.warnings),
        notices=tuple(cut(e) for e in outcome.notices),
        statuses=statuses,
    )


def _fits(outcome: Outcome) -> bool:
    """Whether `bounded_outcome` would leave every message of `outcome` as it is."""
    events = outcome.warnings + outcome.notices
    statuses = [s for s in outcome.statuses.values() if s is not None]
    return (
        len(outcome.held) <= MAX_MESSAGE
        and all(len(e.message) <= MAX_MESSAGE for e in events)
        and all(len(s.message) <= MAX_MESSAGE and len(s.app) <= MAX_APP for s in statuses)
    )
