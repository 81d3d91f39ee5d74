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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from canaryctl import metrics
from canaryctl.annotations import STATUS, app_of, relevant_fingerprint
from canaryctl.gateway.base import Gateway, GatewayError
from canaryctl.gateway.cache import GatewayCache
from canaryctl.gateway.model import AppState
from canaryctl.objects import Service
from canaryctl.planner import AppPlan, Warning, plan_app  # noqa: A004 - the Event type
from canaryctl.release.runner import ReleaseRunner, ReleaseStep, persisted_state
from canaryctl.status import applied_share, changed, render

log = logging.getLogger(__name__)

APP_INDEX = "app"  # Services by their published-service value
STATUS_INDEX = "status-app"  # Services by the app their status annotation names


def _app_index(view: Service) -> list[str]:
    app = app_of(view)
    return [] if app is None else [app]


def _status_index(view: Service) -> list[str]:
    try:
        app = json.loads(view.annotations.get(STATUS, "")).get("app")
    except (ValueError, AttributeError):
        return []
    return [app] if isinstance(app, str) else []


INDEXERS: dict[str, Callable[[Service], Iterable[str]]] = {
    APP_INDEX: _app_index,
    STATUS_INDEX: _status_index,
}


class ServiceIndex(Protocol):
    def by_index(self, index_name: str, value: str) -> list[Service]: ...


class Recorder(Protocol):
    def normal(self, view: Service, reason: str, message: str) -> None: ...
    def warning(self, view: Service, reason: str, message: str) -> None: ...


PatchAnnotations = Callable[
    [str, str, Mapping[str, str | None]], None
]  # (namespace, name, changes)


@dataclass(frozen=True)
class Result:
    """A successful reconcile; `requeue_after` asks to look again later (scheduled work)."""

    requeue_after: float | None = None


