"""The election's timing contract and the replica's identity, checked before anything runs.

Safety rests on three numbers (client-go's defaults: 15 s / 10 s / 2 s). A leader that
has not renewed for `renew_deadline` stops acting; a standby takes over only after it has
seen the Lease unchanged for `lease_duration`. `lease_duration > renew_deadline` therefore
leaves a margin (5 s by default) in which the old leader has already stopped while nobody
else may start yet; it also absorbs clocks running at slightly different rates. The
identity names one process, not one pod: a restarted container must not mistake its
predecessor's lease for its own, hence the random suffix.
"""

from __future__ import annotations

import os
import re
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

JITTER_FACTOR = 1.2  # client-go's leaderelection.JitterFactor
DEFAULT_LEASE_DURATION = 15.0
DEFAULT_RENEW_DEADLINE = 10.0
DEFAULT_RETRY_PERIOD = 2.0
_NOT_TOKEN_CHARACTERS = re.compile(r"[^A-Za-z0-9.-]+")  # keeps '_' free for the separator
_NOT_IN_HEADER_TOKEN = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ElectionConfig:
    """Which Lease to contend for and how fast; `validate()` runs on construction."""

    lease_name: str
    namespace: str
    lease_duration: float = DEFAULT_LEASE_DURATION
    renew_deadline: float = DEFAULT_RENEW_DEADLINE
    retry_period: float = DEFAULT_RETRY_PERIOD

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError unless lease_duration > renew_deadline > retry_period * 1.2 > 0.

        The Lease stores its duration in whole seconds and standbys judge expiry by the
        stored value, so a fractional lease duration would silently shrink the margin.
        """
        if not self.lease_name or not self.namespace:
            raise ValueError("leader election needs a Lease name and a namespace")
        if min(self.lease_duration, self.renew_deadline, self.retry_period) <= 0:
            raise ValueError("lease duration, renew deadline and retry period must be positive")
        if self.lease_duration != int(self.lease_duration):
            raise ValueError(f"lease duration must be whole seconds, not {self.lease_duration}")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError(
                f"lease duration ({self.lease_duration:g} s) must be greater than "
                f"the renew deadline ({self.renew_deadline:g} s)"
            )
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError(
                f"renew deadline ({self.renew_deadline:g} s) must be greater than "
                f"retry period ({self.retry_period:g} s) x {JITTER_FACTOR}"
            )

    @property
    def lease_duration_seconds(self) -> int:
        """The value written to spec.leaseDurationSeconds."""
        return int(self.lease_duration)

    @property
    def safety_margin(self) -> float:
        """Seconds between the leader stopping and the earliest moment another may start."""
        return self.lease_duration - self.renew_deadline

    def describe(self) -> str:
        return f"{self.namespace}/{self.lease_name}"


def jittered(period: float, rng: Callable[[], float], factor: float = JITTER_FACTOR) -> float:
    """client-go's wait.Jitter: `period` plus up to `factor` times `period` more, at random.

    Standbys that started together thus drift apart instead of hitting the API in step.
    """
    return period * (1.0 + factor * rng())


def new_identity(environ: Mapping[str, str] | None = None) -> str:
    """`<pod name>_<random hex>`: the pod name from $POD_NAME, else $HOSTNAME, else the host name.

    Characters other than letters, digits, '.' and '-' become '-', so the identity is a
    valid HTTP token and can go into a User-Agent header as it is (see `user_agent`).
    """
    environ = os.environ if environ is None else environ
    pod = environ.get("POD_NAME") or environ.get("HOSTNAME") or socket.gethostname()
    pod = _NOT_TOKEN_CHARACTERS.sub("-", pod).strip("-")[:200] or "canaryctl"
    return f"{pod}_{uuid.uuid4().hex}"


def user_agent(base: str, identity: str) -> str:
    """`base` with the replica's identity appended as a User-Agent comment.

    Gateway clients send it so a gateway's request log shows which replica wrote. Identities
    from `new_identity` pass unchanged; anything unsafe in a header would become '-'.
    """
    return f"{base} ({_NOT_IN_HEADER_TOKEN.sub('-', identity)})"
