"""The controller's work queue, with client-go `util/workqueue` semantics, in plain threads.

Why: event handlers must only record *which* Service changed; workers reconcile later,
never two at once for the same key, and failures retry with back-off instead of hot-looping.

Contract (items are keys — canaryctl queues application names —, never objects):

- ``add(key)``: queue the key unless it is already waiting. A key re-added while a worker
  holds it is queued again when that worker calls ``done``; it is never handed to a second
  worker at the same time.
- ``get(timeout=None) -> (key, shutdown)``: blocks for the next key and marks it as being
  processed. After ``shut_down`` it still returns queued keys, then ``(None, True)``; a
  ``timeout`` (real seconds) that expires returns ``(None, False)``.
- ``done(key)``: always call it, in ``finally``, for every key ``get`` returned.
- ``add_after(key, delay)``: add once ``delay`` seconds of the queue's clock have passed;
  ``delay <= 0`` adds now; several calls for one key keep the earliest time.
- ``add_rate_limited(key)`` on a transient error: ``add_after(key, limiter.when(key))``
  with max(per-key 5 ms·2^failures capped at 1000 s, shared bucket 10/s burst 100).
  ``forget(key)`` on success resets the key's failures; ``num_requeues(key)`` reports them.
- ``shut_down()`` ignores later adds, drops delayed keys and wakes all waiters;
  ``shut_down_with_drain()`` also waits until every handed-out key is ``done``.
- Time comes from an injected ``Clock``; ``FakeClock.step`` makes delayed keys due and
  refreshes the in-progress gauges without real sleeping.
- Metrics (``workqueue_*`` with labels ``name``, ``controller``) go through an injectable
  ``QueueMetrics``; the default reports nothing. ``workqueue_retries_total`` counts
  ``add_rate_limited`` calls (client-go also counts plain ``add_after``; scheduled polling
  is not a retry here).

Usage in a worker::

    key, shutdown = queue.get()
    if shutdown:
        return
    try:
        reconcile(key)
        queue.forget(key)
    except TransientError:
        queue.add_rate_limited(key)
    finally:
        queue.done(key)
"""

from __future__ import annotations

from canaryctl.workqueue.clock import Clock, FakeClock, RealClock
from canaryctl.workqueue.default_rate_limiters import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    RateLimiter,
    default_controller_rate_limiter,
)
from canaryctl.workqueue.delaying_queue import DelayingQueue
from canaryctl.workqueue.metrics import NoQueueMetrics, PrometheusQueueMetrics, QueueMetrics
from canaryctl.workqueue.queue import Queue
from canaryctl.workqueue.rate_limiting_queue import RateLimitingQueue

__all__ = [
    "BucketRateLimiter",
    "Clock",
    "DelayingQueue",
    "FakeClock",
    "ItemExponentialFailureRateLimiter",
    "MaxOfRateLimiter",
    "NoQueueMetrics",
    "PrometheusQueueMetrics",
    "Queue",
    "QueueMetrics",
    "RateLimiter",
    "RateLimitingQueue",
    "RealClock",
    "default_controller_rate_limiter",
    "new_controller_queue",
]


def new_controller_queue(
    name: str, clock: Clock | None = None, metrics: bool = True
) -> RateLimitingQueue:
    """The controller's queue: default rate limiter, `workqueue_*` metrics unless metrics=False."""
    clock = clock or RealClock()
    provider: QueueMetrics = PrometheusQueueMetrics(name, clock) if metrics else NoQueueMetrics()
    return RateLimitingQueue(name=name, clock=clock, metrics=provider)
