"""The data the decision works on: what the reconciler observed about one application
(`AppInputs`) and everything to do about it (`Outcome`), plus two small readers of inputs
shared by the decision's modules. Plain frozen data, so every case is a table row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from canaryctl.annotations import STATUS
from canaryctl.gateway.model import AppSpec, AppState
from canaryctl.objects import Service
from canaryctl.release.hooks import HookCall
from canaryctl.release.state import CheckResult
from canaryctl.status import MemberStatus
from canaryctl.tenancy import Bindings

GatewayAction = Literal["keep", "apply", "delete"]
EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class AppInputs:
    """What the reconciler observed about one application."""

    app: str
    members: tuple[Service, ...]  # Services whose published-service is `app`
    observed: AppState | None  # what the gateway holds under that name (None: nothing)
    now: datetime
    former_members: tuple[Service, ...] = ()  # status still names `app`, but publish nothing
    check: CheckResult | None = None  # the analysis check made for this reconcile, if one was due
    cluster_domain: str = "cluster.local"
    watched_namespaces: frozenset[str] | None = None  # None: every namespace
    bindings: Bindings | None = None  # namespace -> app patterns; None: bindings not required
    cross_namespace: bool = True  # the gateway backend can route to other namespaces' Services
    backend: str = "api7"  # which gateway backend writes (what it can express: canaryctl.matching)


@dataclass(frozen=True)
class ServiceEvent:
    """A Kubernetes Event to record on the Service `service_key`."""

    service_key: str
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """Everything to do about one application after one look at it."""

    app: str
    gateway: GatewayAction
    spec: AppSpec | None = None  # "apply": what to write; "keep": what already routes (or None)
    held: str = ""  # why the gateway is kept although something is wrong ("" when all is well)
    warnings: tuple[ServiceEvent, ...] = ()  # recorded whatever happens, once per input
    notices: tuple[ServiceEvent, ...] = ()  # recorded once the gateway write succeeded
    statuses: Mapping[str, MemberStatus | None] = field(default_factory=dict)  # None: remove
    verify_weight: bool = False  # an automated weight write: read the gateway back after it
    requeue_after: float | None = None  # seconds until the release wants another look
    release_outcome: str | None = None  # set when this reconcile ended an automated release
    hooks: tuple[HookCall, ...] = ()  # release hooks to tell, once the gateway write succeeded


def previous_status(service: Service) -> MemberStatus:
    """The status canaryctl last wrote on `service` (an empty one when there is none)."""
    found = MemberStatus.parse(service.annotations.get(STATUS))
    return found or MemberStatus("none", "", None, "", "")


def forgotten(inputs: AppInputs) -> dict[str, MemberStatus | None]:
    """Former members lose their stale status annotation."""
    return {service.key: None for service in inputs.former_members}
