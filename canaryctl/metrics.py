"""Every Prometheus metric canaryctl exports, defined in one place.

Names and labels of the controller-runtime and workqueue families are copied verbatim so
existing dashboards work; the rest carry the `canaryctl_` prefix. No label takes
unbounded values except namespace/app. `initialise()` sets every known label set to 0 so
`rate()` works from the first scrape.
"""

from __future__ import annotations

from typing import Any, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

REGISTRY = CollectorRegistry(auto_describe=True)
CONTROLLER = "service"  # the one controller name canaryctl runs

_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_QUEUE_BUCKETS = tuple(1e-8 * 10**i for i in range(10))  # client-go: 10ns .. 10s, exponential

# controller-runtime: pkg/internal/controller/metrics
reconcile_total = Counter(
    "controller_runtime_reconcile_total",
    "Total number of reconciliations per controller",
    ["controller", "result"],
    registry=REGISTRY,
)
reconcile_errors_total = Counter(
    "controller_runtime_reconcile_errors_total",
    "Total number of reconciliation errors per controller",
    ["controller"],
    registry=REGISTRY,
)
reconcile_time_seconds = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Length of time per reconciliation per controller",
    ["controller"],
    buckets=_DURATION_BUCKETS,
    registry=REGISTRY,
)

# client-go workqueue (controller-runtime registers these with label `name` and `controller`)
workqueue_depth = Gauge(
    "workqueue_depth", "Current depth of workqueue", ["name", "controller"], registry=REGISTRY
)
workqueue_adds_total = Counter(
    "workqueue_adds_total",
    "Total number of adds handled by workqueue",
    ["name", "controller"],
    registry=REGISTRY,
)
workqueue_queue_duration_seconds = Histogram(
    "workqueue_queue_duration_seconds",
    "How long in seconds an item stays in workqueue before being requested",
    ["name", "controller"],
    buckets=_QUEUE_BUCKETS,
    registry=REGISTRY,
)
workqueue_work_duration_seconds = Histogram(
    "workqueue_work_duration_seconds",
    "How long in seconds processing an item from workqueue takes",
    ["name", "controller"],
    buckets=_QUEUE_BUCKETS,
    registry=REGISTRY,
)
workqueue_retries_total = Counter(
    "workqueue_retries_total",
    "Total number of retries handled by workqueue",
    ["name", "controller"],
    registry=REGISTRY,
)
workqueue_unfinished_work_seconds = Gauge(
    "workqueue_unfinished_work_seconds",
    "How many seconds of work has been done that is in progress and hasn't "
    "been observed by work_duration",
    ["name", "controller"],
    registry=REGISTRY,
)
workqueue_longest_running_processor_seconds = Gauge(
    "workqueue_longest_running_processor_seconds",
    "How many seconds has the longest running processor for workqueue been running",
    ["name", "controller"],
    registry=REGISTRY,
)

# gateway calls: backend in {api7, apisix}; method is the HTTP verb; code the status or "error"
gateway_requests_total = Counter(
    "canaryctl_gateway_requests_total",
    "Gateway API calls",
    ["backend", "method", "code"],
    registry=REGISTRY,
)
gateway_request_duration_seconds = Histogram(
    "canaryctl_gateway_request_duration_seconds",
    "Gateway API call latency",
    ["backend", "method"],
    buckets=_DURATION_BUCKETS,
    registry=REGISTRY,
)
gateway_writes_total = Counter(
    "canaryctl_gateway_writes_total",
    "Gateway writes (create, replace, delete)",
    ["backend"],
    registry=REGISTRY,
)
gateway_retries_total = Counter(
    "canaryctl_gateway_retries_total", "Gateway API calls retried", ["backend"], registry=REGISTRY
)

# informer
watch_restarts_total = Counter(
    "canaryctl_watch_restarts_total",
    "Watch streams restarted, by reason",
    ["reason"],
    registry=REGISTRY,
)
relists_total = Counter(
    "canaryctl_relists_total", "Full lists of Services, by reason", ["reason"], registry=REGISTRY
)
cached_services = Gauge(
    "canaryctl_cached_services", "Services held in the informer cache", registry=REGISTRY
)

