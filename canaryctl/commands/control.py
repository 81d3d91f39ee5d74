"""Manual release control: `promote`, `abort`, `pause`, `resume`, `retry`, `weight`, `match`.

These commands only write annotations through the Kubernetes API, as `kubectl annotate`
would, so the controller stays the one place that decides and a user without this tool
loses nothing. An action is written as `api7.cloud/canary-action=VERB@STAMP` with a fresh
stamp because the controller acts once per distinct value: running a command again is a
new request, and a restarted controller never replays an old one.

Decisions where the brief is silent:
- Only canaries (`api7.cloud/published-canary-service=true`) are accepted. A missing
  Service, or one that is not a canary, is refused with exit code 2 and nothing is written.
- Without `api7.cloud/canary-steps` the release is manual and the controller does not read
  `canary-action`. There `promote` and `abort` write the percentage instead (100 / 0),
  which is what they mean for a manual canary. `pause`, `resume` and `retry` are still
  written, with a warning: the controller acts on them once the Service gets
  `canary-steps`.
- `weight` with the value the annotation already holds writes nothing: the controller
  reacts to a change of the percentage only, so rewriting it would suggest an effect that
  never comes.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from kubernetes import client
from kubernetes.config.config_exception import ConfigException

from canaryctl.annotations import APP, CANARY, PERCENT, parse_percent
from canaryctl.kube import (
    add_kube_flags,
    api_request,
    describe_error,
    load_api_client,
    patch_service_annotations,
    read_json,
)
from canaryctl.matching import MATCH, parse_match
from canaryctl.matching import describe as describe_match
from canaryctl.objects import Service
from canaryctl.problems import Invalid
from canaryctl.release.config import ACTION, STEPS, Verb

FAILED = 1  # the API server could not be reached or refused the call
REFUSED = 2  # the request makes no sense for this Service; nothing was written
_MANUAL_PERCENT: Mapping[str, int] = {
    "promote": 100,
    "abort": 0,
}  # the verbs' meaning without canary-steps

_EXIT_CODES = """\
exit codes: 0 done, 1 the Kubernetes API failed, 2 refused (bad arguments, no such Service,
not a canary); nothing is written unless the exit code is 0."""
_ACTION_EPILOG = f"""\
The command writes {ACTION}=VERB@STAMP; the controller handles each
value once. An action that does not fit the release's phase (e.g. resume while it is
progressing) is reported by an ActionIgnored event on the Service and changes nothing.

{_EXIT_CODES}"""


class Refused(Exception):
    """The command does not apply to this Service."""


@dataclass(frozen=True)
class Request:
    """What a command writes on the Service (nothing when `changes` is empty) and tells the user."""

    changes: dict[str, str | None]  # None removes the annotation
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def service_argument(text: str) -> tuple[str, str]:
    """argparse type of NAMESPACE/SERVICE, or SERVICE alone (namespace from -n) -> (namespace or
    "", name)."""
    namespace, slash, name = text.rpartition("/")
    if not name or (slash and not namespace) or "/" in namespace:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAMESPACE/SERVICE")
    return namespace, name


def percent_argument(text: str) -> int:
    """argparse type of a canary weight: the integers 0-100 the percentage annotation accepts."""
    percent = parse_percent(text)
    if percent is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a canary weight: accepted values are integers 0-100"
        )
    return percent


def new_action_value(verb: Verb, now: datetime) -> str:
    """`VERB@STAMP`, its stamp unique to this invocation: UTC time to the second, 48 random bits."""
    return f"{verb}@{now.astimezone(UTC):%Y%m%dT%H%M%SZ}-{secrets.token_hex(6)}"


def action_request(service: Service, verb: Verb, now: datetime) -> Request:
    """The annotation that asks the controller to `verb` this canary's release."""
    _require_canary(service)
    warnings = _unpublished(service)
    if STEPS in service.annotations:
        return Request({ACTION: new_action_value(verb, now)}, warnings)
    manual = f"{service.key} has no {STEPS}, so its release is manual"
    if verb in _MANUAL_PERCENT:
        percent = _MANUAL_PERCENT[verb]
        return Request(
            {PERCENT: str(percent)}, warnings, (f"{manual}: {verb} sets its weight to {percent} %",)
        )
    warning = (
        f"{manual}: the controller ignores {ACTION} until {STEPS} is set, then acts on it once"
    )
    return Request({ACTION: new_action_value(verb, now)}, (*warnings, warning))


