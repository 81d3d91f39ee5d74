"""Reconcile one application: the controller's whole loop body, read top to bottom.

Level-triggered: it reads the application's member Services from the informer cache and the
gateway's state from the gateway view, asks the pure planner what should be, applies that
through the gateway backend (which writes nothing when nothing differs), then tells users —
Warning Events for bad input, Normal Events for changes, and the status annotation on each
member. Which event caused the reconcile never matters.

Outcomes (engineering.md "Reconcile"): success returns normally; a gateway failure raises
so the work queue retries with backoff; bad input is a hold — warned once per Service
version, not retried until the Service changes.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Mapping, Protocol, Sequence

from canaryctl import metrics
from canaryctl.annotations import STATUS, app_of
from canaryctl.gateway.base import Gateway, GatewayError
from canaryctl.gateway.model import AppState
from canaryctl.gateway.view import GatewayView
from canaryctl.objects import ServiceView
from canaryctl.planner import AppPlan, plan_app
from canaryctl.status import applied_share, changed, render

log = logging.getLogger(__name__)

APP_INDEX = "app"  # Services by their published-service value
STATUS_INDEX = "status-app"  # Services by the app their status annotation names


def _app_index(view: ServiceView) -> list[str]:
    app = app_of(view)
    return [] if app is None else [app]


def _status_index(view: ServiceView) -> list[str]:
    try:
        app = json.loads(view.annotations.get(STATUS, "")).get("app")
    except (ValueError, AttributeError):
        return []
    return [app] if isinstance(app, str) else []


INDEXERS: dict[str, Callable[[ServiceView], Iterable[str]]] = {APP_INDEX: _app_index, STATUS_INDEX: _status_index}


class ServiceIndex(Protocol):
    def by_index(self, index_name: str, value: str) -> list[ServiceView]: ...


class Recorder(Protocol):
    def normal(self, view: ServiceView, reason: str, message: str) -> None: ...
    def warning(self, view: ServiceView, reason: str, message: str) -> None: ...


PatchAnnotations = Callable[[str, str, Mapping[str, str | None]], None]  # (namespace, name, changes)


@dataclass(frozen=True)
class Result:
    """A successful reconcile; `requeue_after` asks to look again later (scheduled work)."""

    requeue_after: float | None = None


class Reconciler:
    """Brings one application at a time to its desired state."""

    def __init__(self, store: ServiceIndex, view: GatewayView, gateway: Gateway, recorder: Recorder,
                 patch_annotations: PatchAnnotations, cluster_domain: str = "cluster.local",
                 dry_run: bool = False, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self.store, self.view, self.gateway, self.recorder = store, view, gateway, recorder
        self.patch_annotations = patch_annotations
        self.cluster_domain, self.dry_run, self.now = cluster_domain, dry_run, now
        self._warned: dict[str, tuple[str, frozenset]] = {}  # service key -> (resourceVersion, warnings)

    def reconcile(self, app: str) -> Result:
        """Make the gateway hold what application `app`'s member Services ask for."""
        members = {view.key: view for view in self.store.by_index(APP_INDEX, app)}
        observed = self._observed(app)
        plan = plan_app(app, list(members.values()), observed, self.cluster_domain)
        self._warn(plan, members)
        if self.dry_run:
            log.info("dry-run plan", extra={"app": app, "action": plan.action, "spec": str(plan.spec)})
            return Result()
        state = self._execute(plan, observed, members)
        self._announce(plan, members, app)
        self._write_statuses(plan, members, state)
        self._forget_former_members(app, members)
        self._export_weights(plan, members, state)
        return Result()

    def _observed(self, app: str) -> AppState | None:
        """The gateway's state of `app`: the cached view, re-read only after a failed write."""
        if not self.view.is_stale(app):
            return self.view.get(app)
        state = self.gateway.read_app(app)
        if state is None:
            self.view.remove(app)
        else:
            self.view.put(state)
        return state

    def _execute(self, plan: AppPlan, observed: AppState | None,
                 members: Mapping[str, ServiceView]) -> AppState | None:
        """Apply the plan to the gateway and to the view; return what the gateway now holds."""
        try:
            if plan.action == "apply":
                state = self.gateway.apply(observed, plan.spec)
                self.view.put(state)
                return state
            if plan.action == "delete":
                self.gateway.delete(observed)
                self.view.remove(plan.app)
                return None
        except GatewayError as error:
            self.view.invalidate(plan.app)
            for view in members.values():
                self.recorder.warning(view, "GatewayError", f"application {plan.app}: {error}")
            raise
        return observed

    def _warn(self, plan: AppPlan, members: Mapping[str, ServiceView]) -> None:
        """Warning Events, once per Service version: a resync of unchanged bad input stays quiet."""
        by_service: dict[str, set] = {}
        for warning in plan.warnings:
            by_service.setdefault(warning.service_key, set()).add((warning.reason, warning.message))
        for key, view in members.items():
            warnings = frozenset(by_service.get(key, ()))
            if not warnings:
                self._warned.pop(key, None)
                continue
            if self._warned.get(key) == (view.resource_version, warnings):
                continue
            self._warned[key] = (view.resource_version, warnings)
            for reason, message in sorted(warnings):
                log.warning("%s: %s", key, message, extra={"app": plan.app, "reason": reason})
                self.recorder.warning(view, reason, message)

    def _announce(self, plan: AppPlan, members: Mapping[str, ServiceView], app: str) -> None:
        """Normal Events for what changed; CleanedUp goes to the Services that used to be members."""
        for notice in plan.notices:
            targets = [members[notice.service_key]] if notice.service_key in members else \
                self._former_members(app, members)
            log.info("%s: %s", notice.reason, notice.message, extra={"app": app})
            for view in targets:
                self.recorder.normal(view, notice.reason, notice.message)

    def _write_statuses(self, plan: AppPlan, members: Mapping[str, ServiceView], state: AppState | None) -> None:
        """Write each member's status annotation, only when its content (not its time) changed."""
        for key, doc in plan.statuses.items():
            view = members[key]
            applied = applied_share(state, key) if plan.action != "hold" else applied_share(self.view.get(plan.app), key)
            if changed(view.annotations.get(STATUS), doc, applied):
                self.patch_annotations(view.namespace, view.name, {STATUS: render(doc, applied, self.now())})

    def _former_members(self, app: str, members: Mapping[str, ServiceView]) -> list[ServiceView]:
        return [view for view in self.store.by_index(STATUS_INDEX, app)
                if view.key not in members and app_of(view) is None]

    def _forget_former_members(self, app: str, members: Mapping[str, ServiceView]) -> None:
        """A Service that left every application loses its stale status annotation."""
        for view in self._former_members(app, members):
            self._warned.pop(view.key, None)
            self.patch_annotations(view.namespace, view.name, {STATUS: None})

    def _export_weights(self, plan: AppPlan, members: Mapping[str, ServiceView], state: AppState | None) -> None:
        if plan.spec is None or state is None:
            return
        canary = plan.spec.canary or plan.spec.stable
        namespace = canary.version.split("/", 1)[0]
        metrics.canary_weight.labels(namespace, plan.app).set(plan.spec.weight if plan.spec.canary else 0)
        metrics.canary_applied_weight.labels(namespace, plan.app).set(state.weight if state.canary else 0)


def apps_of(old: ServiceView | None, new: ServiceView | None) -> Sequence[str]:
    """The application keys an informer event concerns (a Service may move between apps)."""
    return sorted({app for view in (old, new) if view is not None for app in _app_index(view)})
