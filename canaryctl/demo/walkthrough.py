"""The seed's walk-through as data: the user's commands per stage and what must follow.

Each stage runs the blog's commands verbatim (the manifests are the local copies in
`manifests/examples/`), waits until the gateway holds the expected split, then sends 100
requests with `Host: error-page` and counts the answers by version, as the blog does with curl.
After the walk-through, `PREDICATE_STAGE` shows the seed's second kind of canary: v3 takes
every request carrying `X-Canary: always` and none of the others.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from canaryctl.demo.environment import APP_HOST, NAMESPACE, DemoEnvironment

V1, V2 = f"{NAMESPACE}/error-page-v1", f"{NAMESPACE}/error-page-v2"
V3 = f"{NAMESPACE}/error-page-v3"
CANARY_HEADER = ("X-Canary", "always")
ANNOTATE = f"kubectl annotate service -n {NAMESPACE}"


@dataclass(frozen=True)
class Stage:
    title: str
    commands: list[str]
    split: tuple[str | None, str | None, int]  # default upstream, canary, percent
    v2_share: int  # expected v2 answers out of 100 (v1 the rest)
    tolerance: int = 0  # "about 10 %": the split is weighted round robin
    # predicate stages: (the request's extra header, the version every answer must come from)
    sends: tuple[tuple[tuple[str, str] | None, str], ...] = ()


@dataclass
class StageResult:
    stage: Stage
    answers: dict[str, int] = field(default_factory=dict)
    # predicate stages: (header sent or None, expected version, answers) per batch of 100
    batches: list[tuple[tuple[str, str] | None, str, dict[str, int]]] = field(default_factory=list)

    @property
    def matched(self) -> bool:
        if self.stage.sends:
            return all(answers == {version: 100} for _, version, answers in self.batches)
        v2 = self.answers.get("v2", 0)
        return (
            abs(v2 - self.stage.v2_share) <= self.stage.tolerance
            and self.answers.get("v1", 0) + v2 == 100
        )


SEED_STAGES = [
    Stage(
        "publish error-page-v1 as error-page",
        [
            f"kubectl apply -f error-page-v1.yaml -n {NAMESPACE}",
            f'{ANNOTATE} error-page-v1 "api7.cloud/published-service=error-page"',
        ],
        (V1, None, 0),
        v2_share=0,
    ),
    Stage(
        "deploy error-page-v2, mark it canary at 10 %",
        [
            f"kubectl apply -f error-page-v2.yaml -n {NAMESPACE}",
            f'{ANNOTATE} error-page-v2 "api7.cloud/published-canary-service=true" '
            '"api7.cloud/published-service-canary-percentage=10"',
        ],
        (V1, None, 0),
        v2_share=0,
    ),
    Stage(
        "publish error-page-v2 as error-page (canary 10 %)",
        [f'{ANNOTATE} error-page-v2 "api7.cloud/published-service=error-page"'],
        (V1, V2, 10),
        v2_share=10,
        tolerance=2,
    ),
    Stage(
        "canary percentage 0",
        [
            f"{ANNOTATE} error-page-v2 "
            '"api7.cloud/published-service-canary-percentage=0" --overwrite'
        ],
        (V1, V2, 0),
        v2_share=0,
    ),
    Stage(
        "canary percentage 100",
        [
            f"{ANNOTATE} error-page-v2 "
            '"api7.cloud/published-service-canary-percentage=100" --overwrite'
        ],
        (V1, V2, 100),
        v2_share=100,
    ),
    Stage(
        "take error-page-v1 offline (v2 promoted)",
        [f"kubectl delete -f error-page-v1.yaml -n {NAMESPACE}"],
        (V2, None, 0),
        v2_share=100,
    ),
]


PREDICATE_STAGE = Stage(
    "error-page-v3: canary for X-Canary: always, 0 % of the rest",
    [
        f"kubectl apply -f error-page-v3.yaml -n {NAMESPACE}",
        f'{ANNOTATE} error-page-v3 "api7.cloud/published-canary-service=true" '
        '"api7.cloud/published-service-canary-percentage=0" '
        '"api7.cloud/canary-match=header:X-Canary=always"',
        f'{ANNOTATE} error-page-v3 "api7.cloud/published-service=error-page"',
    ],
    (V2, V3, 0),
    v2_share=100,
    sends=((CANARY_HEADER, "v3"), (None, "v2")),
)


def run_stage(
    env: DemoEnvironment, stage: Stage, say: Callable[[str], None] = print
) -> StageResult:
    """Run one stage's commands, wait for the gateway, send 100 requests."""
    say(f"\n== {stage.title}")
    for command in stage.commands:
        say(f"$ {command}")
        output = env.shell(command).stdout.strip()
        if output:
            say(output)
    env.wait_for_split(stage.split)
    describe_route = getattr(env.kit, "describe_route", None)
    if describe_route is not None:  # Gateway API: the route's weights as the data plane has them
        say(describe_route(APP_HOST))
    if stage.sends:
        return _run_batches(env, stage, say)
    result = StageResult(stage, dict(env.send(100)))
    say(
        f"100 requests: v1={result.answers.get('v1', 0)} v2={result.answers.get('v2', 0)}"
        f" -> {'as expected' if result.matched else 'UNEXPECTED'}"
    )
    return result


def _run_batches(env: DemoEnvironment, stage: Stage, say: Callable[[str], None]) -> StageResult:
    """A predicate stage: 100 requests per batch, each batch all to one version."""
    result = StageResult(stage)
    for header, version in stage.sends:
        answers = dict(env.send(100, dict([header]) if header else None))
        result.batches.append((header, version, answers))
        sent = f"with {header[0]}: {header[1]}" if header else "without it"
        shown = " ".join(f"{name}={count}" for name, count in sorted(answers.items()))
        verdict = "as expected" if answers == {version: 100} else "UNEXPECTED"
        say(f"100 requests {sent}: {shown} -> {verdict}")
    return result


def table(results: list[StageResult]) -> str:
    """The summary the demo prints: stage, v1 answers, v2 answers, verdict."""
    rows = []
    for r in results:
        verdict = "ok" if r.matched else "MISMATCH"
        if not r.stage.sends:
            rows.append((r.stage.title, r.answers, verdict))
        for header, _, answers in r.batches:
            sent = f"{header[0]}: {header[1]}" if header else f"no {CANARY_HEADER[0]}"
            rows.append((f"{r.stage.title} [{sent}]", answers, verdict))
    width = max(len(title) for title, _, _ in rows)
    lines = [f"{'stage':<{width}}  {'v1':>4}  {'v2':>4}  {'v3':>4}  result", "-" * (width + 26)]
    for title, answers, verdict in rows:
        counts = "  ".join(f"{answers.get(v, 0):>4}" for v in ("v1", "v2", "v3"))
        lines.append(f"{title:<{width}}  {counts}  {verdict}")
    return "\n".join(lines)
