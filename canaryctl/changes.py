"""Normal Events that name what applying a desired spec over the gateway's state changes.

Users read these with `kubectl describe service`, so each names one concept (published, canary
added, weight changed, promoted, ...) with the upstreams involved. Pure: the decision function
asks for them only when the gateway is about to be written.
"""

from __future__ import annotations

from dataclasses import dataclass

from canaryctl.annotations import Member
from canaryctl.gateway.model import AppSpec, AppState, Upstream
from canaryctl.matching import describe as describe_match


@dataclass(frozen=True)
class Notice:
    """A Normal Event for one member Service."""

    service_key: str
    reason: str  # Published, CanaryAdded, CanaryWeightChanged, CanaryRemoved, Promoted,
    # StableChanged, UpstreamChanged, DriftCorrected, OwnerRecorded, CanaryMatchChanged
    message: str


def describe(
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
    if observed.edited_by:  # a hand edit of what canaryctl wrote (seen in managedFields)
        return [_hand_edit_reverted(observed, spec, stable)]
    notices = _stable_change(observed, observed.stable, spec, stable)
    notices += _canary_change(observed.canary, observed.weight, spec, stable, canary)
    notices += _match_change(observed, spec, canary)
    if not notices and observed.conforms and observed.owner != spec.owner:
        message = f"application {spec.name} now records its owner namespace {spec.owner}"
        return [Notice(stable.service.key, "OwnerRecorded", message)]
    return notices or [
        Notice(
            stable.service.key,
            "DriftCorrected",
            f"application {spec.name} had been changed in the gateway outside "
            f"canaryctl; restored it",
        )
    ]


def _hand_edit_reverted(observed: AppState, spec: AppSpec, stable: Member) -> Notice:
    routing = f"{spec.stable.key} at {100 - spec.weight if spec.canary else 100} %"
    if spec.canary is not None:
        routing += f", canary {spec.canary.key} at {spec.weight} %"
    return Notice(
        stable.service.key,
        "DriftCorrected",
        f"application {spec.name} had been edited in the gateway by "
        f"{', '.join(observed.edited_by)}; restored what canaryctl manages ({routing})",
    )


def _stable_change(
    observed: AppState, before: Upstream, spec: AppSpec, stable: Member
) -> list[Notice]:
    after = spec.stable
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
    assert canary is not None  # a spec has a canary upstream only for a canary member
    key = canary.service.key
    if before is None or before.key != after.key:
        matched = f" and requests matching {describe_match(spec.match)}" if spec.match else ""
        return [
            *notices,
            Notice(
                key,
                "CanaryAdded",
                f"canary of application {spec.name} at {spec.weight} % "
                f"of requests{matched}, upstream {_target(after)}",
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


def _match_change(observed: AppState, spec: AppSpec, canary: Member | None) -> list[Notice]:
    """A notice when the canary keeps its upstream but its request predicate changed."""
    same_canary = observed.canary is not None and observed.canary == spec.canary
    if canary is None or not same_canary or observed.match == spec.match:
        return []
    after = describe_match(spec.match) or "none"
    before = describe_match(observed.match) or "none"
    message = (
        f"requests that always reach the canary of application {spec.name}: {before} -> {after}"
    )
    return [Notice(canary.service.key, "CanaryMatchChanged", message)]


def _target(upstream: Upstream) -> str:
    return f"{upstream.key} ({upstream.host}:{upstream.port})"
