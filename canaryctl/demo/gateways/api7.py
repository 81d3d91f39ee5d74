"""The API7 Cloud kit: the project's emulator of the Open API, with its data plane."""

from __future__ import annotations

import secrets
from contextlib import ExitStack

from canaryctl.demo.gateways import Split
from canaryctl.testing.api7cloud import Emulator


class Api7Kit:
    name = "api7"

    def __init__(self) -> None:
        self.token = secrets.token_hex(16)
        self.emulator: Emulator

    def start(self, stack: ExitStack) -> None:
        self.emulator = stack.enter_context(Emulator(token=self.token))

    def route_service(self, host_port: str, address: str) -> None:
        self.emulator.add_resolve(host_port, address)

    def controller_args(self) -> list[str]:
        return ["--gateway=api7", f"--api7-addr={self.emulator.url}"]

    def controller_env(self) -> dict[str, str]:
        return {"API7_CLOUD_TOKEN": self.token}

    @property
    def dataplane_url(self) -> str:
        return self.emulator.dataplane_url

    @property
    def metrics_target(self) -> str:
        return self.emulator.dataplane_address

    def split(self, app: str) -> Split:
        found = self.emulator.app_by_name(app)
        if found is None or not self.emulator.apis(found["id"]):  # routable once its API exists
            return (None, None, 0)
        live = [c for c in self.emulator.canaries(found["id"]) if c.get("state") == "in_progress"]
        canary = live[0] if live else None
        return (
            found.get("default_upstream_version"),
            canary.get("canary_upstream_version") if canary else None,
            int(canary.get("percent") or 0) if canary else 0,
        )

    def writes(self) -> list:
        return [record for record in self.emulator.request_log() if record.method != "GET"]

    def clear_log(self) -> None:
        self.emulator.clear_request_log()
