"""The leader election loop: contend for the Lease, lead while renewals succeed, hand it back.

One thread runs `run()` in two phases, as client-go's LeaderElector does. Acquiring: try
every retry period (jittered x1.2), taking the Lease over only once it is free, released
or expired by our own clock; a watch on the Lease (`leasewatch`) makes a standby try at
once when it sees the Lease released or deleted, and right when the holder's lease runs
out by our clock, rather than at its next poll. Leading: `on_started_leading` runs in its
own thread with an Event that is set when leadership ends; the Lease is renewed every
retry period; when no renewal has succeeded for `renew_deadline` (counted from when the
last good one was sent) or someone else holds the Lease, we step down and `run()` returns.
It does not contend again: a replica that lost the lease should exit and restart clean.

`is_leader()` is computed from the clock on every call, so it turns False at the renew
deadline even while the loop is stuck in a request; writers should ask it right before
each write. Stopping gracefully waits for the leader's work to finish, then releases the
Lease so a watching standby takes over at once instead of after a full lease duration;
the work returning or raising on its own counts as a graceful stop. Unlike client-go,
on_stopped_leading is called only by an elector that led, and on_new_leader is not told
about an empty (released) holder.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from kubernetes import client

from canaryctl import metrics
from canaryctl.kube import describe_error
from canaryctl.leaderelection.config import ElectionConfig, jittered, new_identity, user_agent
from canaryctl.leaderelection.leaselock import LeaseConflict, LeaseLock
from canaryctl.leaderelection.leasewatch import LatestVersion, LeaseWatch
from canaryctl.leaderelection.state import ElectionState

log = logging.getLogger(__name__)

# what a flaky network or API server raises; anything else is logged with its traceback
EXPECTED_ERRORS = (client.ApiException, OSError, ValueError)


class LeaderElector:
    """One candidate for one Lease. `start()`/`stop()` run it in a thread; `run()` blocks.

    `identity` defaults to `new_identity()`; `lock` to a LeaseLock on `api` named by
    `config`. `clock` (monotonic seconds) judges every expiry and deadline, `wall_clock`
    only stamps acquireTime/renewTime, `rng` jitters the retries. `watch=False` leaves
    standbys to polling alone, as client-go does.
    """

    def __init__(
        self,
        api: client.ApiClient,
        config: ElectionConfig,
        *,
        identity: str | None = None,
        lock: LeaseLock | None = None,
        on_started_leading: Callable[[threading.Event], object] | None = None,
        on_stopped_leading: Callable[[], object] | None = None,
        on_new_leader: Callable[[str], object] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: Callable[[], float] = random.random,
        watch: bool = True,
    ) -> None:
        self.config = config
        self.identity = identity or new_identity()
        self._lock = lock or LeaseLock(api, config.namespace, config.lease_name)
        self._state = ElectionState(self.identity, config)
        self._on_started, self._on_stopped = on_started_leading, on_stopped_leading
        self._on_new_leader = on_new_leader
        self._clock, self._wall_clock, self._rng = clock, wall_clock, rng
        self._guard = threading.Lock()  # the state is written by run(), read from anywhere
        self._leading = False
        self._stop = threading.Event()
        self._release_on_stop = True
        self._work_stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker: threading.Thread | None = None
        self._reported_leader: str | None = None
        self._new_leaders: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._watch = watch
        self._watched = LatestVersion()  # what the watch saw; its `wake` is set by stop() too
        metrics.initialise_leader_election(config.lease_name)

    # public surface -----------------------------------------------------------------------

    def is_leader(self) -> bool:
        """True while we hold the Lease and our last renewal is younger than the renew deadline."""
        with self._guard:
            leading = self._leading and not self._stop.is_set()
            return leading and self._state.leading(self._clock())

    def leader(self) -> str:
        """The holder of the Lease as last seen ("" if none was seen, or it was released)."""
        with self._guard:
            return self._state.holder

    def user_agent(self, base: str) -> str:
        """`base` plus this replica's identity, for the User-Agent of requests it makes."""
        return user_agent(base, self.identity)

    def start(self) -> LeaderElector:
        """Run the election in a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="leader-election", daemon=True)
        self._thread.start()
        return self

    def stop(self, release: bool = True, timeout: float | None = None) -> None:
        """Stop contending or leading; `release` hands the Lease back if we hold it.

        Waits (at most `timeout`, default renew deadline + 5 s) for the loop to finish.
        `release=False` leaves the Lease to expire, as a crash would.
        """
        self._release_on_stop = release
        self._stop.set()
        self._watched.wake.set()
        waits = timeout if timeout is not None else self.config.renew_deadline + 5.0
        if self._thread and self._thread is not threading.current_thread():
            self._thread.join(waits)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the loop started by `start()` to end; True if it has."""
        if self._thread:
            self._thread.join(timeout)
        return self._thread is not None and not self._thread.is_alive()

    def run(self) -> None:
        """Acquire, then lead until the Lease is lost or `stop()` is called; then return."""
        notifier = threading.Thread(target=self._notify_new_leaders, name="leader-notify")
        notifier.daemon = True
        notifier.start()
        try:
            log.info("waiting to acquire lease %s as %s", self.config.describe(), self.identity)
            if self._acquire():
                self._lead()
        finally:
            self._new_leaders.put(None)

    # phases -------------------------------------------------------------------------------

    def _acquire(self) -> bool:
        """Try until we hold the Lease (True) or are stopped; see `_wait_for_next_try`."""
        watch = LeaseWatch(self._lock, self._watched.put, clock=self._clock)
        if self._watch:
            watch.start()
        try:
            while not self._stop.is_set():
                tried_at = self._clock()
                if self._try_acquire_or_renew():
                    return True
                self._wait_for_next_try(tried_at)
            return False
        finally:
            watch.stop(timeout=0)  # it ends on its own; leading must not wait for it

    def _wait_for_next_try(self, tried_at: float) -> None:
        """Wait a jittered retry period, or less: until the Lease is free by what we know.

        Free means seen released or deleted, or another holder's lease run out by our clock
        (`ElectionState.free_at`). Only news since the last try counts, so a try that fails
        for another reason waits for the retry period instead of spinning.
        """
        poll_at = self._clock() + jittered(self.config.retry_period, self._rng)
        while not self._stop.is_set():
            self._watched.wake.clear()
            self._take_watched()
            with self._guard:
                free_at = self._state.free_at()
            due = poll_at if free_at is None or free_at <= tried_at else min(poll_at, free_at)
            wait = due - self._clock()
            if wait <= 0:
                return
            self._watched.wake.wait(wait)

    def _take_watched(self) -> None:
        """Fold the newest watched version into the state (election thread, between tries)."""
        seen = self._watched.take()
        if seen is not None:
            lease, seen_at = seen
            with self._guard:
                if lease is None:
                    self._state.forget_lease(seen_at)
                else:
                    self._state.observe(lease, seen_at)
            self._report_new_leader()

    def _lead(self) -> None:
        with self._guard:
            self._leading = True
        metrics.leader_election_master_status.labels(self.config.lease_name).set(1)
        log.info("became leader of lease %s", self.config.describe())
        self._worker = self._start_work()
        lost = self._renew_until_lost()
        self._step_down(lost)

    def _renew_until_lost(self) -> str | None:
        """Renew every retry period; return why leadership was lost, or None when stopped."""
        while True:
            until = self._leading_until()
            if until is None:
                return f"the lease is held by {self.leader() or 'nobody'}"
            wait = min(self.config.retry_period, until - self._clock())
            if self._stop.wait(max(wait, 0.0)):
                return None
            if self._clock() >= until:
                return f"no renewal succeeded within {self.config.renew_deadline:g} s"
            self._try_acquire_or_renew()

    def _step_down(self, lost: str | None) -> None:
        """Stop the work; if stopped gracefully, let it finish and release; then tell the caller."""
        with self._guard:
            self._leading = False
        metrics.leader_election_master_status.labels(self.config.lease_name).set(0)
        self._work_stop.set()
        if lost is not None:
            log.warning("stopped leading lease %s: %s", self.config.describe(), lost)
        elif self._release_on_stop:
            self._release_when_work_done()
        else:
            log.info("stopped leading lease %s without releasing it", self.config.describe())
        _call_safely(self._on_stopped)

    def _release_when_work_done(self) -> None:
        """Release only if the work finished while the Lease was surely still ours."""
        until = self._leading_until()
        worker = self._worker
        if until is None:
            return
        if worker is not None and worker is not threading.current_thread():
            worker.join(max(0.0, until - self._clock()))
            if worker.is_alive():
                log.warning("leader work still running at the renew deadline; lease not released")
                return
        self._release()

    # one round against the API server ------------------------------------------------------

    def _try_acquire_or_renew(self) -> bool:
        """One attempt, bounded by the time we may still lead (or one renew deadline)."""
        deadline = self._leading_until() or self._clock() + self.config.renew_deadline
        try:
            return self._attempt(deadline)
        except LeaseConflict:
            log.info("lease %s changed under us; will read it again", self.config.describe())
        except EXPECTED_ERRORS as error:
            log.warning("lease %s: %s", self.config.describe(), describe_error(error))
        except Exception:
            log.exception("lease %s: unexpected error", self.config.describe())
        finally:
            self._report_new_leader()
        return False

    def _attempt(self, deadline: float) -> bool:
        with self._guard:
            fast_path = self._state.leading(self._clock()) and self._state.lease is not None
        if fast_path:  # client-go: the leader first writes what it last saw, without a GET
            try:
                return self._write(deadline)
            except LeaseConflict:
                log.info("optimistic renewal of %s conflicted; reading it", self.config.describe())
        lease = self._lock.get(timeout=deadline - self._clock())
        with self._guard:
            if lease is None:
                self._state.forget_lease(self._clock())
            else:
                self._state.observe(lease, self._clock())
                if self._state.held_by_other(self._clock()):
                    return False
        return self._write(deadline)

    def _write(self, deadline: float) -> bool:
        """Create the Lease, or update it from the version last seen, naming us the holder."""
        with self._guard:
            spec = self._state.acquire_or_renew_spec(self._wall_clock())
            current = self._state.lease
        sent_at = self._clock()
        timeout = deadline - sent_at
        if current is None:
            written = self._lock.create(spec, timeout)
        else:
            written = self._lock.update(current, spec, timeout)
        with self._guard:
            self._state.wrote(written, sent_at, self._clock())
        return True

    def _release(self) -> None:
        with self._guard:
            current = self._state.lease
            spec = self._state.release_spec(self._wall_clock())
        if current is None:
            return
        sent_at = self._clock()
        try:
            written = self._lock.update(current, spec, self.config.renew_deadline)
        except LeaseConflict:
            log.info("lease %s changed before release: not ours", self.config.describe())
            return
        except EXPECTED_ERRORS as error:
            log.warning(
                "cannot release lease %s: %s", self.config.describe(), describe_error(error)
            )
            return
        with self._guard:
            self._state.wrote(written, sent_at, self._clock())
        log.info("released lease %s", self.config.describe())

    # helpers -------------------------------------------------------------------------------

    def _leading_until(self) -> float | None:
        with self._guard:
            return self._state.leading_until()

    def _start_work(self) -> threading.Thread | None:
        if self._on_started is None:
            return None
        thread = threading.Thread(target=self._work, name="leader-work", daemon=True)
        thread.start()
        return thread

    def _work(self) -> None:
        """on_started_leading; when it ends, for whatever reason, leading ends too."""
        try:
            if self._on_started is not None:
                self._on_started(self._work_stop)
        except Exception:
            log.exception("on_started_leading failed; stepping down")
        finally:
            self._stop.set()

    def _report_new_leader(self) -> None:
        """Queue on_new_leader for a holder we have not reported yet (empty holders skipped)."""
        holder = self.leader()
        if not holder or holder == self._reported_leader:
            return
        if self._reported_leader is not None:
            metrics.leader_election_transitions_total.labels(self.config.lease_name).inc()
        self._reported_leader = holder
        log.info("lease %s is held by %s", self.config.describe(), holder)
        self._new_leaders.put(holder)

    def _notify_new_leaders(self) -> None:
        """Call on_new_leader in order, off the election thread so it cannot delay renewals."""
        while (holder := self._new_leaders.get()) is not None:
            if self._on_new_leader is not None:
                _call_safely(self._on_new_leader, holder)


def _call_safely(callback: Callable[..., object] | None, *args: object) -> None:
    if callback is None:
        return
    try:
        callback(*args)
    except Exception:
        log.exception("leader election callback %s failed", getattr(callback, "__name__", "?"))