def weight_request(service: Service, percent: int) -> Request:
    """The percentage annotation that sets this canary's weight by hand."""
    _require_canary(service)
    warnings = _unpublished(service)
    automated = STEPS in service.annotations
    if parse_percent(service.annotations.get(PERCENT, "")) == percent:
        note = f"{service.key} already has {PERCENT}={percent}; nothing written"
        if automated:
            note += (
                "; the controller acts on a change of the percentage only, so its release goes on "
                "(use `canaryctl pause` to hold it)"
            )
        return Request({}, warnings, (note,))
    if not automated:
        return Request({PERCENT: str(percent)}, warnings)
    note = (
        f"{service.key} runs an automated release: the controller pauses it at {percent} %; "
        f"`canaryctl resume {service.key}` analyses {percent} % for a full step interval, "
        "then continues with the first step above it"
    )
    return Request({PERCENT: str(percent)}, warnings, (note,))


def match_request(service: Service, match: str | None) -> Request:
    """The canary-match annotation that sends matching requests to this canary (None: clear)."""
    _require_canary(service)
    warnings = _unpublished(service)
    current = service.annotations.get(MATCH)
    if match is None:
        if current is None:
            return Request({}, warnings, (f"{service.key} has no {MATCH}; nothing written",))
        return Request({MATCH: None}, warnings)
    parsed = parse_match(match)
    if isinstance(parsed, Invalid):
        raise Refused(parsed.message)
    if current is not None and parse_match(current) == parsed:
        return Request({}, warnings, (f"{service.key} already has {MATCH}={current}",))
    return Request({MATCH: describe_match(parsed)}, warnings)


def _require_canary(service: Service) -> None:
    flag = service.annotations.get(CANARY)
    if (flag or "").strip().lower() != "true":
        found = "is not set" if flag is None else f"is {flag!r}"
        raise Refused(
            f"{service.key} is not a canary: {CANARY} {found}; "
            f"these commands act on canary Services ({CANARY}=true)"
        )


def _unpublished(service: Service) -> tuple[str, ...]:
    if APP in service.annotations:
        return ()
    return (
        f"{service.key} has no {APP}: the controller ignores it until it publishes an application",
    )


def _configure_target(parser: argparse.ArgumentParser, epilog: str) -> None:
    parser.add_argument(
        "service",
        metavar="NAMESPACE/SERVICE",
        type=service_argument,
        help="the canary Service (SERVICE alone with -n NAMESPACE)",
    )
    parser.add_argument("-n", "--namespace", help="the namespace of a SERVICE given alone")
    add_kube_flags(parser)
    parser.epilog = epilog


def _target(args: argparse.Namespace) -> tuple[str, str]:
    """(namespace, name) of the Service argument and -n; Refused when they are missing or differ."""
    namespace, name = args.service
    flag: str = getattr(args, "namespace", None) or ""
    if namespace and flag and flag != namespace:
        raise Refused(f"{namespace}/{name} is in namespace {namespace}, but -n says {flag}")
    if not (namespace or flag):
        raise Refused(f"{name!r} is not NAMESPACE/SERVICE: name the namespace, or add -n NAMESPACE")
    return namespace or flag, name


def _apply(args: argparse.Namespace, request_for: Callable[[Service], Request]) -> int:
    """Read the Service, build the request, write it with one merge patch, say what was written."""
    try:
        namespace, name = _target(args)
    except Refused as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return REFUSED
    try:
        with load_api_client(args.kubeconfig, getattr(args, "context", None)) as api:
            request = request_for(_read_service(api, namespace, name))
            for warning in request.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            if request.changes:
                patch_service_annotations(api, namespace, name, request.changes)
    except Refused as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return REFUSED
    except client.ApiException as error:
        if error.status == 404:
            print(f"error: Service {namespace}/{name} not found", file=sys.stderr)
            return REFUSED
        print(f"error: {namespace}/{name}: {describe_error(error)}", file=sys.stderr)
        return FAILED
    except (ConfigException, OSError) as error:
        print(f"error: {namespace}/{name}: {describe_error(error)}", file=sys.stderr)
        return FAILED
    for annotation, value in request.changes.items():
        print(
            f"{namespace}/{name}: {annotation}-"
            if value is None
            else f"{namespace}/{name}: {annotation}={value}"
        )
    for note in request.notes:
        print(f"note: {note}")
    return 0


