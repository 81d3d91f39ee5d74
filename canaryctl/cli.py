"""The `canaryctl` command line: one argparse tree, each subcommand in its own module.

Every command module exposes `configure(parser)` to add its flags and `run(args) -> int`.
Modules are imported only when the tree is built, so this file stays a plain table. An
entry `module:Name` names an object in the module that plays that role (with its own
docstring), so one module can serve several closely related subcommands.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys

# subcommand -> module (or module:Name) implementing configure()/run()
COMMANDS: dict[str, str] = {
    "run": "canaryctl.commands.run",
    "demo": "canaryctl.commands.demo",
    "status": "canaryctl.commands.status",
    "promote": "canaryctl.commands.control:Promote",
    "abort": "canaryctl.commands.control:Abort",
    "pause": "canaryctl.commands.control:Pause",
    "resume": "canaryctl.commands.control:Resume",
    "retry": "canaryctl.commands.control:Retry",
    "weight": "canaryctl.commands.control:Weight",
}

# `canaryctl dev <name>`: local stand-ins used by tests and the demo
DEV_COMMANDS: dict[str, str] = {
    "localkube": "canaryctl.testing.localkube.cli",
    "api7cloud": "canaryctl.testing.api7cloud.cli",
    "error-page": "canaryctl.testing.errorpage",
    "traefik": "canaryctl.testing.traefik.cli",
}


def _add_commands(subparsers, table: dict[str, str]) -> None:
    for name, target in table.items():
        module_name, _, attribute = target.partition(":")
        module = importlib.import_module(module_name)
        command = getattr(module, attribute) if attribute else module
        doc = inspect.cleandoc(command.__doc__ or "")
        parser = subparsers.add_parser(
            name,
            help=doc.splitlines()[0] if doc else None,
            description=doc,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.configure(parser)
        parser.set_defaults(_run=command.run)


def build_parser() -> argparse.ArgumentParser:
    """The whole command tree."""
    parser = argparse.ArgumentParser(prog="canaryctl", description=__doc__.splitlines()[0])
    from canaryctl import __version__

    parser.add_argument("--version", action="version", version=f"canaryctl {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_commands(subparsers, COMMANDS)
    dev = subparsers.add_parser(
        "dev", help="local stand-ins: control plane, gateway emulator, demo backend"
    )
    _add_commands(
        dev.add_subparsers(dest="dev_command", metavar="DEV_COMMAND", required=True), DEV_COMMANDS
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help(sys.stderr)
        return 2
    return int(args._run(args) or 0)
