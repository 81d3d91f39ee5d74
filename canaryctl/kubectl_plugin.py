"""`kubectl canary ...`: canaryctl's release commands as a kubectl plugin.

Installing canaryctl installs the console script `kubectl-canary`; kubectl finds any
`kubectl-NAME` on PATH and runs it for `kubectl NAME ...` with the remaining arguments. kubectl
does not apply its own global flags for a plugin, it passes them on, and users put them
anywhere (`kubectl canary -n shop promote web-v2`, `kubectl canary status -A --context prod`).
So this front end takes `--kubeconfig`, `--context` and `-n/--namespace` from wherever they
stand, puts them after the subcommand, and runs the same `canaryctl` subcommand — one
implementation, two spellings. As kubectl does, a Service named without a namespace is looked
up in `-n`, else in the kubeconfig context's namespace ($KUBECONFIG is honoured as kubectl
honours it).
"""

from __future__ import annotations

import sys

from canaryctl import cli
from canaryctl.kube import context_namespace

COMMANDS = ("status", "promote", "abort", "pause", "resume", "retry", "weight", "match")
_TARGETED = frozenset(COMMANDS) - {"status"}
_VALUE_FLAGS = {"--kubeconfig": "--kubeconfig", "--context": "--context", "--namespace": "-n"}
_USAGE = """\
kubectl canary: canary releases driven by canaryctl

usage: kubectl canary COMMAND [flags]

commands:
  status [-A] [-o table|json|yaml] [--watch]   one row per application
  promote NAMESPACE/SERVICE | SERVICE -n NS    send every request to the canary
  abort   NAMESPACE/SERVICE                    send none, stop the release
  pause | resume | retry NAMESPACE/SERVICE     hold, continue, start over
  weight  NAMESPACE/SERVICE PERCENT            set the canary's share by hand
  match   NAMESPACE/SERVICE MATCH | --clear    send matching requests to the canary

global flags (anywhere): --kubeconfig FILE, --context NAME, -n/--namespace NS
`kubectl canary COMMAND --help` describes each command.
"""


def split_global_flags(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    """({"--kubeconfig"|"--context"|"-n": value}, the other arguments in order).

    Accepts `--flag value`, `--flag=value`, `-n value`, `-nvalue` and `-n=value`, as kubectl's
    flag parser does; a flag without its value is left to the subcommand to complain about.
    """
    found: dict[str, str] = {}
    rest: list[str] = []
    words = iter(argv)
    for word in words:
        name, value = _flag(word)
        if name is None:
            rest.append(word)
            continue
        if value is None:
            value = next(words, None)
            if value is None:
                rest.append(word)
                continue
        found[name] = value
    return found, rest


def _flag(word: str) -> tuple[str | None, str | None]:
    """(the canonical global flag `word` starts, its inline value or None)."""
    long, equals, inline = word.partition("=")
    if long in _VALUE_FLAGS:
        return _VALUE_FLAGS[long], inline if equals else None
    if word == "-n":
        return "-n", None
    if word.startswith("-n") and not word.startswith("--"):
        return "-n", word[2:].removeprefix("=")
    return None, None


def canaryctl_argv(argv: list[str]) -> list[str] | None:
    """The `canaryctl` arguments for `kubectl canary ARGV`; None for no (or a help) command."""
    flags, rest = split_global_flags(argv)
    command = next((word for word in rest if not word.startswith("-")), None)
    if command is None or command == "help":
        return None
    rest.remove(command)
    if command in _TARGETED and "-n" not in flags and _bare_target(rest):
        flags["-n"] = context_namespace(flags.get("--kubeconfig"), flags.get("--context"))
    globals_ = [part for name, value in flags.items() for part in (name, value)]
    return [command, *globals_, *rest]


def _bare_target(rest: list[str]) -> bool:
    target = next((word for word in rest if not word.startswith("-")), "")
    return bool(target) and "/" not in target


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kubectl-canary` console script."""
    argv = sys.argv[1:] if argv is None else argv
    translated = canaryctl_argv(argv)
    if translated is None:
        print(_USAGE, end="", file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if translated[0] not in COMMANDS:
        print(f"kubectl canary: unknown command {translated[0]!r}\n\n{_USAGE}", file=sys.stderr)
        return 2
    return cli.main(translated, prog="kubectl canary")


if __name__ == "__main__":
    sys.exit(main())
