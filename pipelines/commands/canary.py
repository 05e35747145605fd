"""``modelrail canary judge``: the controller's canary judge over a team's own request logs, offline.

The judge is the one a bake runs (``pipelines.canary.CanaryAnalysis``), fed windows read from
two JSON-lines files (``pipelines.canary.telemetry``) instead of a metrics source, so a team can
replay a past rollout, or a simulated one, and see every decision with its numbers; and the
judge can be tested as a black box. Its policy comes from a stack's service (guardrails,
deployment, contract) or from a policy file of the same sections.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipelines.console import console, emit_json
from pipelines.errors import BadInputError, ExitCode

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.progress import Progress

    from infra.config import DeploymentPolicy, Guardrails
    from pipelines.canary import AnalysisPolicy, Decision
    from pipelines.canary.telemetry import Predictions, ReplayedRun

app = typer.Typer(
    help="Replay request logs through the canary judge, offline: a verdict per interval, per run.",
    no_args_is_help=True,
)

UNDECIDED = ExitCode.IN_PROGRESS
"""A run whose telemetry ended before the judge promoted or rolled back: as for a rollout the
controller stopped watching (``ExitCode.IN_PROGRESS``), nothing was decided."""
PROGRESS_FROM_BYTES = 4 << 20
"""Telemetry at least this large (both files) shows a progress bar while it is read and judged."""


@app.command()
def judge(
    baseline: Annotated[
        Path, typer.Option("--baseline", help="The baseline's requests, JSON lines (see above).")
    ],
    canary: Annotated[Path, typer.Option("--canary", help="The canary's requests, JSON lines.")],
    stack: Annotated[
        str | None,
        typer.Option("--stack", "-s", help="Judge as this stack judges --service (with --service)."),
    ] = None,
    service: Annotated[
        str | None, typer.Option("--service", help="The service whose guardrails and contract apply.")
    ] = None,
    policy: Annotated[
        Path | None,
        typer.Option("--policy", help="A judge policy file (YAML or JSON, see above) instead of a stack."),
    ] = None,
    interval_seconds: Annotated[
        float | None,
        typer.Option(
            "--interval-seconds",
            help="Length of one interval (default: a quarter of the bake, from 1 to 60 s, as a rollout's).",
        ),
    ] = None,
    min_requests: Annotated[
        int,
        typer.Option("--min-requests", min=1, help="Canary requests an interval needs; fewer: pause."),
    ] = 100,
    min_labels: Annotated[
        int,
        typer.Option("--min-labels", min=1, help="Labels per side before live accuracy is judged."),
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print every decision as JSON.")] = False,
) -> None:
    """Judge two request logs as a rollout's bake would: each run interval by interval, to a verdict.

    Each line of --baseline and --canary is one request:

    \b
      {"run": "7", "t": 12.5, "latency_ms": 41.0, "status": 200,
       "prediction": ">50K", "label": "<=50K", "label_t": 130.0}

    \b
      run         text, optional (default "0"): runs are judged independently
      t           seconds since the rollout started, >= 0; the request's interval
      latency_ms  the model latency, >= 0; null: no answer
      status      the HTTP status, 100 to 599 (4xx and 5xx are counted)
      prediction  a class (text) or a regression's number; null: none served
      label       the truth, of the prediction's type; null: none came back
      label_t     when the label came back (>= t, default t); its interval

    With --stack S --service X the judge is the stack's: the service's guardrails, its
    deployment's bakeSeconds (iterations = bake / interval) and analysis (alpha,
    earlyPromotion), and its contract's task, classes and liveTolerance. With --policy the same
    sections come from a file:

    \b
      guardrails:          # as a stack's service has them; all optional
        max5xxRate: 0.01
        p99LatencyMs: 500
        minLiveAccuracy: 0.8
      deployment:          # ditto: bakeSeconds and analysis are used
        bakeSeconds: 600
        analysis: {alpha: 0.01, earlyPromotion: false}
      prediction:          # required
        kind: classification   # or regression
        classes: [a, b]        # optional: the histogram's order (default: sorted)
        tolerance: 0.5         # regression, required: correct within it
        bins: [...]            # regression, optional: 9 inner edges (default: the
                               #   baseline's deciles, per run)

    Exit 0 when every run ends in promote, 1 when any ends in rollback, 6 when none rolled back
    but a run's telemetry ended before the judge decided, 2 on bad input (a malformed line is
    named by file and line).
    """
    from pipelines.canary.telemetry import read_telemetry

    guardrails, deployment, predictions, source = _setup(stack, service, policy)
    analysis_policy = _analysis_policy(deployment, interval_seconds, min_requests, min_labels)
    with _Progress(baseline, canary, shown=not as_json) as progress:
        runs = read_telemetry(
            baseline, canary, predictions, analysis_policy.interval_seconds, on_progress=progress.reading()
        )
        judged_one = progress.judging(len(runs))
        judged = []
        for run in runs:  # each with a judge of its own: nothing one run does reaches another
            judged.append(_judge_run(run, analysis_policy, guardrails, predictions))
            judged_one()
    code = _exit_code(judged)
    report = {
        "baseline": str(baseline),
        "canary": str(canary),
        "judged_as": source,
        "policy": _policy_json(analysis_policy),
        "guardrails": guardrails.model_dump(mode="json", by_alias=True),
        "prediction": predictions.to_json(),
        "runs": judged,
        "summary": _summary(judged),
        "exit_code": int(code),
    }
    if as_json:
        emit_json(report)
    else:
        _print(report)
    if code is not ExitCode.OK:
        raise typer.Exit(int(code))


def _setup(
    stack: str | None, service: str | None, policy: Path | None
) -> tuple[Guardrails, DeploymentPolicy, Predictions, dict[str, str]]:
    """The guardrails, deployment and predictions to judge by, and where they came from."""
    if policy is not None:
        if stack is not None or service is not None:
            raise BadInputError("--policy FILE replaces --stack and --service: give one or the other")
        return (*_policy_file(policy), {"policy": str(policy)})
    if stack is None or service is None:
        raise BadInputError("the judge needs --stack S --service X, or --policy FILE, to know its guardrails")
    return (*_stack_service(stack, service), {"stack": stack, "service": service})


def _stack_service(stack: str, service: str) -> tuple[Guardrails, DeploymentPolicy, Predictions]:
    """A stack's service as the controller judges it; an unreadable or invalid stack is bad input here,
    since exit 1 means a rollback."""
    from infra.config import StackConfigError, StackFileUnreadableError, load_stack_file
    from pipelines.canary.telemetry import Predictions
    from pipelines.contract.load import load_contract, service_names
    from pipelines.paths import stack_path

    path = stack_path(stack)
    try:
        config = load_stack_file(path)
    except StackFileUnreadableError as error:
        raise BadInputError(str(error)) from None
    except StackConfigError as error:
        raise BadInputError(
            f"{error.source}: the stack config is invalid", details=[str(issue) for issue in error.issues]
        ) from None
    try:
        declared = config.service(service)
    except KeyError as error:
        raise BadInputError(str(error.args[0])) from None
    if service not in service_names():
        raise BadInputError(
            f"service {service!r} has no contract, so its predictions' kind is unknown; "
            "judge it with --policy FILE and a `prediction:` section"
        )
    return declared.guardrails, declared.deployment, Predictions.of_contract(load_contract(service))


def _policy_file(path: Path) -> tuple[Guardrails, DeploymentPolicy, Predictions]:
    """A judge policy file: ``guardrails`` and ``deployment`` as a stack's service has them (the same
    models, the same messages), and ``prediction``; every problem reported at once."""
    from infra.config import ConfigIssue, DeploymentPolicy, Guardrails, validate_section
    from pipelines.canary.telemetry import parse_predictions
    from pipelines.yamlfile import read_yaml_file

    source = str(path)
    document = read_yaml_file(path, "judge policy file")
    if not isinstance(document, dict):
        issue = ConfigIssue(source, "<document>", document, "a mapping with `prediction:` (and optionally "
                            "`guardrails:`, `deployment:`)")  # fmt: skip
        raise BadInputError(f"{source}: 1 problem(s) in the judge policy", details=[str(issue)])
    allowed = ("guardrails", "deployment", "prediction")
    issues = [
        ConfigIssue(source, str(key), value, f"unknown key; allowed keys: {', '.join(allowed)}")
        for key, value in document.items()
        if key not in allowed
    ]
    guardrails = validate_section(Guardrails, document.get("guardrails", {}), "guardrails", source, issues)
    deployment = validate_section(
        DeploymentPolicy, document.get("deployment", {}), "deployment", source, issues
    )
    predictions, problems = parse_predictions(document.get("prediction"), source)
    issues += problems
    if issues or guardrails is None or deployment is None or predictions is None:
        raise BadInputError(
            f"{source}: {len(issues)} problem(s) in the judge policy",
            details=[str(issue) for issue in issues],
        )
    return guardrails, deployment, predictions


def _analysis_policy(
    deployment: DeploymentPolicy, interval: float | None, min_requests: int, min_labels: int
) -> AnalysisPolicy:
    """The rollout's analysis as the controller builds it (``pipelines.promotion.bake.analysis_policy``)."""
    from pipelines.promotion.bake import analysis_policy

    if interval is not None and not (math.isfinite(interval) and interval > 0):
        raise BadInputError(f"--interval-seconds {interval}: a positive number of seconds")
    try:
        return analysis_policy(
            deployment, interval=interval, min_requests=min_requests, min_labels=min_labels
        )
    except ValueError as error:
        raise BadInputError(str(error)) from None


