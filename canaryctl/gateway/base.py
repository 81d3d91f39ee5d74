"""The interface every gateway backend implements, and the errors it raises.

Backends are thin I/O: `apply` turns the difference between an observed `AppState` and a
desired `AppSpec` into the fewest writes, and returns the state as the gateway answered it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from canaryctl.gateway.model import AppSpec, AppState


class GatewayError(Exception):
    """Any failure talking to the gateway. Messages never contain credentials."""


class TransientGatewayError(GatewayError):
    """Worth retrying later: connection trouble, timeouts, 429, 5xx."""


class TerminalGatewayError(GatewayError):
    """Retrying the same request will not help: 400, 401, 403, 404."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class Gateway(Protocol):
    """A gateway that can hold canaryctl's applications.

    `name` says which backend it is: the decision looks up what it can express
    (`canaryctl.matching.unsupported`); `cross_namespace_members` (optional, default True)
    whether it can route to Services outside the application's owner namespace.
    """

    name: str

    def list_apps(self) -> dict[str, AppState]:
        """Read every application (owned or not) by name: start-up and resync only."""

    def read_app(self, name: str) -> AppState | None:
        """Read one application back (after a write, to export the applied weight)."""

    def apply(self, current: AppState | None, desired: AppSpec) -> AppState:
        """Create or update an owned app so it routes as `desired`; no write if it already does."""

    def delete(self, current: AppState) -> None:
        """Delete an owned application and everything canaryctl created under it."""

    # Optional, for backends that watch what they wrote (the Gateway API backend): the
    # controller calls `start(notify)` before the first `list_apps`, and `notify(app)` means
    # "app changed behind canaryctl's back" (it is then read again and reconciled);
    # `has_synced()` joins readiness. Backends without them are polled on the resync period.
    # Optional too: `list_apps_to_resume()`, what the controller reads at start instead of
    # `list_apps` when the backend can tell from fewer reads enough to resume (API7 Cloud:
    # one read per owned app rather than two); drift it cannot see waits for the next resync.


class ConnectError(Exception):
    """The gateway cannot be reached or chosen at start: a message for the log and an exit code."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Connection:
    """A connected gateway backend, and how to let go of it at shutdown."""

    gateway: Gateway
    close: Callable[[], None]
