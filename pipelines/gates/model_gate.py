"""Model versus baseline, in the manner of TFX's Evaluator: absolute bounds, bounded regressions
against the production baseline, and fairness gaps per sensitive column.

``evaluate_model`` works on arrays (labels, the candidate's scores, the baseline's scores, the
sensitive columns), so it is independent of how the packages were fetched and scored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from numpy.typing import ArrayLike

from pipelines.gates.checks import Check
from pipelines.gates.metrics import classification_metrics, fairness_gaps
from pipelines.gates.policy import ModelPolicy, metric_direction
from pipelines.gates.report import GateReport

NO_BASELINE_NOTE = (
    "first version: there is no production baseline, so only the absolute bounds and the fairness "
    "gaps were checked; the change thresholds apply from the next version on"
)


def evaluate_model(
    y_true: ArrayLike,
    candidate_scores: ArrayLike,
    policy: ModelPolicy,
    *,
    sensitive: Mapping[str, Sequence[Any]] | None = None,
    baseline_scores: ArrayLike | None = None,
    subject: dict[str, Any] | None = None,
) -> GateReport:
    """Checks of the candidate's metrics, their change against the baseline, and fairness."""

    def metrics(scores: ArrayLike) -> dict[str, float]:
        return classification_metrics(
            y_true, scores, threshold=policy.decision_threshold, calibration_bins=policy.calibration_bins
        )

    candidate = metrics(candidate_scores)
    baseline = None if baseline_scores is None else metrics(baseline_scores)
    checks: list[Check] = []
    for name, rule in policy.metrics.items():
        value = candidate[name]
        if rule.min is not None:
            checks.append(
                Check(
                    "model.metric",
                    None,
                    name,
                    value,
                    None,
                    rule.min,
                    value >= rule.min,
                    f"{name} {value:.4f}, at least {rule.min:g} required",
                )
            )
        if rule.max is not None:
            checks.append(
                Check(
                    "model.metric",
                    None,
                    name,
                    value,
                    None,
                    rule.max,
                    value <= rule.max,
                    f"{name} {value:.4f}, at most {rule.max:g} allowed",
                )
            )
        if baseline is not None and rule.max_regression is not None:
            checks.append(
                _regression(
                    name,
                    value,
                    baseline[name],
                    rule.max_regression,
                    rule.relative,
                    metric_direction(name, rule),
                )
            )
    notes: tuple[str, ...] = ()
    if baseline is None:
        notes = (NO_BASELINE_NOTE,)
        checks.append(Check("model.baseline", None, None, None, None, None, None, NO_BASELINE_NOTE))
    checks.extend(_fairness(y_true, candidate_scores, sensitive or {}, policy))
    return GateReport(
        gate="model",
        checks=tuple(checks),
        subject={**(subject or {}), "metrics": {"candidate": candidate, "baseline": baseline}},
        notes=notes,
    )


def _regression(
    name: str, value: float, baseline: float, allowed: float, relative: bool, direction: str
) -> Check:
    """How much worse than the baseline the candidate is, in the metric's worse direction."""
    worse_by = baseline - value if direction == "higher_is_better" else value - baseline
    threshold = allowed * abs(baseline) if relative else allowed
    bound = f"{allowed:.1%} of the baseline" if relative else f"{allowed:g}"
    return Check(
        "model.regression",
        None,
        name,
        worse_by,
        None,
        threshold,
        worse_by <= threshold,
        f"{name} {value:.4f} vs baseline {baseline:.4f} ({direction.replace('_', ' ')}); "
        f"may be worse by at most {bound}",
    )


def _fairness(
    y_true: ArrayLike, scores: ArrayLike, sensitive: Mapping[str, Sequence[Any]], policy: ModelPolicy
) -> list[Check]:
    fairness = policy.fairness
    absent = [column for column in fairness.sensitive_columns if column not in sensitive]
    checks = [
        Check(
            "model.fairness",
            column,
            None,
            None,
            None,
            None,
            False,
            "sensitive column named by the policy is not in the evaluation data",
        )
        for column in absent
    ]
    present = {column: sensitive[column] for column in fairness.sensitive_columns if column in sensitive}
    for gaps in fairness_gaps(
        y_true, scores, present, threshold=policy.decision_threshold, min_slice_size=fairness.min_slice_size
    ):
        skipped = f"; too small to compare: {', '.join(gaps.skipped)}" if gaps.skipped else ""
        for method, gap, bound, rate in (
            (
                "demographic_parity_difference",
                gaps.demographic_parity_difference,
                fairness.max_demographic_parity_difference,
                "positive_rate",
            ),
            (
                "equal_opportunity_difference",
                gaps.equal_opportunity_difference,
                fairness.max_equal_opportunity_difference,
                "true_positive_rate",
            ),
        ):
            rates = ", ".join(
                f"{s.value} {getattr(s, rate):.3f}" for s in gaps.slices if getattr(s, rate) is not None
            )
            if gap is None:
                checks.append(
                    Check(
                        "model.fairness",
                        gaps.column,
                        method,
                        None,
                        None,
                        bound,
                        None,
                        f"fewer than two comparable slices ({rates}){skipped}",
                    )
                )
            else:
                checks.append(
                    Check(
                        "model.fairness",
                        gaps.column,
                        method,
                        gap,
                        None,
                        bound,
                        gap <= bound,
                        f"{rate.replace('_', ' ')} by slice: {rates}{skipped}",
                    )
                )
    return checks
