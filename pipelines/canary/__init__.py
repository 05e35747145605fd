"""The canary judge: anytime-valid sequential tests of a canary (or a shadow) against its baseline.

``CanaryAnalysis(policy, guardrails).step(window)`` advances one interval and returns a
``Decision`` (continue, pause, promote, or rollback naming the guardrail) with every check's
estimate, confidence-sequence bounds, tolerance and sample sizes. The method and its citations
are in docs/canary-analysis.md.
"""

from pipelines.canary.analysis import CanaryAnalysis, Decision
from pipelines.canary.phases import Phase, Verdict
from pipelines.canary.policy import AnalysisPolicy
from pipelines.canary.result import CheckResult

__all__ = ["AnalysisPolicy", "CanaryAnalysis", "CheckResult", "Decision", "Phase", "Verdict"]