class Reconciler:
    """Brings one application at a time to its desired state."""

    def __init__(
        self,
        store: ServiceIndex,
        view: GatewayCache,
        gateway: Gateway,
        recorder: Recorder,
        patch_annotations: PatchAnnotations,
        cluster_domain: str = "cluster.local",
        dry_run: bool = False,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        releases: ReleaseRunner = ReleaseRunner(None),
        namespaces: Sequence[str] | None = None,
    ):
        self.store, self.view, self.gateway, self.recorder = store, view, gateway, recorder
        self.namespaces = (
            None if namespaces is None else frozenset(namespaces)
        )  # None: every namespace
        self.releases = releases
        self.patch_annotations = patch_annotations
        self.cluster_domain, self.dry_run, self.now = cluster_domain, dry_run, now
        self._warned: dict[
            str, tuple[tuple, frozenset]
        ] = {}  # service key -> (inputs, warnings) last warned

    def reconcile(self, app: str) -> Result:
        """Make the gateway hold what application `app`'s member Services ask for."""
        members = {view.key: view for view in self.store.by_index(APP_INDEX, app)}
        observed = self._observed(app)
        now = self.now()
        plan = plan_app(app, list(members.values()), observed, self.cluster_domain)
        plan, release = self._automate(plan, members, observed, now)
        if plan.action == "delete" and not self._in_scope(observed):
            log.info(
                "not deleting %s: its Services are outside the watched namespaces",
                app,
                extra={"app": app},
            )
            return Result()
        self._warn(plan, members)
        if self.dry_run:
            log.info(
                "dry-run plan", extra={"app": app, "action": plan.action, "spec": str(plan.spec)}
            )
            return Result()
        state = self._execute(plan, observed, members)
        if release is not None:
            state = self._read_back(plan, state, members[release.canary_key])
        self._announce(plan, members, app)
        self._announce_release(release, members)
        self._write_statuses(plan, members, state, release)
        self._forget_former_members(app, members)
        self._export_weights(plan, state)
        return Result(requeue_after=release.requeue_after if release else None)

    def _automate(
        self,
        plan: AppPlan,
        members: Mapping[str, Service],
        observed: AppState | None,
        now: datetime,
    ) -> tuple[AppPlan, ReleaseStep | None]:
        """Let the canary's release automation (if it asks for one) choose the canary weight."""
        canary_key = next((key for key, doc in plan.statuses.items() if doc.role == "canary"), None)
        if plan.spec is None or plan.spec.canary is None or canary_key is None:
            return plan, None
        step = self.releases.step(plan.app, members[canary_key], plan.spec, now)
        if step is None:
            return plan, None
        if isinstance(step, list):  # invalid automation settings: nothing changes
            warnings = [
                Warning(canary_key, "InvalidAnnotation", problem.message) for problem in step
            ]
            return replace(
                plan, action="hold", spec=None, notices=[], warnings=plan.warnings + warnings
            ), None
        return plan_app(
            plan.app, list(members.values()), observed, self.cluster_domain, step.weight
        ), step

    def _read_back(self, plan: AppPlan, state: AppState | None, canary: Service) -> AppState | None:
        """After an automated weight write, ask the gateway what it applied (product.md §2)."""
        if plan.action != "apply" or plan.spec is None:
            return state
        applied = self.gateway.read_app(plan.app)
        if applied is not None:
            self.view.put(applied)
        applied_weight = applied.weight if applied and applied.canary else None
        if applied_weight != plan.spec.weight:
            metrics.weight_mismatches_total.inc()
            self.recorder.warning(
                canary,
                "WeightMismatch",
                f"the gateway applied {applied_weight} % to the canary "
                f"of {plan.app}, canaryctl asked for {plan.spec.weight} %",
            )
        return applied

    def _in_scope(self, state: AppState) -> bool:
        """Whether this controller watches every namespace `state`'s upstreams come from.

        Controllers scoped to different namespaces may share one gateway: an app without
        members here may well have its members in another controller's namespaces.
        """
        if self.namespaces is None:
            return True
        versions = [
            upstream.key for upstream in (state.stable, state.canary) if upstream is not None
        ]
        return bool(versions) and all(
            version.split("/", 1)[0] in self.namespaces for version in versions
        )

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

    def _execute(
        self, plan: AppPlan, observed: AppState | None, members: Mapping[str, Service]
    ) -> AppState | None:
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

    def _warn(self, plan: AppPlan, members: Mapping[str, Service]) -> None:
        """Warning Events, once per Service version: a resync of unchanged bad input stays quiet."""
        by_service: dict[str, set] = {}
        for warning in plan.warnings:
            by_service.setdefault(warning.service_key, set()).add((warning.reason, warning.message))
        for key, view in members.items():
            warnings = frozenset(by_service.get(key, ()))
            if not warnings:
                self._warned.pop(key, None)
                continue
            inputs = relevant_fingerprint(view)
            if self._warned.get(key) == (inputs, warnings):
                continue
            self._warned[key] = (inputs, warnings)
            for reason, message in sorted(warnings):
                log.warning("%s: %s", key, message, extra={"app": plan.app, "reason": reason})
                self.recorder.warning(view, reason, message)

    def _announce(self, plan: AppPlan, members: Mapping[str, Service], app: str) -> None:
        """Normal Events for what changed; CleanedUp goes to the Services that used to be members."""
        for notice in plan.notices:
            targets = (
                [members[notice.service_key]]
                if notice.service_key in members
                else self._former_members(app, members)
            )
            log.info("%s: %s", notice.reason, notice.message, extra={"app": app})
            for view in targets:
                self.recorder.normal(view, notice.reason, notice.message)

    def _announce_release(
        self, release: ReleaseStep | None, members: Mapping[str, Service]
    ) -> None:
        """The release's Events (StepAdvanced, AnalysisFailed, RolledBack, ...) on the canary."""
        for event in release.decision.events if release else ():
            record = self.recorder.warning if event.type == "Warning" else self.recorder.normal
            record(members[release.canary_key], event.reason, event.message)

    def _write_statuses(
        self,
        plan: AppPlan,
        members: Mapping[str, Service],
        state: AppState | None,
        release: ReleaseStep | None,
    ) -> None:
        """Write each member's status annotation, only when its content (not its time) changed.

        An automated canary's release state lives in its status: written after the gateway
        write, so a restart never believes in a weight the gateway did not get.
        """
        for key, doc in plan.statuses.items():
            view = members[key]
            applied = (
                applied_share(state, key)
                if plan.action != "hold"
                else applied_share(self.view.get(plan.app), key)
            )
            progress = (
                release.decision.state.to_dict()
                if release and release.canary_key == key
                else _kept_release(view)
                if doc.role == "canary"
                else None
            )
            if changed(view.annotations.get(STATUS), doc, applied, progress):
                self.patch_annotations(
                    view.namespace, view.name, {STATUS: render(doc, applied, self.now(), progress)}
                )

    def _former_members(self, app: str, members: Mapping[str, Service]) -> list[Service]:
        return [
            view
            for view in self.store.by_index(STATUS_INDEX, app)
            if view.key not in members and app_of(view) is None
        ]

    def _forget_former_members(self, app: str, members: Mapping[str, Service]) -> None:
        """A Service that left every application loses its stale status annotation."""
        for view in self._former_members(app, members):
            self._warned.pop(view.key, None)
            self.patch_annotations(view.namespace, view.name, {STATUS: None})

    def _export_weights(self, plan: AppPlan, state: AppState | None) -> None:
        if plan.spec is None or state is None:
            return
        canary = plan.spec.canary or plan.spec.stable
        namespace = canary.key.split("/", 1)[0]
        metrics.canary_weight.labels(namespace, plan.app).set(
            plan.spec.weight if plan.spec.canary else 0
        )
        metrics.canary_applied_weight.labels(namespace, plan.app).set(
            state.weight if state.canary else 0
        )


def _kept_release(view: Service) -> dict | None:
    """A canary's persisted release state, kept while its app is on hold, so nothing is lost."""
    state = persisted_state(view.annotations)
    return state.to_dict() if state else None


def apps_of(old: Service | None, new: Service | None) -> Sequence[str]:
    """The application keys an informer event concerns (a Service may move between apps)."""
    return sorted({app for view in (old, new) if view is not None for app in _app_index(view)})
