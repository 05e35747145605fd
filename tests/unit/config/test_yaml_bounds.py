"""Alias bombs and runaway nesting are refused while composing, by every reader of modelrail's YAML.

The bomb is the nine-line "billion laughs": each line lists the previous anchor nine times, so the
last one stands for 9**9 (387 million) strings. Before the bounded loader, ``config validate`` and
``plan`` spent minutes serialising it for an error message. The tests assert the outcome (exit
code, file and limit named) and how far the loader got, never a time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml.error import YAMLError

from infra.config import (
    SHOW_LIMIT,
    ConfigIssue,
    StackFileUnreadableError,
    load_stack_file,
    parse_stack_text,
)
from infra.yamlio import MAX_ALIAS_NODES, MAX_DEPTH, YamlLimitError, load_yaml
from pipelines.cli import main
from pipelines.errors import BadInputError


def bomb(root: str = "config") -> str:
    """The nine-line bomb; its last line is ``root``, which holds 9**9 strings when expanded."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefg", "bcdefgh", strict=True):
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    lines.append(f"{root}: [{', '.join(['*h'] * 9)}]")
    return "\n".join(lines) + "\n"


def bomb_inside_config() -> str:
    """The same bomb where a stack file's values live: under ``config:``, in a pass-through key."""
    return "config:\n" + "".join(f"  {line}\n" for line in bomb("aws:laughs").splitlines())


@pytest.fixture
def bomb_stack(tmp_path: Path) -> Path:
    """A project whose dev stack file is the bomb (``MODELRAIL_PROJECT_DIR`` points at it)."""
    (tmp_path / "stacks").mkdir()
    (tmp_path / "Pulumi.yaml").write_text("name: modelrail\nruntime: python\n", encoding="utf-8")
    path = tmp_path / "stacks" / "Pulumi.dev.yaml"
    path.write_text(bomb(), encoding="utf-8")
    return path


# ------------------------------------------------------------------------- the loader itself


@pytest.mark.parametrize("typ", ["safe", "rt"])
def test_the_bomb_is_refused_while_composing_naming_the_limit_and_line(typ: Any) -> None:
    with pytest.raises(YamlLimitError) as caught:
        load_yaml(bomb(), typ=typ)
    error = caught.value
    assert error.limit == MAX_ALIAS_NODES
    assert f"more than {MAX_ALIAS_NODES} nodes" in str(error)
    assert "limit of alias expansion" in str(error)
    assert error.line == 4, "refused at the first alias past the limit, long before the last line"
    assert MAX_ALIAS_NODES < error.reached <= 2 * MAX_ALIAS_NODES, "stopped one alias past the limit"
    assert isinstance(error, YAMLError), "every `except YAMLError` of a caller catches it too"


def test_the_loader_stops_within_one_alias_of_a_small_limit() -> None:
    with pytest.raises(YamlLimitError) as caught:
        load_yaml(bomb(), max_alias_nodes=50)
    # *a expands to 10 nodes: the loader adds aliases one by one and stops at the first past 50.
    assert caught.value.reached == 60
    assert caught.value.line == 2


def test_sharing_anchors_below_the_limit_still_works() -> None:
    text = (
        "defaults: &defaults {strategy: canary, canaryPercent: 10}\n"
        "one: {<<: *defaults, bakeSeconds: 60}\n"
        "two: *defaults\n"
    )
    for typ in ("safe", "rt"):
        document = load_yaml(text, typ=typ)
        assert dict(document["one"]) == {"strategy": "canary", "canaryPercent": 10, "bakeSeconds": 60}
        assert dict(document["two"]) == {"strategy": "canary", "canaryPercent": 10}


def test_aliases_of_one_long_string_count_by_its_length() -> None:
    text = f"s: &s {'x' * 10_000}\nmany: [{', '.join(['*s'] * 20)}]\n"
    with pytest.raises(YamlLimitError, match="limit of alias expansion"):
        load_yaml(text)


def test_a_recursive_alias_is_refused_not_followed() -> None:
    with pytest.raises(
        YamlLimitError, match=r"alias \*loop on line 1 refers to a collection that contains it"
    ):
        load_yaml("a: &loop [1, *loop]\n")


def test_runaway_nesting_is_refused_not_a_recursion_error() -> None:
    deep = "[" * 50_000 + "]" * 50_000
    with pytest.raises(YamlLimitError, match=f"deeper than {MAX_DEPTH} levels") as caught:
        load_yaml(deep)
    assert caught.value.reached == MAX_DEPTH + 1


def test_an_undefined_alias_is_still_plain_bad_yaml() -> None:
    with pytest.raises(YAMLError, match="undefined alias") as caught:
        load_yaml("a: *nowhere\n")
    assert not isinstance(caught.value, YamlLimitError)


# ------------------------------------------------------------------------- every reader


@pytest.mark.parametrize("text", [bomb(), bomb_inside_config()], ids=["top-level", "inside-config"])
def test_a_stack_file_bomb_is_unreadable_naming_the_file_and_the_limit(tmp_path: Path, text: str) -> None:
    path = tmp_path / "Pulumi.dev.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(StackFileUnreadableError) as caught:
        load_stack_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: refused: ")
    assert f"more than {MAX_ALIAS_NODES} nodes" in message


