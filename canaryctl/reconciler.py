"""Reconcile one application: the controller's loop body, observe -> decide -> act.

`reconcile(app)` first gathers everything the decision needs — the member Services from the
informer cache, what the gateway holds from the gateway cache (read again only when a write's
outcome is in doubt), and an analysis check of the canary only when one is due — then calls
the pure `canaryctl.decision.decide` once, then carries its outcome out: the gateway write,
the read-back of an automated weight, Events, status annotations and metrics. Which event
caused the reconcile never matters.

Outcomes (see docs/design.md): success returns a `Result` (with `requeue_after` when the
release wants another look); a gateway failure raises, so the work queue retries with backoff;
bad input is a hold, warned once per input and not retried until the Service changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from canaryctl import metrics
from canaryctl.annotations import STATUS, app_of, relevant_fingerprint
from canaryctl.app_metrics import APP_METRICS
from canaryctl.decision import Reading, decide, due_check, read
from canaryctl.gateway.base import Gateway, GatewayError
from canaryctl.gateway.cache import GatewayCache
from canaryctl.gateway.model import AppState
from canaryctl.gateway.outcomes import unknown_outcomes
from canaryctl.objects import Service
from canaryctl.outcome import AppInputs, Outcome, ServiceEvent
from canaryctl.release.analysis import Analyzer
from canaryctl.release.hookclient import HookClient
from canaryctl.release.probe import NO_PROMETHEUS as NO_PROMETHEUS  # where tests look for it
from canaryctl.release.probe import ReleaseProbe
from canaryctl.release.runner import CheckRequest
from canaryctl.release.state import CheckResult
from canaryctl.status import status_app
from canaryctl.tenancy import Bindings

log = logging.getLogger(__name__)

APP_INDEX = "app"  # Services by their published-service value
STATUS_INDEX = "status-app"  # Services by the app their status annotation names


def _app_index(service: Service) -> list[str]:
    app = app_of(service)
    return [] if app is None else [app]


def _status_index(service: Service) -> list[str]:
    app = status_app(service.annotations.get(STATUS))
    return [app] if app else []


INDEXERS: dict[str, Callable[[Service], Iterable[str]]] = {
    APP_INDEX: _app_index,
    STATUS_INDEX: _status_index,
}


class ServiceIndex(Protocol):
    def by_index(self, index_name: str, value: str) -> list[Service]: ...


class Recorder(Protocol):
    def normal(self, service: Service, reason: str, message: str) -> None: ...
    def warning(self, service: Service, reason: str, message: str) -> None: ...


class Notifier(Protocol):
    def notify(self, outcome: Outcome, services: Mapping[str, Service]) -> None: ...


PatchStatus = Callable[[Service, str | None], None]  # (service, annotation value or None: remove)


@dataclass(frozen=True)
class Result:
    """A successful reconcile; `requeue_after` asks to look again later (scheduled work)."""

    requeue_after: float | None = None


@dataclass(frozen=True)
class ReconcileSettings:
    cluster_domain: str = "cluster.local"
    namespaces: Sequence[str] | None = None  # the watched namespaces; None: every namespace
    dry_run: bool = False
    suspect_window: float = 60.0  # seconds a write whose outcome is unknown may still land
    bindings: Callable[[], Bindings] | None = None  # app-name bindings, when they are required
    cross_namespace: bool = True  # the gateway backend can route to other namespaces
    backend: str = "api7"  # the gateway backend's name (what it can express)


class Reconciler:
    """Brings one application at a time to its desired state."""

    def __init__(
        self,
        services: ServiceIndex,
        gateway_cache: GatewayCache,
        gateway: Gateway,
        recorder: Recorder,
        patch_status: PatchStatus,
        analyzer: Analyzer | None = None,
        settings: ReconcileSettings | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        notifier: Notifier | None = None,  # release events to webhooks (canaryctl.notify)
        hooks: HookClient | None = None,
    ):
        self.services, self.gateway_cache, self.gateway = services, gateway_cache, gateway
        self.notifier = notifier
        self.recorder, self.patch_status, self.analyzer = recorder, patch_status, analyzer
        self.settings = settings or ReconcileSettings()
        namespaces = self.settings.namespaces
        self.watched = None if namespaces is None else frozenset(namespaces)
        self.now = now
        self.hooks = hooks or HookClient()
        self.probe = ReleaseProbe(analyzer, self.hooks)
        self._warned = _WarningMemory()

    def reconcile(self, app: str) -> Result:
        """Make the gateway hold what application `app`'s member Services ask for."""
        inputs, reading = self.observe(app)
        outcome = decide(inputs, reading)
        return self.act(outcome, inputs)

    # observe ----------------------------------------------------------------------------------

    def observe(self, app: str) -> tuple[AppInputs, Reading]:
        """Everything the decision needs, and the members' reading (worked out once: the due
        check needs it too); Prometheus is asked only when a check is due."""
        members = tuple(self.services.by_index(APP_INDEX, app))
        keys = {service.key for service in members}
        former = tuple(
            service
            for service in self.services.by_index(STATUS_INDEX, app)
            if service.key not in keys and app_of(service) is None
        )
        now = self.now()
        bindings = self.settings.bindings
        inputs = AppInputs(
            app,
            members,
            self._gateway_state(app, now),
            now,
            former_members=former,
            cluster_domain=self.settings.cluster_domain,
            watched_namespaces=self.watched,
            bindings=None if bindings is None else bindings(),
            cross_namespace=self.settings.cross_namespace,
            backend=self.settings.backend,
        )
        reading = read(inputs)
        request = due_check(inputs, reading)
        if request is not None:
            inputs = replace(inputs, check=self._check(request, now))
        return inputs, reading

    def _gateway_state(self, app: str, now: datetime) -> AppState | None:
        """The gateway cache's state of `app`; read from the gateway while it is suspect."""
        if not self.gateway_cache.needs_read(app, now):
            return self.gateway_cache.get(app)
        state = self.gateway.read_app(app)
        self.gateway_cache.put_read(app, state, now)
        return state

    def _check(self, request: CheckRequest, now: datetime) -> CheckResult:
        """Prometheus and the release's hooks, as the request asks (`release.probe`)."""
        result = self.probe.check(request, now)
        APP_METRICS.record_check(request.canary, result)
        return result

    # act --------------------------------------------------------------------------------------

    def act(self, outcome: Outcome, inputs: AppInputs) -> Result:
        """Carry `outcome` out: gateway, read-back, Events, statuses, notifications, metrics."""
        services = {service.key: service for service in inputs.members + inputs.former_members}
        self._record_warnings(outcome, services)
        if outcome.held:
            log.info("holding %s: %s", outcome.app, outcome.held, extra={"app": outcome.app})
        if self.settings.dry_run:
            extra = {"app": outcome.app, "action": outcome.gateway, "spec": str(outcome.spec)}
            log.info("dry-run plan", extra=extra)
            return Result()
        state = self._write_gateway(outcome, inputs.observed, inputs.members)
        if outcome.verify_weight:
            state = self._read_back(outcome, state, services)
        for event in outcome.notices:
            self._record(event, services)
        self.hooks.notify(outcome.hooks)  # fire-and-forget: never waits for an answer
        self._write_statuses(outcome, state, services)
        if self.notifier is not None:  # only what was applied and persisted; never waits
            self.notifier.notify(outcome, services)
        self._export(outcome, state)
        APP_METRICS.export(outcome, services)
        return Result(self._look_again(outcome, inputs.now))

    def _look_again(self, outcome: Outcome, now: datetime) -> float | None:
        """When to reconcile again: the release's next check, or the end of a suspect window."""
        waits = [outcome.requeue_after, self.gateway_cache.verify_in(outcome.app, now)]
        return min((wait for wait in waits if wait is not None), default=None)

    def _write_gateway(
        self, outcome: Outcome, observed: AppState | None, members: tuple[Service, ...]
    ) -> AppState | None:
        """Apply or delete; return what the gateway now holds. A write whose outcome is unknown
        (it failed, or an attempt lost its answer) makes the app suspect for a window."""
        if outcome.gateway == "keep":
            return observed
        window_ends = self.now() + timedelta(seconds=self.settings.suspect_window)
        with unknown_outcomes() as unknown:
            try:
                state = self._apply_or_delete(outcome, observed)
            except GatewayError as error:
                self.gateway_cache.mark_suspect(outcome.app, window_ends)
                message = f"application {outcome.app}: {error}"
                for service in members:
                    self.recorder.warning(service, "GatewayError", message)
                raise
        self.gateway_cache.put(outcome.app, state)
        if unknown.count:
            log.info(
                "a write to %s lost its answer; reading it again until %s",
                outcome.app,
                window_ends.isoformat(timespec="seconds"),
                extra={"app": outcome.app},
            )
            self.gateway_cache.mark_suspect(outcome.app, window_ends)
        return state

    def _apply_or_delete(self, outcome: Outcome, observed: AppState | None) -> AppState | None:
        if outcome.gateway == "apply":
            assert outcome.spec is not None
            return self.gateway.apply(observed, outcome.spec)
        assert observed is not None
        self.gateway.delete(observed)
        return None

    def _read_back(
        self, outcome: Outcome, written: AppState | None, services: Mapping[str, Service]
    ) -> AppState | None:
        """After an automated weight write, ask the gateway what it applied."""
        assert outcome.spec is not None and outcome.spec.canary is not None
        applied = self.gateway.read_app(outcome.app)
        self.gateway_cache.put(outcome.app, applied)
        weight = applied.weight if applied and applied.canary else None
        if weight != outcome.spec.weight:
            metrics.weight_mismatches_total.inc()
            message = (
                f"the gateway applied {weight} % to the canary of {outcome.app}, canaryctl asked "
                f"for {outcome.spec.weight} %"
            )
            self._record(
                ServiceEvent(outcome.spec.canary.key, "Warning", "WeightMismatch", message),
                services,
            )
        return applied

    def _record_warnings(self, outcome: Outcome, services: Mapping[str, Service]) -> None:
        """Warning Events, once per input: a resync of unchanged bad input stays quiet."""
        for key, service in services.items():
            warnings = frozenset(w for w in outcome.warnings if w.service_key == key)
            if self._warned.is_new(service, warnings):
                for warning in sorted(warnings, key=lambda w: (w.reason, w.message)):
                    log.warning("%s: %s", key, warning.message, extra={"app": outcome.app})
                    self._record(warning, services)

    def _record(self, event: ServiceEvent, services: Mapping[str, Service]) -> None:
        service = services.get(event.service_key)
        if service is None:
            return
        record = self.recorder.warning if event.type == "Warning" else self.recorder.normal
        record(service, event.reason, event.message)

    def _write_statuses(
        self, outcome: Outcome, state: AppState | None, services: Mapping[str, Service]
    ) -> None:
        """Write each member's status annotation, only when its content (not its time) changed."""
        for key, status in outcome.statuses.items():
            service = services[key]
            current = service.annotations.get(STATUS)
            if status is None:
                self._warned.forget(key)
                if current is not None:
                    self.patch_status(service, None)
                continue
            status = status.with_applied(state, key)
            if not status.same_content(current):
                self.patch_status(service, status.render(self.now()))

    def _export(self, outcome: Outcome, state: AppState | None) -> None:
        """Desired vs applied canary weight, and how an automated release ended."""
        if outcome.release_outcome:
            metrics.releases_total.labels(outcome.release_outcome).inc()
        spec = outcome.spec
        if spec is None or state is None:
            return
        APP_METRICS.export_weights(
            spec.name,
            (spec.canary or spec.stable).namespace,
            spec.weight if spec.canary else 0,
            state.weight if state.canary else 0,
        )


class _WarningMemory:
    """Which warnings each Service got for which input, so repeats are not recorded again."""

    def __init__(self) -> None:
        self._warned: dict[str, tuple[tuple, frozenset[ServiceEvent]]] = {}

    def is_new(self, service: Service, warnings: frozenset[ServiceEvent]) -> bool:
        if not warnings:
            self._warned.pop(service.key, None)
            return False
        seen = (relevant_fingerprint(service), warnings)
        if self._warned.get(service.key) == seen:
            return False
        self._warned[service.key] = seen
        return True

    def forget(self, key: str) -> None:
        self._warned.pop(key, None)


def apps_of(old: Service | None, new: Service | None) -> Sequence[str]:
    """The application keys an informer event concerns (a Service may move between apps)."""
    return sorted(
        {app for service in (old, new) if service is not None for app in _app_index(service)}
    )
