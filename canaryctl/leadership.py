"""Several replicas of `canaryctl run`, one writer: warm standbys behind a Lease.

Two controllers writing one gateway would undo each other's writes, so with
`--leader-elect` every replica syncs its caches and serves health (a synced standby is
ready), but only the holder of the Lease (`canaryctl.leaderelection`) starts workers and
writes. Winning the Lease calls `Controller.start_leading`; losing it ends the process at
once (as client-go controllers do: the Deployment restarts it as a clean standby);
SIGTERM drains the leader's in-flight work, then hands the Lease back so a standby, which
watches the Lease, takes over within a second or two.

Every write is fenced: `FencedGateway` and the controller's status patches and Events ask
`may_write` (the elector's `is_leader`, false from the renew deadline on, even while the
election thread is stuck in a request) right before sending, and refuse with `NotLeading`.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from kubernetes import client

from canaryctl.gateway.base import Gateway, GatewayError
from canaryctl.gateway.model import AppSpec, AppState
from canaryctl.kube import DEFAULT_SERVICEACCOUNT_DIR, SERVICEACCOUNT_DIR_ENV
from canaryctl.leaderelection import ElectionConfig, LeaderElector

if TYPE_CHECKING:
    from canaryctl.controller import Controller

log = logging.getLogger("canaryctl")

DEFAULT_LEASE_NAME = "canaryctl"
DRAIN_TIMEOUT = 5.0  # seconds a stopping leader waits for in-flight reconciles and Events
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(ms|s)?\s*$")


class NotLeading(GatewayError):
    """A write refused before it was sent: this replica does not (or no longer) hold the Lease."""

    def __init__(self, what: str) -> None:
        super().__init__(f"not the leader: {what}")


class FencedGateway:
    """`gateway`, whose writes go out only while `may_write()` says so. Reads always do."""

    def __init__(self, gateway: Gateway, may_write: Callable[[], bool]) -> None:
        self._gateway, self._may_write = gateway, may_write
        self.name = gateway.name

    def list_apps(self) -> dict[str, AppState]:
        return self._gateway.list_apps()

    def read_app(self, name: str) -> AppState | None:
        return self._gateway.read_app(name)

    def apply(self, current: AppState | None, desired: AppSpec) -> AppState:
        self._check(desired.name)
        return self._gateway.apply(current, desired)

    def delete(self, current: AppState) -> None:
        self._check(current.name)
        self._gateway.delete(current)

    def __getattr__(self, name: str) -> object:
        """Anything else the backend offers (flags, hooks) is the backend's own."""
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._gateway, name)

    def _check(self, app: str) -> None:
        if not self._may_write():
            raise NotLeading(f"gateway write for {app} not sent")


# flags -------------------------------------------------------------------------------------


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("leader election (several replicas, one writer)")
    group.add_argument(
        "--leader-elect",
        action="store_true",
        help="contend for a Lease; only its holder writes, the others stand by warm",
    )
    for name, default, meaning in (
        ("lease-duration", "15s", "how long standbys wait, by their own clock, before taking "
         "over a Lease that stopped changing"),
        ("renew-deadline", "10s", "how long the leader keeps trying to renew before it stops "
         "writing and exits"),
        ("retry-period", "2s", "how often the leader renews and standbys look"),
    ):  # fmt: skip
        group.add_argument(
            f"--leader-elect-{name}",
            type=seconds,
            default=seconds(default),
            metavar="DURATION",
            help=f"{meaning} (e.g. 15s, 500ms; default: {default})",
        )
    group.add_argument(
        "--leader-elect-namespace",
        metavar="NS",
        help="namespace of the Lease (default: $POD_NAMESPACE, else the pod's own namespace "
        "from its ServiceAccount mount; required elsewhere)",
    )
    group.add_argument(
        "--leader-elect-lease-name",
        default=DEFAULT_LEASE_NAME,
        metavar="NAME",
        help="name of the Lease (default: %(default)s; the shipped Role allows only this name)",
    )


def seconds(text: str) -> float:
    """`15`, `15s` or `500ms` as seconds."""
    match = _DURATION.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 15s, 500ms)")
    value = float(match.group(1))
    return value / 1000 if match.group(2) == "ms" else value


def election_config(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> ElectionConfig | None:
    """The election the flags ask for (None without --leader-elect); ValueError if invalid."""
    if not args.leader_elect:
        return None
    namespace = args.leader_elect_namespace or own_namespace(environ)
    if not namespace:
        raise ValueError(
            "--leader-elect needs --leader-elect-namespace outside a pod "
            "(no $POD_NAMESPACE, no ServiceAccount namespace file)"
        )
    return ElectionConfig(
        args.leader_elect_lease_name,
        namespace,
        args.leader_elect_lease_duration,
        args.leader_elect_renew_deadline,
        args.leader_elect_retry_period,
    )


def own_namespace(environ: Mapping[str, str] | None = None) -> str | None:
    """The pod's namespace: $POD_NAMESPACE, else the ServiceAccount mount's `namespace` file."""
    environ = os.environ if environ is None else environ
    if environ.get("POD_NAMESPACE"):
        return environ["POD_NAMESPACE"]
    directory = Path(environ.get(SERVICEACCOUNT_DIR_ENV) or DEFAULT_SERVICEACCOUNT_DIR)
    try:
        return (directory / "namespace").read_text().strip() or None
    except OSError:
        return None


# the replica -------------------------------------------------------------------------------


class ElectedController:
    """One replica: the controller warm from the start, leading while the elector holds the Lease.

    `exit` ends the process when the Lease is lost (os._exit: no cleanup that might write).
    """

    def __init__(
        self,
        api: client.ApiClient,
        config: ElectionConfig,
        identity: str,
        exit: Callable[[int], object] = os._exit,  # noqa: A002 - it is what it does
    ) -> None:
        self.elector = LeaderElector(
            api,
            config,
            identity=identity,
            on_started_leading=self._lead,
            on_stopped_leading=self._stopped_leading,
            on_new_leader=lambda holder: log.info("the leader is %s", holder),
        )
        self._exit = exit
        self._stopping = threading.Event()
        self.controller: Controller | None = None

    def start(self, controller: Controller) -> None:
        """Sync the caches (blocking), then contend: an unsynced replica never takes the Lease."""
        self.controller = controller
        controller.start(lead=False)
        if not self._stopping.is_set():
            self.elector.start()

    def stop(self) -> None:
        """SIGTERM: a leader finishes its in-flight work while the Lease is surely still its
        own, then hands the Lease back (or, if the work did not finish, leaves it to expire)."""
        self._stopping.set()
        drained = True
        if self.controller is not None:  # a standby too: it may be winning the Lease right now
            drained = self.controller.stop_leading(DRAIN_TIMEOUT)
            if not drained:
                log.warning("in-flight work did not finish; leaving the lease to expire")
        self.elector.stop(release=drained)

    def _lead(self, stop: threading.Event) -> None:
        """on_started_leading: write until leadership ends."""
        assert self.controller is not None
        self.controller.start_leading()
        stop.wait()

    def _stopped_leading(self) -> None:
        if self._stopping.is_set():
            return  # handed back on purpose
        log.error(
            "lost the lease %s: exiting to rejoin as a standby", self.elector.config.describe()
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        self._exit(1)