def _policy_json(policy: AnalysisPolicy) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(policy)


class _Progress:
    """A progress bar on long telemetry, for people: bytes read, then runs judged (none under --json)."""

    def __init__(self, baseline: Path, canary: Path, shown: bool) -> None:
        self.size = sum(path.stat().st_size for path in (baseline, canary) if path.is_file())
        self.label = f"{baseline.name} and {canary.name}"
        self.bar: Progress | None = None
        if shown and self.size >= PROGRESS_FROM_BYTES:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
            )

    def __enter__(self) -> _Progress:
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)

    def reading(self) -> Callable[[int], None] | None:
        bar = self.bar
        if bar is None:
            return None
        task = bar.add_task(f"reading {self.label}", total=self.size)
        return lambda read: bar.advance(task, read)

    def judging(self, runs: int) -> Callable[[], None]:
        bar = self.bar
        if bar is None:
            return lambda: None
        task = bar.add_task(f"judging {runs} run(s)", total=runs)
        return lambda: bar.advance(task)


def _judge_run(
    run: ReplayedRun, policy: AnalysisPolicy, guardrails: Guardrails, predictions: Predictions
) -> dict[str, Any]:
    """One run through a judge of its own, interval by interval until it decides or the run ends."""
    from pipelines.canary import CanaryAnalysis

    analysis = CanaryAnalysis(policy, guardrails, tolerance=predictions.tolerance)
    for window in run.windows:
        analysis.step(window)
        if analysis.phase.finished:
            break
    last = analysis.decisions[-1]
    return {
        "run": run.run,
        "requests": run.requests,
        "intervals": len(run.windows),
        "decisions": [_decision_json(decision) for decision in analysis.decisions],
        "final": {
            "verdict": last.verdict.value,
            "interval": last.interval,
            "breached": None if last.breached is None else last.breached.name,
            "alarm": last.alarm,
            "reason": last.reason,
            "decided": analysis.phase.finished,
        },
    }


