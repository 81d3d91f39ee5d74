"""The command line loads only the chosen command: the controller's path never imports the test
kit or the demo, and without them the dev commands say plainly that they are not installed."""

from __future__ import annotations

import subprocess
import sys

import pytest

from canaryctl.cli import COMMANDS, DEV_COMMANDS, main

LOADED_AFTER = """
import sys
from canaryctl.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(sorted(m for m in sys.modules if m.startswith(("canaryctl.testing", "canaryctl.demo"))))
"""

WITHOUT_DEV_TOOLS = """
import importlib.abc, sys
class Absent(importlib.abc.MetaPathFinder):  # as in the image: the packages are not there
    def find_spec(self, name, path, target=None):
        if name.startswith(("canaryctl.testing", "canaryctl.demo")):
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Absent())
from canaryctl.cli import main
sys.exit(main({argv!r}))
"""


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("argv", [["run", "--help"], ["--help"], ["status", "--help"]])
def test_the_controller_path_loads_neither_the_test_kit_nor_the_demo(argv):
    result = python(LOADED_AFTER.format(argv=argv))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "[]"


def test_a_dev_command_loads_the_test_kit():
    result = python(LOADED_AFTER.format(argv=["dev", "api7cloud", "--help"]))
    assert "canaryctl.testing.api7cloud.cli" in result.stdout


@pytest.mark.parametrize("argv", [["dev", "localkube", "--build-only"], ["demo"]])
def test_without_the_dev_tools_their_commands_say_so(argv):
    result = python(WITHOUT_DEV_TOOLS.format(argv=argv))
    assert result.returncode == 2
    assert "dev tools (canaryctl.testing, canaryctl.demo) are not installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_controller_still_runs_without_the_dev_tools():
    result = python(WITHOUT_DEV_TOOLS.format(argv=["run", "--help"]))
    assert result.returncode == 0 and "--gateway" in result.stdout


def test_every_command_has_a_summary_and_loads(capsys):
    for table in (COMMANDS, DEV_COMMANDS):
        for name, command in table.items():
            assert command.summary, name
            module = command.target.partition(":")[0]
            assert __import__(module, fromlist=["_"]) is not None
    assert main([]) == 2  # no command: the help, and a usage error
    assert "COMMAND" in capsys.readouterr().err
