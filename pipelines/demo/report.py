"""The demo's report: Markdown with the timeline, gate verdicts, v3's shadow analysis, plan diffs and
audit trail, plus a PNG plot of the shadow against production, where a picture says it faster than a
table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipelines.demo.scenario import Story

PLOT = "shadow.png"
ROLES = (("baseline", "production"), ("canary", "shadow"))
"""A shadow window's sides: production answers users, the shadow the mirrored copies."""
STYLES = {"production": ("o-", "C0"), "shadow": ("s--", "C1")}


def write(directory: Path, story: Story, audit_entries: list[dict[str, Any]], final: dict[str, Any]) -> Path:
    """Write ``report.md`` and the plots into ``directory``; returns the Markdown's path."""
    directory.mkdir(parents=True, exist_ok=True)
    plotted = plot_shadow(story.canary, directory / PLOT) if story.canary else False
    names = {sha: name for name, sha in story.versions.items()}
    lines = [
        "# modelrail demo",
        "",
        f"Serving at the end: {', '.join(f'`{s}` {_version(names, v)}' for s, v in final['serving'].items())}. "
        f"Audit log verified: **{final['audit_verified']}**. Story held: **{final['story_holds']}**.",
        "",
    ]
    if not final["story_holds"]:
        broken = final["broken"]
        lines += [f"**The story broke at {broken['step']}:** {broken['reason']}", ""]
        lines += [f"- {detail}" for detail in broken["details"]] + [""]
    lines += [
        "## Timeline",
        "",
        "| step | version | outcome | reason |",
        "| --- | --- | --- | --- |",
    ]
    for step in story.steps:
        reason = step.reason.replace("|", "\\|")
        lines.append(
            f"| {step.action} | {names.get(step.version, step.version[:12])} | {step.outcome} | {reason} |"
        )
    lines += ["", "## Versions", ""]
    lines += [f"- **{name}** `{sha}`" for name, sha in story.versions.items()]
    lines += ["", "## Gate verdicts", ""]
    for key, report in story.gate_reports.items():
        summary = report["summary"]
        verdict = "passed" if report["passed"] else "refused"
        lines.append(f"### {key}: {verdict} ({summary['checks']} checks, {summary['failed']} failed)")
        lines += [f"- note: {note}" for note in report.get("notes", [])]
        failures = [check for check in report["checks"] if check.get("passed") is False]
        for check in failures[:12]:
            lines.append(
                f"- **{check['name']}** on `{check.get('column') or '-'}` ({check.get('method')}): "
                f"{check.get('statistic')} against threshold {check.get('threshold')}; {check.get('detail') or ''}"
            )
        lines.append("")
    lines += ["## Shadow analysis of v3", ""]
    if plotted:
        lines += [f"![v3's shadow against v1 in production]({PLOT})", ""]
    lines += ["| interval | verdict | reason |", "| --- | --- | --- |"]
    for decision in story.canary:
        lines.append(
            f"| {decision['interval']} | {decision['verdict']} | {decision['reason'].replace('|', '/')} |"
        )
    if story.replay:
        lines += ["", f"Replayed traffic: `{json.dumps(story.replay, sort_keys=True)}`"]
    if story.progression:
        lines += ["", f"v4 went through its progression: {', '.join(story.progression)}, full."]
    lines += ["", "## Plan diffs of the promotions", ""]
    for name, preview in story.previews.items():
        lines += [f"### {name}", "", "```"]
        lines += [f"{change['op']:>8}  {change['urn']}" for change in preview["changes"]]
        lines += ["```", ""]
    lines += [
        "## Audit trail (hash-chained)",
        "",
        "| # | time | action | version | by | reason |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for entry in audit_entries:
        version = str(entry.get("version", ""))
        reason = str(entry.get("reason", "")).replace("|", "/")[:160]
        lines.append(
            f"| {entry['seq']} | {str(entry['time'])[:19]} | {entry['action']} | "
            f"{names.get(version, version[:12])} | {entry['actor']} | {reason} |"
        )
    path = directory / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _version(names: dict[str, str], version: str | None) -> str:
    if version is None:
        return "nothing"
    return names.get(version, version[:12])


def plot_shadow(decisions: list[dict[str, Any]], path: Path) -> bool:
    """The shadow against production per analysis interval: p99 latency, 5xx rate and how often the
    two answered the same requests alike."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    windows = [
        (d["interval"], d["window"]) for d in decisions if d.get("window") and d["window"].get("canary")
    ]
    if not windows:
        return False
    intervals = [interval for interval, _ in windows]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    panels = (
        ("p99 latency (ms)", "latency_p99_ms", "p99-latency"),
        ("5xx error rate", "error_rate", "error-rate"),
        ("agreement with production", "rate", "agreement"),
    )
    for axis, (title, key, check_name) in zip(axes, panels, strict=True):
        if check_name == "agreement":
            series = {"shadow": [(window.get("agreement") or {}).get(key) for _, window in windows]}
        else:
            series = {label: [window[role][key] for _, window in windows] for role, label in ROLES}
        for label, values in series.items():
            marker, colour = STYLES[label]
            axis.plot(
                intervals,
                [float("nan") if v is None else v for v in values],
                marker,
                color=colour,
                label=label,
            )
        thresholds = [
            check["threshold"]
            for decision in decisions
            for check in decision.get("checks", [])
            if check["name"] == check_name and isinstance(check.get("threshold"), int | float)
        ]
        if thresholds:
            axis.axhline(thresholds[-1], color="red", linewidth=1, linestyle=":", label="guardrail")
        axis.set_title(title)
        axis.set_xlabel("analysis interval")
        axis.set_xticks(intervals)  # whole intervals, readable even when one interval decided it
        axis.set_xlim(intervals[0] - 0.5, intervals[-1] + 0.5)
        axis.grid(alpha=0.3)
    axes[0].legend(loc="upper left")
    verdict = decisions[-1]["verdict"]
    figure.suptitle(f"v3 as a shadow of v1 in production: {verdict}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
