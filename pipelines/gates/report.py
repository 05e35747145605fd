"""Gate reports: the JSON stored with a model version, its digest, and the table people read.

A report is deterministic for the same inputs (no timestamps or timings inside), so its digest,
the sha256 of its canonical JSON, identifies the evidence an approval refers to: the promotion
controller stores ``report.to_json()`` next to the version and records ``report.digest()``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pipelines.gates.checks import Check

REPORT_FORMAT = 1
"""Version of the report's JSON layout; bumped on any incompatible change."""


def canonical_json(obj: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 text: the same object always gives the same bytes."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_digest(obj: Any) -> str:
    """``sha256:<hex>`` of an object's canonical JSON."""
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class GateReport:
    """The checks of one gate run and their verdict."""

    gate: str
    """``data``, ``drift``, ``model``, ``repro``, ``latency``, or ``stage`` for a combined report."""
    checks: tuple[Check, ...]
    subject: dict[str, Any] = field(default_factory=dict)
    """What was gated: files, service, candidate and baseline versions, stage."""
    policy_digest: str | None = None
    notes: tuple[str, ...] = ()
    """Statements about the run as a whole, e.g. that there was no baseline to compare with."""

    @property
    def passed(self) -> bool:
        """True when no check failed (informational results never fail)."""
        return not any(check.failed for check in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if check.failed]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "gate": self.gate,
            "passed": self.passed,
            "subject": self.subject,
            "policy_digest": self.policy_digest,
            "notes": list(self.notes),
            "summary": {
                "checks": len(self.checks),
                "failed": len(self.failures),
                "informational": sum(check.passed is None for check in self.checks),
            },
            "checks": [check.to_json() for check in self.checks],
        }

    def digest(self) -> str:
        """``sha256:<hex>`` of the report's canonical JSON."""
        return canonical_digest(self.to_json())


def combine(
    gate: str, reports: Sequence[GateReport], subject: dict[str, Any], policy_digest: str
) -> GateReport:
    """One report over several gates: all checks, all notes, the stage's subject and policy."""
    return GateReport(
        gate=gate,
        checks=tuple(check for report in reports for check in report.checks),
        subject=subject,
        policy_digest=policy_digest,
        notes=tuple(note for report in reports for note in report.notes),
    )


def render(report: GateReport, *, show_all: bool = False) -> None:
    """Print a report as a rich table: the failures, or (with ``show_all``) every check, failures first."""
    from rich.markup import escape
    from rich.table import Table

    from pipelines.console import console

    checks = sorted(report.checks, key=lambda check: (not check.failed, check.name, check.column or ""))
    if not show_all:
        checks = [check for check in checks if check.failed]
    table = Table(title=f"gate {report.gate}", title_justify="left", show_lines=False)
    for header in ("result", "check", "column", "method"):
        table.add_column(header, overflow="fold")
    for header in ("statistic", "p-value", "threshold"):
        table.add_column(header, no_wrap=True, justify="right")
    table.add_column("detail", overflow="fold", min_width=24)
    for check in checks:
        verdict = {True: "[green]pass[/]", False: "[bold red]FAIL[/]", None: "[dim]info[/]"}[check.passed]
        table.add_row(
            verdict,
            check.name,
            escape(check.column or "—"),
            check.method or "—",
            _number(check.statistic),
            _number(check.p_value),
            _number(check.threshold),
            escape(check.detail),
        )
    if checks:
        console.print(table)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    counts = report.to_json()["summary"]
    verdict = "[bold green]PASSED[/]" if report.passed else "[bold red]FAILED[/]"
    hidden = "" if show_all else " (--all lists every check)"
    console.print(
        f"{verdict} gate {report.gate}: {counts['checks']} checks, {counts['failed']} failed{hidden}",
        soft_wrap=True,
    )
    if report.failures:
        failed = ", ".join(f"{check.name} ({check.column or 'table'})" for check in report.failures)
        console.print(f"failed: {escape(failed)}", soft_wrap=True)
    console.print(f"[dim]report digest {report.digest()}[/]")


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e6):
        return f"{value:.3e}"
    return f"{value:.4f}"
