"""The release's part of the observe step: everything a due check asks for, gathered in order.

`canaryctl.decision.due_check` names the check (`runner.CheckRequest`); this module makes
it. While a release waits for its pre-release hook only that hook is asked, nothing else.
Otherwise Prometheus is asked (through the `Analyzer`: metrics and the observed split), then
the step hook, then — only when `judgement.wants_gate` says the check would take the release
to 100 % — the promote gate, each hook told about the check made so far. The result is one
`CheckResult` carrying every answer in `hooks`; how they count is left to the pure decision
(`canaryctl.release.judgement`). Nothing here decides; each call is bounded in time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Protocol

from canaryctl import metrics
from canaryctl.release.analysis import Analyzer
from canaryctl.release.hooks import HookCall
from canaryctl.release.judgement import hook_text, wants_gate
from canaryctl.release.observations import HookResult
from canaryctl.release.runner import CheckRequest
from canaryctl.release.state import CheckResult

NO_PROMETHEUS = "no Prometheus configured: start the controller with --prometheus-url"


class HookCaller(Protocol):
    def call(self, call: HookCall) -> HookResult: ...


class ReleaseProbe:
    """Makes the checks releases ask for: Prometheus through `analyzer`, hooks through `hooks`."""

    def __init__(self, analyzer: Analyzer | None, hooks: HookCaller):
        self.analyzer, self.hooks = analyzer, hooks

    def check(self, request: CheckRequest, now: datetime) -> CheckResult:
        if request.pre is not None:
            answer = self.hooks.call(request.pre)
            return CheckResult(answer.result, hook_text(answer), hooks=(answer,))
        check = self._metrics(request, now)
        if request.step is not None:
            check = replace(check, hooks=(self.hooks.call(request.step.about(check, now)),))
        state, gate = request.state, request.gate
        if gate is not None and state is not None and wants_gate(request.config, state, check):
            check = replace(check, hooks=(*check.hooks, self.hooks.call(gate.about(check, now))))
        return check

    def _metrics(self, request: CheckRequest, now: datetime) -> CheckResult:
        if self.analyzer is None:
            metrics.analysis_checks_total.labels("error").inc()
            return CheckResult("error", NO_PROMETHEUS)
        return self.analyzer.check(
            request.config, request.canary, request.stable, request.window_s, now
        )
