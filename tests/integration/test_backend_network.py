"""The backend network namespace is reachable from here, and never outlives its owner.

Backends for Traefik run in a network namespace the kit creates (root, iproute2). These
tests check that a process inside answers on the namespace's address, that `remove()`
deletes the namespace and the host's veth link, and that a namespace whose owner was
killed is removed by the next run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest
import requests

from canaryctl.testing.processes import wait_until
from canaryctl.testing.traefik.backends import error_page_command
from canaryctl.testing.traefik.netns import BackendNetwork, remove_stale_namespaces

REQUIRE_ENV = "CANARYCTL_REQUIRE_LOCALKUBE"

if os.geteuid() != 0 or not shutil.which("ip"):
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but network namespaces need root and iproute2", pytrace=False)
    pytest.skip("network namespaces need root and iproute2", allow_module_level=True)


def _namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def _link_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def test_a_backend_in_the_namespace_answers_on_its_address(tmp_path):
    with BackendNetwork() as network:
        assert network.name in _namespaces() and _link_exists(network.host_link)
        assert not network.backend_ip.startswith("127.")
        command = error_page_command("v9", network.backend_ip, 8001, 0.0)
        process = network.spawn(command, tmp_path / "backend.log")
        try:
            url = f"http://{network.backend_ip}:8001/api/error_page"

            def answers() -> bool:
                try:
                    return requests.get(url, timeout=2).json()["version"] == "v9"
                except requests.RequestException:
                    return False

            wait_until(answers, 30, "the backend inside the namespace")
        finally:
            process.terminate()
            process.wait(10)
    assert network.name not in _namespaces()
    assert not _link_exists(network.host_link)


def test_a_namespace_left_by_a_killed_owner_is_removed_at_the_next_start():
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from canaryctl.testing.traefik.netns import BackendNetwork
                network = BackendNetwork().create()
                print(network.name, network.host_link, flush=True)
                time.sleep(600)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    name, host_link = owner.stdout.readline().split()
    owner.send_signal(signal.SIGKILL)  # no atexit, no finally
    owner.wait(10)
    assert name in _namespaces()

    assert name in remove_stale_namespaces()
    assert name not in _namespaces()
    wait_until(lambda: not _link_exists(host_link), 10, f"link {host_link} to vanish")