def test_config_validate_exits_2_on_the_bomb(bomb_stack: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", "--stack", "dev", "--file", str(bomb_stack)]) == 2
    err = capsys.readouterr().err
    assert str(bomb_stack) in err and f"more than {MAX_ALIAS_NODES} nodes" in err

    assert main(["config", "validate", "--stack", "dev", "--file", str(bomb_stack), "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert report["unreadable"].startswith(f"{bomb_stack}: refused: ")


def test_plan_exits_2_on_the_bomb(
    bomb_stack: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MODELRAIL_PROJECT_DIR", str(bomb_stack.parent.parent))
    assert main(["plan", "--stack", "dev", "--json"]) == 2
    error = json.loads(capsys.readouterr().out)
    assert error["exit_code"] == 2
    assert str(bomb_stack) in error["message"] and f"more than {MAX_ALIAS_NODES} nodes" in error["message"]


def test_plan_refuses_the_bomb_before_it_loads_the_pulumi_sdk(bomb_stack: Path) -> None:
    """The SDK costs about a second to import: a refused stack file must not pay for it."""
    probe = (
        "import sys; from pipelines.cli import main; "
        "code = main(['plan', '--stack', 'dev']); "
        "print(code, any(name == 'pulumi' or name.startswith('pulumi.') for name in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "MODELRAIL_PROJECT_DIR": str(bomb_stack.parent.parent)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.split()[-2:] == ["2", "False"], result.stdout + result.stderr


def test_the_plan_engines_own_read_of_the_stack_file_is_bounded_too(bomb_stack: Path) -> None:
    from pipelines.plan.engine import _engine_config

    with pytest.raises(StackFileUnreadableError, match=f"{bomb_stack}: refused: .*{MAX_ALIAS_NODES}"):
        _engine_config(bomb_stack)


def test_pin_editing_refuses_a_bomb_without_writing(bomb_stack: Path) -> None:
    from pipelines.promotion.stackfile import check_valid, pinned_version, render_pin, write_pin

    version = "a" * 64
    with pytest.raises(StackFileUnreadableError, match=f"{bomb_stack}: refused: "):
        pinned_version(bomb_stack, "adult-income")
    with pytest.raises(StackFileUnreadableError, match=f"{bomb_stack}: refused: "):
        render_pin(bomb_stack, "adult-income", version)
    with pytest.raises(StackFileUnreadableError, match=f"{bomb_stack}: refused: "):
        write_pin(bomb_stack, "adult-income", version)
    with pytest.raises(StackFileUnreadableError, match="refused: "):
        check_valid(bomb(), bomb_stack, "pinning")
    assert bomb_stack.read_text(encoding="utf-8") == bomb()


def test_adding_a_service_to_a_bomb_is_bad_input(bomb_stack: Path) -> None:
    from pipelines.commands.service import render_with_service

    with pytest.raises(BadInputError, match=f"more than {MAX_ALIAS_NODES} nodes"):
        render_with_service(bomb_stack, "churn-score", {"instanceCount": 2})


def test_a_policy_bomb_is_bad_input_naming_the_file_and_the_limit(tmp_path: Path) -> None:
    from pipelines.gates.policy import load_policy

    path = tmp_path / "policy.yaml"
    path.write_text(bomb("stage"), encoding="utf-8")
    with pytest.raises(BadInputError) as caught:
        load_policy(path)
    assert caught.value.exit_code == 2
    assert caught.value.message.startswith(f"policy file {path} is refused: ")
    assert f"more than {MAX_ALIAS_NODES} nodes" in caught.value.message


def test_a_gate_with_a_policy_bomb_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(bomb("stage"), encoding="utf-8")
    absent = str(tmp_path / "absent.csv")
    code = main(["gate", "drift", "--reference", absent, "--current", absent, "--policy", str(path)])
    assert code == 2
    err = capsys.readouterr().err
    assert str(path) in err and f"more than {MAX_ALIAS_NODES} nodes" in err


def test_a_pinned_profile_bomb_is_bad_input(tmp_path: Path) -> None:
    from pipelines.gates.profile import load_profile

    path = tmp_path / "schema.yaml"
    path.write_text(bomb("columns"), encoding="utf-8")
    with pytest.raises(BadInputError, match=f"schema file {path} is refused: .*{MAX_ALIAS_NODES}"):
        load_profile(path)


# ------------------------------------------------------------------------- bounded messages


class CountingList(list[Any]):
    """A list that counts how many of its items anything has read."""

    reads = 0

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            CountingList.reads += 1
            yield item


def test_a_message_reads_only_as_much_of_a_value_as_it_shows() -> None:
    CountingList.reads = 0
    huge = CountingList(range(1_000_000))
    issue = ConfigIssue("Pulumi.dev.yaml", "config.aws:x", huge, "anything")
    text = str(issue)
    assert text.endswith("...: anything")
    assert len(text) < len("Pulumi.dev.yaml: config.aws:x = ") + SHOW_LIMIT + len(": anything") + 1
    assert CountingList.reads <= SHOW_LIMIT, "the value was serialised before it was cut"
    assert issue.to_json()["value"].endswith("..."), "the JSON report carries the cut text, not the value"


def test_a_value_that_contains_itself_is_shown_cut_not_followed() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert str(ConfigIssue("f", "p", loop, "x")).endswith("...: x")


def test_small_values_are_shown_whole_and_reported_as_themselves() -> None:
    issue = ConfigIssue("f", "p", {"b": [1, 2.5, None], "a": True}, "x")
    assert str(issue) == 'f: p = {"a": true, "b": [1, 2.5, null]}: x'
    assert issue.to_json()["value"] == {"b": [1, 2.5, None], "a": True}


def test_every_committed_stack_is_read_with_the_bounded_loader(repo: Path) -> None:
    for path in sorted((repo / "stacks").glob("Pulumi.*.yaml")):
        text = path.read_text(encoding="utf-8")
        assert load_yaml(text) is not None
        parse_stack_text(text, path)  # no YamlLimitError on any real file
