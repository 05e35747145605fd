"""A prod endpoint in its shadow phase meets every policy: the shadow changes its configuration only."""

from __future__ import annotations

import shutil
from pathlib import Path

from ruamel.yaml import YAML

from pipelines.plan import build_plan
from policies.rules import ENDPOINT_CONFIG, evaluate, stack_from_plan

CANDIDATE = "1a" * 32


def test_a_prod_plan_with_a_shadow_variant_violates_no_policy(repo: Path, tmp_path: Path) -> None:
    shutil.copytree(repo / "stacks", tmp_path / "stacks")
    path = tmp_path / "stacks" / "Pulumi.prod.yaml"
    yaml = YAML(typ="rt")
    document = yaml.load(path.read_text(encoding="utf-8"))
    entry = document["config"]["modelrail:services"]["adult-income"]
    entry["deployment"]["progression"] = ["shadow", "canary", "full"]
    entry["shadowVersion"] = CANDIDATE
    with path.open("w", encoding="utf-8") as out:
        yaml.dump(document, out)

    stack = stack_from_plan(build_plan("prod", project_dir=tmp_path, program=repo / "infra" / "__main__.py"))

    shadowed = [
        config for config in stack.of_type(ENDPOINT_CONFIG) if config.props.get("shadowProductionVariants")
    ]
    assert [config.name for config in shadowed] == ["adult-income-config"]
    assert evaluate(stack) == []