# canaries
canary_weight = Gauge(
    "canaryctl_canary_weight",
    "Desired canary weight (percent)",
    ["namespace", "app"],
    registry=REGISTRY,
)
canary_applied_weight = Gauge(
    "canaryctl_canary_applied_weight",
    "Canary weight the gateway reports (percent)",
    ["namespace", "app"],
    registry=REGISTRY,
)
canary_observed_share = Gauge(
    "canaryctl_canary_observed_share",
    "Share of the application's requests the canary served over the last check's window, "
    "from the gateway's own counters (percent; NaN without requests)",
    ["namespace", "app"],
    registry=REGISTRY,
)
weight_mismatches_total = Counter(
    "canaryctl_weight_mismatches_total",
    "Read-backs where the gateway's weight differed from the desired one",
    registry=REGISTRY,
)
releases_total = Counter(
    "canaryctl_releases_total", "Finished releases by outcome", ["result"], registry=REGISTRY
)
analysis_checks_total = Counter(
    "canaryctl_analysis_checks_total",
    "Analysis checks by classification",
    ["result"],
    registry=REGISTRY,
)
# release hooks: hook in {pre, step, promote, rollback}; result pass|fail|error, refused (its
# host is not allowed by --hook-allow: nothing sent), or dropped (a rollback notice that found
# the notifier's queue full)
hook_calls_total = Counter(
    "canaryctl_hook_calls_total",
    "Release hook calls by hook and result",
    ["hook", "result"],
    registry=REGISTRY,
)
events_total = Counter(
    "canaryctl_events_total", "Events recorded, by reason", ["reason"], registry=REGISTRY
)
events_dropped_total = Counter(
    "canaryctl_events_dropped_total",
    "Events not written, by reason: spam_filter (over a Service's burst of 25, refilled "
    "1 per 5 min), queue_full (the recorder's queue), stopped (the recorder had stopped), "
    "not_leader (this replica lost the leader election before sending it)",
    ["reason"],
    registry=REGISTRY,
)

# per application, for the Grafana dashboard (manifests/grafana): labels namespace/app plus
# bounded ones only — phase, metric name, check result, role (stable/canary)
release_phase = Gauge(
    "canaryctl_release_phase",
    "1 for the automated release's current phase, 0 for the others",
    ["namespace", "app", "phase"],
    registry=REGISTRY,
)
release_step = Gauge(
    "canaryctl_release_step",
    "The automated release's current step (1-based)",
    ["namespace", "app"],
    registry=REGISTRY,
)
release_steps = Gauge(
    "canaryctl_release_steps",
    "Steps in the automated release's schedule",
    ["namespace", "app"],
    registry=REGISTRY,
)
release_checks_total = Counter(
    "canaryctl_release_checks_total",
    "Analysis checks per application, by classification",
    ["namespace", "app", "result"],
    registry=REGISTRY,
)
analysis_value = Gauge(
    "canaryctl_analysis_value",
    "The last check's measured value per metric (error_rate, slow_requests: percent; "
    "latency_p99: milliseconds)",
    ["namespace", "app", "metric"],
    registry=REGISTRY,
)
analysis_threshold = Gauge(
    "canaryctl_analysis_threshold",
    "The limit the last check's value had to stay at or below, per metric",
    ["namespace", "app", "metric"],
    registry=REGISTRY,
)
upstream_info = Gauge(
    "canaryctl_upstream_info",
    "1 per application and role: `node` is the upstream target (host:port) as the gateway's "
    "request metrics label it, so its series can be joined by role",
    ["namespace", "app", "role", "node"],
    registry=REGISTRY,
)

# webhook notifications: channel names come from the controller's configuration (bounded)
notifications_total = Counter(
    "canaryctl_notifications_total",
    "Webhook notifications by channel and result: sent, failed (given up after retries, or "
    "rejected), dropped (queue full or stopped), duplicate (same idempotency key again)",
    ["channel", "result"],
    registry=REGISTRY,
)
notification_retries_total = Counter(
    "canaryctl_notification_retries_total",
    "Webhook deliveries retried (timeouts, connection errors, 429, 5xx)",
    ["channel"],
    registry=REGISTRY,
)
notification_unknown_channels_total = Counter(
    "canaryctl_notification_unknown_channels_total",
    "Channel names in api7.cloud/canary-notify the controller's configuration does not define",
    registry=REGISTRY,
)

