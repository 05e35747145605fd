"""Canary analysis in the manner of Flagger: interval, iterations, failure threshold.

``CanaryAnalysis(policy, guardrails).step(window)`` advances one interval and returns a
``Decision`` (promote, rollback naming the guardrail, or continue) explained with its numbers.
"""

from pipelines.canary.analysis import CanaryAnalysis, Decision
from pipelines.canary.checks import CheckResult
from pipelines.canary.phases import Phase, Verdict
from pipelines.canary.policy import AnalysisPolicy

__all__ = ["AnalysisPolicy", "CanaryAnalysis", "CheckResult", "Decision", "Phase", "Verdict"]