def _read_service(api: client.ApiClient, namespace: str, name: str) -> Service:
    path = f"/api/v1/namespaces/{namespace}/services/{name}"
    return Service.from_dict(read_json(api_request(api, "GET", path)))


class _ActionCommand:
    """A subcommand writing `canary-action=VERB@STAMP`; subclasses name the verb and document it."""

    verb: Verb

    @classmethod
    def configure(cls, parser: argparse.ArgumentParser) -> None:
        _configure_target(parser, _ACTION_EPILOG)

    @classmethod
    def run(cls, args: argparse.Namespace) -> int:
        return _apply(args, lambda service: action_request(service, cls.verb, datetime.now(UTC)))


class Promote(_ActionCommand):
    """Send every request to the canary (weight 100) and end its release as Succeeded.

    Applies to a release that is progressing, paused, rolled back or aborted. The canary
    becomes the default upstream once the stable Service leaves. On a manual canary (no
    canary-steps) this sets the percentage to 100."""

    verb = "promote"


class Abort(_ActionCommand):
    """Send no requests to the canary (weight 0) and stop its release (Aborted).

    Applies to a release that is progressing, paused or succeeded; `retry` starts it over.
    On a manual canary (no canary-steps) this sets the percentage to 0."""

    verb = "abort"


class Pause(_ActionCommand):
    """Hold a progressing release at its current weight: no more checks or steps until resumed."""

    verb = "pause"


class Resume(_ActionCommand):
    """Continue a paused release from its current weight.

    The current weight is analysed for a full step interval with fresh counts, then the
    release moves to the first step above it (at 0 % it starts at the first step, at 100 %
    it succeeds)."""

    verb = "resume"


class Retry(_ActionCommand):
    """Start a paused, rolled-back or aborted release over at its first step, with fresh counts."""

    verb = "retry"


class Weight:
    """Set the canary's weight by hand: its share of requests in percent, 0-100.

    Writes api7.cloud/published-service-canary-percentage, as `kubectl annotate` would.
    During an automated release (the Service has api7.cloud/canary-steps), a hand-set weight
    pauses the release at that weight, whatever its phase; `canaryctl resume` then analyses
    that weight for a full step interval with fresh counts and continues with the first step
    above it, so a hand-set weight is never skipped over unanalysed. The controller reacts to
    a change of the percentage only: setting the value it already holds does nothing."""

    @staticmethod
    def configure(parser: argparse.ArgumentParser) -> None:
        _configure_target(parser, _EXIT_CODES)
        parser.add_argument(
            "percent",
            metavar="PERCENT",
            type=percent_argument,
            help="the canary's share of requests, an integer 0-100",
        )

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        return _apply(args, lambda service: weight_request(service, args.percent))


class Match:
    """Send the requests that match a predicate to the canary, whatever its weight.

    Writes api7.cloud/canary-match: terms KIND:NAME=VALUE (exact) or KIND:NAME~REGEX, KIND one
    of header, cookie, query, joined by commas, all of which must hold, e.g.
    'header:X-Canary=always' or 'cookie:beta=1,query:region~^eu-'. Matching requests always
    reach the canary; the others split by its weight (0 %: only matching requests). A gateway
    that cannot express the match with the weight says so in a MatchUnsupported Warning and
    keeps its last good state. --clear removes the match."""

    @staticmethod
    def configure(parser: argparse.ArgumentParser) -> None:
        _configure_target(parser, _EXIT_CODES)
        parser.add_argument("match", metavar="MATCH", nargs="?", help="the predicate")
        parser.add_argument("--clear", action="store_true", help="remove the canary's match")

    @staticmethod
    def run(args: argparse.Namespace) -> int:
        if bool(args.match) == bool(args.clear):
            print("error: give a MATCH or --clear (one of them)", file=sys.stderr)
            return REFUSED
        return _apply(args, lambda service: match_request(service, args.match))