# `run --metrics-secure`: decision allowed|unauthenticated|forbidden|error; source: where the
# decision came from — apiserver (reviews), cache, or request (no bearer token: nothing to ask)
metrics_auth_total = Counter(
    "canaryctl_metrics_auth_total",
    "Requests to the secure /metrics endpoint, by decision and its source",
    ["decision", "source"],
    registry=REGISTRY,
)

# leader election: client-go's gauge (same name and label), plus handoffs seen by this replica
leader_election_master_status = Gauge(
    "leader_election_master_status",
    "Gauge of if the reporting system is master of the relevant lease, "
    "0 indicates backup, 1 indicates master. 'name' is the string used to identify the lease.",
    ["name"],
    registry=REGISTRY,
)
leader_election_transitions_total = Counter(
    "canaryctl_leader_election_transitions_total",
    "Changes of the lease holder this replica observed (the first holder it saw not counted)",
    ["name"],
    registry=REGISTRY,
)

RECONCILE_RESULTS = ("success", "error", "requeue", "requeue_after")
RELEASE_RESULTS = ("succeeded", "rolled_back", "aborted", "promoted")
CHECK_RESULTS = ("pass", "fail", "no_data", "error")
HOOKS = ("pre", "step", "promote", "rollback")
HOOK_RESULTS = ("pass", "fail", "error", "refused", "dropped")
WATCH_RESTART_REASONS = ("expired", "closed", "error")
RELIST_REASONS = ("initial", "expired", "resync")
EVENT_DROP_REASONS = ("spam_filter", "queue_full", "stopped", "not_leader")
METRICS_AUTH_DECISIONS = ("allowed", "unauthenticated", "forbidden", "error")


def initialise(
    queue_name: str = CONTROLLER, backend: str = "api7", lease_name: str | None = None
) -> None:
    """Touch every fixed label set so each series exists (at 0) from the first scrape.

    `lease_name`: the leader election Lease, if leader election is on.
    """
    for result in RECONCILE_RESULTS:
        reconcile_total.labels(CONTROLLER, result)
    reconcile_errors_total.labels(CONTROLLER)
    reconcile_time_seconds.labels(CONTROLLER)
    for family in (
        workqueue_depth,
        workqueue_adds_total,
        workqueue_queue_duration_seconds,
        workqueue_work_duration_seconds,
        workqueue_retries_total,
        workqueue_unfinished_work_seconds,
        workqueue_longest_running_processor_seconds,
    ):
        family.labels(queue_name, CONTROLLER)
    gateway_retries_total.labels(backend)
    gateway_writes_total.labels(backend)
    for reason in WATCH_RESTART_REASONS:
        watch_restarts_total.labels(reason)
    for reason in RELIST_REASONS:
        relists_total.labels(reason)
    for result in RELEASE_RESULTS:
        releases_total.labels(result)
    for result in CHECK_RESULTS:
        analysis_checks_total.labels(result)
    for hook in HOOKS:
        for result in HOOK_RESULTS:
            hook_calls_total.labels(hook, result)
    for reason in EVENT_DROP_REASONS:
        events_dropped_total.labels(reason)
    if lease_name:
        initialise_leader_election(lease_name)


def initialise_leader_election(lease_name: str) -> None:
    """Not leading (0) and no transitions yet, for one Lease."""
    leader_election_master_status.labels(lease_name).set(0)
    leader_election_transitions_total.labels(lease_name)


def initialise_metrics_auth() -> None:
    """The secure endpoint's series, touched only when it is on."""
    for decision in METRICS_AUTH_DECISIONS:
        for source in ("apiserver", "cache"):
            metrics_auth_total.labels(decision, source)
    metrics_auth_total.labels("unauthenticated", "request")


Family = TypeVar("Family", bound=MetricWrapperBase)
_series: dict[tuple[Any, tuple[str, ...]], Any] = {}


def series(family: Family, *values: str) -> Family:
    """`family.labels(*values)`, looked up once and then remembered (labels() validates and
    locks on every call, several times per weight change). Only for label values from a small
    fixed set (backend, method, status code, result): a series made here is never removed."""
    child = _series.get((family, values))
    if child is None:
        child = _series[(family, values)] = family.labels(*values)
    return child
