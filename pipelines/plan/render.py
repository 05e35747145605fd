"""Human renderings of a plan and of a plan diff (the JSON forms stay the machine contract)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from pipelines.plan.diff import PlanDiff


def _label(state: dict[str, Any]) -> Text:
    name = state["urn"].rsplit("::", 1)[-1]
    type_ = state["type"]
    style = "bold cyan" if not state.get("custom") else ""
    text = Text.assemble(("+ ", "green"), (name, style), ("  ", ""), (type_, "dim"))
    if state.get("retainOnDelete"):
        text.append("  [retained on delete]", style="yellow")
    return text


def render_tree(plan: dict[str, Any]) -> Tree:
    """Resources grouped under the component that owns them, the stack at the root."""
    states = [step["newState"] for step in plan["steps"]]
    children: dict[str, list[dict[str, Any]]] = defaultdict(list)
    roots: list[dict[str, Any]] = []
    for state in states:
        if state.get("parent"):
            children[state["parent"]].append(state)
        else:
            roots.append(state)
    summary = ", ".join(f"{count} to {op}" for op, count in sorted(plan.get("changeSummary", {}).items()))
    tree = Tree(Text(f"plan: {summary}", style="bold"))

    def add(node: Tree, state: dict[str, Any]) -> None:
        branch = node.add(_label(state))
        kids = sorted(children.get(state["urn"], []), key=lambda s: (bool(s.get("custom")), s["urn"]))
        for child in kids:
            add(branch, child)

    for root in sorted(roots, key=lambda s: s["urn"]):
        add(tree, root)
    return tree


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def render_diff(diff: PlanDiff) -> RenderableType:
    """Added, removed and changed resources; property paths old → new; replacements flagged."""
    if not diff.has_changes:
        return Text("no changes", style="green")
    lines: list[Text] = []
    for urn, type_ in diff.added:
        lines.append(Text.assemble(("+ create  ", "green"), (urn, ""), (f"  ({type_})", "dim")))
    for urn, type_ in diff.removed:
        lines.append(Text.assemble(("- delete  ", "red"), (urn, ""), (f"  ({type_})", "dim")))
    for change in diff.changed:
        head = ("+-replace ", "bold magenta") if change.replaces else ("~ update  ", "yellow")
        lines.append(Text.assemble(head, (change.urn, "")))
        for prop in change.properties:
            marker = ("  [forces replacement]", "magenta") if prop.forces_replacement else ("", "")
            lines.append(
                Text.assemble(
                    ("      ", ""),
                    (prop.path, "bold"),
                    (f": {_value(prop.old)} → {_value(prop.new)}", ""),
                    marker,
                )
            )
    summary = diff.to_json()["summary"]
    lines.append(Text(", ".join(f"{count} to {op}" for op, count in summary.items() if count), style="bold"))
    return Group(*lines)
