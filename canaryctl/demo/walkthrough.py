"""The seed's walk-through as data: the user's commands per stage and what must follow.

Each stage runs the blog's commands verbatim (the manifests are the local copies in
`manifests/examples/`), waits until the gateway holds the expected split, then sends 100
requests with `Host: error-page` and counts the answers by version, as the blog does with curl.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from canaryctl.demo.environment import APP_HOST, NAMESPACE, DemoEnvironment

V1, V2 = f"{NAMESPACE}/error-page-v1", f"{NAMESPACE}/error-page-v2"
ANNOTATE = f"kubectl annotate service -n {NAMESPACE}"


@dataclass(frozen=True)
class Stage:
    title: str
    commands: list[str]
    split: tuple[str | None, str | None, int]  # default upstream, canary, percent
    v2_share: int  # expected v2 answers out of 100
    tolerance: int = 0  # "about 10 %": the split is weighted round robin


@dataclass
class StageResult:
    stage: Stage
    answers: dict[str, int] = field(default_factory=dict)

    @property
    def matched(self) -> bool:
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
            f'{ANNOTATE} error-page-v2 "api7.cloud/published-service-canary-percentage=0" --overwrite'
        ],
        (V1, V2, 0),
        v2_share=0,
    ),
    Stage(
        "canary percentage 100",
        [
            f'{ANNOTATE} error-page-v2 "api7.cloud/published-service-canary-percentage=100" --overwrite'
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
    result = StageResult(stage, dict(env.send(100)))
    say(
        f"100 requests: v1={result.answers.get('v1', 0)} v2={result.answers.get('v2', 0)}"
        f" -> {'as expected' if result.matched else 'UNEXPECTED'}"
    )
    return result


def table(results: list[StageResult]) -> str:
    """The summary the demo prints: stage, v1 answers, v2 answers, verdict."""
    width = max(len(r.stage.title) for r in results)
    lines = [f"{'stage':<{width}}  {'v1':>4}  {'v2':>4}  result", "-" * (width + 20)]
    for r in results:
        lines.append(
            f"{r.stage.title:<{width}}  {r.answers.get('v1', 0):>4}  {r.answers.get('v2', 0):>4}  "
            f"{'ok' if r.matched else 'MISMATCH'}"
        )
    return "\n".join(lines)
