"""The canary analysis while a rollout bakes: journaled interval by interval, resumable after a crash.

Each interval's window and decision are journaled (``analysed``) before the controller acts on
them. A resumed controller rebuilds the analysis exactly where it stood by re-judging the
journaled windows, and goes on from the end of the last one, so the time nobody watched is the
first window it judges. The journal also says whether the analysis finished: a canary is only
kept when the analysis passed it or watched its rollout to the end. A rollout that completed
while nobody watched cannot be judged any more; the controller rolls it back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from infra.config import DeploymentPolicy, Service
from pipelines.canary.analysis import CanaryAnalysis, Decision
from pipelines.canary.phases import Verdict
from pipelines.canary.policy import AnalysisPolicy
from pipelines.metrics.source import MetricsSource
from pipelines.metrics.stats import CanaryWindow
from pipelines.promotion.journal import Journal, Step
from pipelines.runtimes.ports import TrafficRouter

Progress = Callable[[str, dict[str, Any]], None]
Finished = Callable[[float], bool]
"""Waits up to the given seconds; True once the rollout is over (the endpoint has settled)."""


def analysis_policy(
    deployment: DeploymentPolicy,
    *,
    interval: float | None,
    min_requests: int,
    min_labels: int,
    shadow: bool = False,
) -> AnalysisPolicy:
    """The analysis of a rollout, or of its shadow phase: intervals adding up to the phase's bake
    (``AnalysisPolicy.interval_for`` by default), with the deployment's error budget. The one
    rule: ``modelrail canary judge`` replays a rollout with it too."""
    bake = float(deployment.shadow.bake_seconds if shadow else deployment.bake_seconds)
    seconds = interval or AnalysisPolicy.interval_for(bake)
    return replace(
        AnalysisPolicy.for_bake(bake, seconds),
        min_requests=min_requests,
        min_labels=min_labels,
        alpha=deployment.analysis.alpha,
        early_promotion=deployment.analysis.early_promotion,
        min_agreement=deployment.shadow.min_agreement if shadow else None,
    )


def needs_analysis(config: Service, metrics: MetricsSource | None, previous: str, target: str) -> bool:
    """A canary is analysed when there is a baseline to compare it with and a source to read."""
    return (
        metrics is not None
        and config.deployment.strategy != "all_at_once"
        and bool(previous)
        and previous != target
    )


@dataclass
class Bake:
    """One rollout's canary analysis (``analysis`` is None when there is nothing to analyse)."""

    service: str
    journal: Journal
    metrics: MetricsSource | None
    router: TrafficRouter | None
    """What takes the canary's traffic away on a breach."""
    analysis: CanaryAnalysis | None
    interval: float
    start: float
    """Where the next window begins: the end of the last judged one."""
    began: float
    """When the rollout began (journaled with ``update_started``): the baseline of a source that
    compares in time ends there, and the wait for the endpoint to settle counts from there."""
    decisions: list[dict[str, Any]] = field(default_factory=list)
    progress: Progress = lambda _event, _fields: None
    shadow: bool = False
    """The bake of a progression's shadow phase: windows of production against the shadow, and
    nothing to abort on a breach (no user traffic is on the shadow; the revert removes it)."""

    @classmethod
    def begin(
        cls,
        journal: Journal,
        *,
        config: Service,
        metrics: MetricsSource | None,
        router: TrafficRouter | None,
        policy: AnalysisPolicy | None,
        decisions: list[dict[str, Any]],
        progress: Progress,
        shadow: bool = False,
    ) -> Bake:
        """A fresh analysis; journals ``update_started`` with its policy, phase and starting time."""
        from pipelines.contract.load import live_tolerance

        start = time.time()
        tolerance = live_tolerance(str(journal.header["service"]))
        journal.write(
            Step.UPDATE_STARTED,
            analysis=None if policy is None else asdict(policy),
            analysis_from=start,
            tolerance=tolerance,
            shadow=shadow,
        )
        analysis = None if policy is None else _analysis(policy, config, tolerance, shadow)
        interval = 1.0 if policy is None else policy.interval_seconds
        return cls(
            str(journal.header["service"]),
            journal,
            metrics,
            router,
            analysis,
            interval,
            start,
            start,
            decisions,
            progress,
            shadow,
        )

    @classmethod
    def restore(
        cls,
        journal: Journal,
        *,
        config: Service,
        metrics: MetricsSource | None,
        router: TrafficRouter | None,
        decisions: list[dict[str, Any]],
        progress: Progress,
    ) -> Bake:
        """The analysis as the journal left it: every window of the latest phase judged again, in order."""
        started = journal.last(Step.UPDATE_STARTED)
        shadow = bool(started.get("shadow"))
        recorded = started.get("analysis")
        analysed, latest = journal.all(Step.ANALYSED), journal.since_last(Step.UPDATE_STARTED, Step.ANALYSED)
        # An earlier phase's decisions (a passed shadow's) are final: reported as journaled, not re-judged.
        decisions.extend(record["decision"] for record in analysed[: len(analysed) - len(latest)])
        began = start = float(started.get("analysis_from") or time.time())
        if recorded is None:
            return cls(
                str(journal.header["service"]),
                journal,
                metrics,
                router,
                None,
                1.0,
                start,
                began,
                decisions,
                progress,
                shadow,
            )
        policy = AnalysisPolicy.from_record(recorded)
        analysis = _analysis(policy, config, started.get("tolerance"), shadow)
        for record in latest:
            window = CanaryWindow.from_record(record["window"])
            decisions.append({**analysis.step(window).to_json(), "mode": analysis.mode})
            start = window.end
        return cls(
            str(journal.header["service"]),
            journal,
            metrics,
            router,
            analysis,
            policy.interval_seconds,
            start,
            began,
            decisions,
            progress,
            shadow,
        )

    @property
    def verdict(self) -> Verdict | None:
        """The analysis's final verdict, or None while it is open (or there is none)."""
        if self.analysis is None or not self.analysis.phase.finished:
            return None
        return self.analysis.decisions[-1].verdict

    @property
    def judged(self) -> bool:
        """Whether the analysis reached a verdict (or there was nothing to analyse)."""
        return self.analysis is None or self.analysis.phase.finished

    def next_step(self) -> None:
        """A fresh analysis for a stepped rollout's next share: each share is judged on its own.

        (A resume judges the journaled windows as one analysis; it only ever reverts a stepped
        rollout it finds between its steps, so the verdict it rebuilds names the breach, if any.)
        """
        if self.analysis is not None:
            done = self.analysis
            self.analysis = CanaryAnalysis(
                done.policy, done.guardrails, tolerance=done.tolerance, mode=done.mode
            )

    def breach(self) -> str:
        """The reason of a rollback verdict, or ''."""
        if self.verdict is not Verdict.ROLLBACK or self.analysis is None:
            return ""
        return f"{'shadow' if self.shadow else 'canary'} analysis: {self.analysis.decisions[-1].reason}"

    def watch(self, finished: Finished, renew: Callable[[], None]) -> str:
        """Analyse interval by interval until the rollout is over; abort the canary on a breach.

        Returns the breach reason, or '' when the canary held (or nothing was analysed). A
        rollback verdict already in the journal aborts again at once (the router's abort is
        idempotent; not aborting would let the rollout go on). Without a metrics source
        an open analysis cannot go on: the caller must not count such a rollout as watched.
        """
        if self.breach():
            self._trip()
            return self.breach()
        while not finished(self.interval):
            renew()
            if self.analysis is None or self.metrics is None or self.analysis.phase.finished:
                continue
            end = time.time()
            window = self.metrics.window(
                self.service, self.start, end, rollout_start=self.began, shadow=self.shadow
            )
            decision = self.analysis.step(window)
            reported = self._reported(decision)
            # Journaled before anything acts on it: a crash from here on resumes with this decision.
            self.journal.write(Step.ANALYSED, decision=_summary(reported), window=window.to_record())
            self.start = end
            self.decisions.append(reported)
            self.progress("analysis", reported)
            if decision.verdict is Verdict.ROLLBACK:
                self._trip()
                return self.breach()
        return ""

    def _reported(self, decision: Decision) -> dict[str, Any]:
        """A decision as the outcome and the progress report carry it: with the phase it judged."""
        return {**decision.to_json(), "mode": "shadow" if self.shadow else "canary"}

    @property
    def can_watch(self) -> bool:
        """Whether ``watch`` can judge what is left: nothing to analyse, or a source to read."""
        return self.analysis is None or self.metrics is not None

    def _trip(self) -> None:
        """Take the canary's traffic away through the runtime's router (SageMaker: the alarm)."""
        if self.analysis is None or self.router is None or self.shadow:
            return

        decision = self.analysis.decisions[-1]
        breached = decision.breached
        guardrail = decision.alarm or "live-accuracy"
        value = float(breached.canary) if breached is not None and breached.canary is not None else 0.0
        self.router.abort(self.service, guardrail, value, decision.reason)


def _analysis(
    policy: AnalysisPolicy, config: Service, tolerance: float | None, shadow: bool
) -> CanaryAnalysis:
    return CanaryAnalysis(
        policy, config.guardrails, tolerance=tolerance, mode="shadow" if shadow else "canary"
    )


def _summary(reported: dict[str, Any]) -> dict[str, Any]:
    """The decision as journaled: everything but the window, which is journaled losslessly beside it."""
    return {key: value for key, value in reported.items() if key != "window"}
