"""The `canaryctl` command line: a table of subcommands, each in its own module, imported on use.

Every command module exposes `configure(parser)` to add its flags and `run(args) -> int`. Only
the chosen command's module is imported, so `canaryctl run` loads the controller and nothing of
the test kit or the demo (which the image does not even contain). An entry `module:Name` names
an object in the module that plays that role, so one module can serve several subcommands.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from typing import NamedTuple


class Command(NamedTuple):
    target: str  # "module" or "module:Name" implementing configure()/run()
    summary: str  # one line for `canaryctl --help`


COMMANDS: dict[str, Command] = {
    "run": Command("canaryctl.commands.run", "run the controller"),
    "demo": Command("canaryctl.commands.demo", "the seed's walk-through on this machine"),
    "status": Command("canaryctl.commands.status", "show canary releases"),
    "promote": Command("canaryctl.commands.control:Promote", "promote a canary to 100 %%"),
    "abort": Command("canaryctl.commands.control:Abort", "abort a release: back to 0 %%"),
    "pause": Command("canaryctl.commands.control:Pause", "pause a running release"),
    "resume": Command("canaryctl.commands.control:Resume", "resume a paused release"),
    "retry": Command("canaryctl.commands.control:Retry", "start a release over"),
    "weight": Command("canaryctl.commands.control:Weight", "set a canary's weight by hand"),
    "match": Command("canaryctl.commands.control:Match", "send matching requests to a canary"),
    "error-page": Command("canaryctl.examples.errorpage", "the example backend of the demo"),
}

# `canaryctl dev <name>`: local stand-ins used by tests and the demo (canaryctl.testing)
DEV_COMMANDS: dict[str, Command] = {
    "localkube": Command("canaryctl.testing.localkube.cli", "a local kube-apiserver + etcd"),
    "api7cloud": Command("canaryctl.testing.api7cloud.cli", "the API7 Cloud emulator"),
    "apisix": Command("canaryctl.testing.apisix.cli", "the Apache APISIX emulator"),
    "traefik": Command("canaryctl.testing.traefik.cli", "Traefik, a Gateway API data plane"),
    "helm": Command("canaryctl.testing.helm", "Helm, built from the Go module proxy"),
}
DEV_TOOLS_MISSING = (
    "the dev tools (canaryctl.testing, canaryctl.demo) are not installed here — the controller "
    "image leaves them out; install canaryctl from a source checkout to use them "
    "(pip install -e '.[test]')"
)


def build_parser(argv: list[str], prog: str = "canaryctl") -> argparse.ArgumentParser:
    """The command tree, with flags only for the command `argv` chooses."""
    from canaryctl import __version__

    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"canaryctl {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _first_word(argv)
    _add_commands(subparsers, COMMANDS, chosen)
    dev = subparsers.add_parser("dev", help="local stand-ins: control plane, emulators, backend")
    dev_chosen = _first_word(argv[argv.index("dev") + 1 :]) if chosen == "dev" else None
    _add_commands(
        dev.add_subparsers(dest="dev_command", metavar="DEV_COMMAND", required=True),
        DEV_COMMANDS,
        dev_chosen,
    )
    return parser


def _add_commands(subparsers, table: dict[str, Command], chosen: str | None) -> None:
    for name, command in table.items():
        parser = subparsers.add_parser(
            name, help=command.summary, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        if name == chosen:
            implementation = _load(command.target)
            parser.description = inspect.cleandoc(implementation.__doc__ or "")
            implementation.configure(parser)
            parser.set_defaults(_run=implementation.run)


def _load(target: str):
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


def _first_word(argv: list[str]) -> str | None:
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None, prog: str = "canaryctl") -> int:
    """Entry point of the console script (`prog`: the name usage messages show)."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        parser = build_parser(argv, prog)
    except ModuleNotFoundError as error:
        if (error.name or "").startswith(("canaryctl.testing", "canaryctl.demo")):
            print(f"canaryctl: {DEV_TOOLS_MISSING}", file=sys.stderr)
            return 2
        raise
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.print_help(sys.stderr)
        return 2
    return int(args._run(args) or 0)