def _decision_json(decision: Decision) -> dict[str, Any]:
    """A decision as the controller journals it, with its window's bounds and traffic instead of the
    whole window (the checks carry the numbers the judge used)."""
    summary = {key: value for key, value in decision.to_json().items() if key != "window"}
    window = decision.window
    if window is not None:
        summary["window"] = {
            "start": window.start,
            "end": window.end,
            "baseline_requests": window.baseline.invocations,
            "canary_requests": 0 if window.canary is None else window.canary.invocations,
        }
    return summary


def _exit_code(judged: list[dict[str, Any]]) -> ExitCode:
    """1 when any run rolled back, else 6 when any ran out of telemetry undecided, else 0."""
    from pipelines.canary import Verdict

    verdicts = {run["final"]["verdict"] for run in judged}
    if Verdict.ROLLBACK.value in verdicts:
        return ExitCode.FAILED
    if verdicts != {Verdict.PROMOTE.value}:
        return UNDECIDED
    return ExitCode.OK


def _summary(judged: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"runs": len(judged), "promote": 0, "rollback": 0, "undecided": 0}
    for run in judged:
        verdict = run["final"]["verdict"]
        counts[verdict if verdict in ("promote", "rollback") else "undecided"] += 1
    return counts


def _print(report: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"canary judge: {report['canary']} against {report['baseline']}")
    for column in ("run", "verdict", "interval", "breached", "reason"):
        table.add_column(column, overflow="fold")
    style = {"promote": "green", "rollback": "red"}
    for run in report["runs"]:
        final = run["final"]
        verdict = final["verdict"] if final["decided"] else f"{final['verdict']} (undecided)"
        table.add_row(
            Text(run["run"]),
            Text(verdict, style=style.get(final["verdict"], "yellow")),
            f"{final['interval']}/{run['intervals']}",
            final["breached"] or "-",
            Text(final["reason"]),
        )
    console.print(table)
    summary = report["summary"]
    console.print(
        f"{summary['runs']} run(s): {summary['promote']} promote, {summary['rollback']} rollback, "
        f"{summary['undecided']} undecided (exit {report['exit_code']})"
    )


def register(main_app: typer.Typer) -> None:
    """Mount ``canary`` on the main app."""
    main_app.add_typer(app, name="canary")
