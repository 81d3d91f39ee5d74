"""What one elector knows about the Lease, and every decision that follows from that alone.

This is the arithmetic of client-go's `tryAcquireOrRenew`, kept free of I/O and of clocks
so it can be tested as a table. Two rules carry the safety argument:

* A standby judges another holder's lease by *its own* monotonic clock: the lease expires
  `leaseDurationSeconds` after this elector first saw the current version of the Lease.
  The remote `renewTime` is never compared with the local clock, so skew between nodes
  cannot make a live lease look expired. Any write (new resourceVersion) restarts the wait.
* The leader counts its own time from when it *sent* its last successful write. That
  write reached the API server after it was sent, so no standby's wait started earlier;
  `renew_deadline < lease_duration` then puts the leader's stop before any takeover.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from canaryctl.leaderelection.config import ElectionConfig

RELEASED_LEASE_SECONDS = 1  # client-go's release: an empty holder whose lease ends at once


@dataclass(frozen=True)
class LeaseRecord:
    """The election fields of one version of the Lease."""

    holder: str
    lease_duration_seconds: int
    transitions: int
    acquire_time: str | None
    resource_version: str

    @classmethod
    def from_lease(cls, lease: dict) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            transitions=int(spec.get("leaseTransitions") or 0),
            acquire_time=spec.get("acquireTime"),
            resource_version=(lease.get("metadata") or {}).get("resourceVersion", ""),
        )


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime: RFC 3339 in UTC with microseconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class ElectionState:
    """One elector's view of the Lease. `now` and `sent_at` are the elector's monotonic seconds.

    Not thread-safe; the elector guards it with a lock.
    """

    def __init__(self, identity: str, config: ElectionConfig) -> None:
        self.identity = identity
        self.config = config
        self.lease: dict | None = None  # the Lease as last read or written, for the next PUT
        self.record: LeaseRecord | None = None
        self.observed_at = 0.0  # when the current version of the Lease was first seen
        self.renewed_at: float | None = None  # when our last successful write was sent

    def observe(self, lease: dict, now: float) -> None:
        """Remember a Lease just read; a new resourceVersion restarts the expiry wait."""
        record = LeaseRecord.from_lease(lease)
        if self.record is None or record.resource_version != self.record.resource_version:
            self.observed_at = now
        self.lease, self.record = lease, record

    def wrote(self, lease: dict, sent_at: float, now: float) -> None:
        """Remember a Lease we created or updated with a request sent at `sent_at`."""
        self.observe(lease, now)
        self.renewed_at = sent_at if self.holding else None

    def forget_lease(self, now: float) -> None:
        """The Lease was not found (seen missing at `now`): the next write is a create."""
        if self.record is not None:
            self.observed_at = now
        self.lease = self.record = None

    @property
    def holding(self) -> bool:
        """Whether the last version we saw names us as the holder."""
        return self.record is not None and self.record.holder == self.identity

    @property
    def holder(self) -> str:
        return self.record.holder if self.record else ""

    def expires_at(self) -> float | None:
        """When another holder's lease ends by our clock; None if nobody else holds it."""
        record = self.record
        if record is None or not record.holder or record.holder == self.identity:
            return None
        seconds = record.lease_duration_seconds or self.config.lease_duration_seconds
        return self.observed_at + seconds

    def held_by_other(self, now: float) -> bool:
        """True while someone else holds a lease that has not expired by our clock."""
        expiry = self.expires_at()
        return expiry is not None and now < expiry

    def free_at(self) -> float | None:
        """From when the Lease may be taken by our clock; None while we hold it.

        A missing or released Lease is free from when we saw it so; another holder's lease
        from its expiry. The elector tries early only when this moment is newer than its
        last try, so a standby that keeps failing falls back to its retry period.
        """
        record = self.record
        if record is not None and record.holder == self.identity:
            return None
        if record is None or not record.holder:
            return self.observed_at
        return self.expires_at()

    def leading_until(self) -> float | None:
        """When we must stop acting as leader unless a renewal succeeds first."""
        if not self.holding or self.renewed_at is None:
            return None
        return self.renewed_at + self.config.renew_deadline

    def leading(self, now: float) -> bool:
        until = self.leading_until()
        return until is not None and now < until

    def acquire_or_renew_spec(self, wall_now: datetime) -> dict:
        """The Lease spec fields that make (or keep) us the holder.

        Renewing keeps acquireTime and leaseTransitions; taking over from anyone (including
        an empty, released holder) sets acquireTime and counts one more transition.
        """
        stamp = micro_time(wall_now)
        record = self.record
        if record is not None and self.holding:
            acquired, transitions = record.acquire_time or stamp, record.transitions
        else:
            acquired, transitions = stamp, (record.transitions + 1 if record else 0)
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": self.config.lease_duration_seconds,
            "acquireTime": acquired,
            "renewTime": stamp,
            "leaseTransitions": transitions,
        }

    def release_spec(self, wall_now: datetime) -> dict:
        """The spec that hands the Lease back: no holder, a 1 s lease, transitions unchanged."""
        stamp = micro_time(wall_now)
        return {
            "holderIdentity": "",
            "leaseDurationSeconds": RELEASED_LEASE_SECONDS,
            "acquireTime": stamp,
            "renewTime": stamp,
            "leaseTransitions": self.record.transitions if self.record else 0,
        }
