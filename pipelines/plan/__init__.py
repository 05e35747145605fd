"""The offline plan: the real ``infra/`` program under Pulumi's mock runtime.

``build_plan`` needs no Pulumi CLI, no credentials and no network, and returns the desired
state in the shape of ``pulumi preview --json``. ``diff_plans`` compares two plans and marks
the changes that would replace a resource.
"""

from pipelines.plan.diff import PlanDiff, diff_plans
from pipelines.plan.engine import build_plan

__all__ = ["PlanDiff", "build_plan", "diff_plans"]
