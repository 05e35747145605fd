"""Start-up stays light, and a reader closing the pipe early is not the command's failure.

Module loading is checked in fresh interpreters, since this test process has imported
everything already; the checks name modules, not timings (``benchmarks/startup_bench.py``
measures those).
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup

import pipelines.commands
from pipelines.cli import COMMANDS, app, load_commands, main, summary

REPO = Path(__file__).resolve().parents[2]

HEAVY = {
    "boto3", "botocore", "infra", "moto", "numpy", "pandas", "polars", "pulumi", "pyarrow",
    "pydantic", "rich", "ruamel", "scipy", "sklearn", "yaml",
}  # fmt: skip
"""What no help page needs: the libraries the commands work with, the config schema, rich."""

RUN_MAIN = "import sys; from pipelines.cli import main; sys.exit(main())"

REPORT_MODULES = """
import json, sys
from pipelines.cli import main
for line in sys.argv[1:]:
    code = main(json.loads(line))
    assert code == 0, (line, code)
sys.stderr.write("\\n" + json.dumps(sorted(sys.modules)))
"""


def _modules_after(*invocations: list[str]) -> set[str]:
    """The modules a fresh interpreter has loaded after running each invocation of ``main``."""
    completed = subprocess.run(
        [sys.executable, "-c", REPORT_MODULES, *(json.dumps(args) for args in invocations)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return set(json.loads(completed.stderr.splitlines()[-1]))


def _heavy(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules} & HEAVY


def test_help_loads_no_command_module_and_no_heavy_library() -> None:
    modules = _modules_after(["--help"])
    assert _heavy(modules) == set()
    assert {name for name in modules if name.startswith("pipelines.commands.")} == set()


def test_config_validate_help_loads_its_own_module_only() -> None:
    modules = _modules_after(["config", "validate", "--help"])
    assert _heavy(modules) == set()
    assert {name for name in modules if name.startswith("pipelines.commands.")} == {
        "pipelines.commands.config"
    }


def _help_paths(command: TyperGroup, path: list[str]) -> list[list[str]]:
    ctx = typer.Context(command)
    paths = [path]
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        if isinstance(sub, TyperGroup):
            paths.extend(_help_paths(sub, [*path, name]))
        else:
            paths.append([*path, name])
    return paths


def test_every_help_page_together_loads_no_heavy_library() -> None:
    invocations = [[*path, "--help"] for path in _help_paths(app, [])]
    assert len(invocations) > len(COMMANDS)  # the groups' commands are in, not just the top level
    assert _heavy(_modules_after(*invocations)) == set()


def test_the_command_table_holds_every_registered_command_and_its_summary() -> None:
    ctx = typer.Context(app)
    for name, entry in COMMANDS.items():
        command = app.get_command(ctx, name)
        assert command is not None, name
        assert summary(command) == entry.summary, f"COMMANDS[{name!r}].summary differs from the help"
    registered = {name for entry in COMMANDS.values() for name in load_commands(entry.module)}
    assert registered == set(COMMANDS), "a module registers a command that COMMANDS does not list"
    modules = {info.name for info in pkgutil.iter_modules(pipelines.commands.__path__)}
    assert modules == {entry.module for entry in COMMANDS.values()}, "a command module is not mounted"


def test_help_lists_every_command_with_its_whole_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    listed = " ".join(capsys.readouterr().out.split())
    for name, entry in COMMANDS.items():
        assert f" {name} {entry.summary} " in f"{listed} "


def test_a_near_miss_is_still_answered_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["promte"]) == 2
    assert "Did you mean 'promote'" in capsys.readouterr().err


def _with_reader_gone(args: list[str], *, stderr_too: bool = False) -> subprocess.CompletedProcess[bytes]:
    """Run ``modelrail ARGS`` with its stdout (and stderr) a pipe whose read end is already closed."""
    child = subprocess.Popen(
        [sys.executable, "-c", RUN_MAIN, *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if stderr_too else subprocess.PIPE,
    )
    assert child.stdout is not None
    child.stdout.close()  # as `| head -1` does once it has its line; every write now fails with EPIPE
    stderr = child.stderr.read() if child.stderr is not None else b""
    return subprocess.CompletedProcess(child.args, child.wait(), b"", stderr)


def test_a_closed_stdout_is_not_a_failure() -> None:
    done = _with_reader_gone(["config", "schema"])
    assert (done.returncode, done.stderr) == (0, b"")


def test_a_closed_stdout_leaves_the_verdict_to_the_command(tmp_path: Path) -> None:
    invalid = tmp_path / "Pulumi.local.yaml"
    invalid.write_text("config:\n  modelrail:platform: 3\n", encoding="utf-8")
    done = _with_reader_gone(["config", "validate", "--stack", "local", "--file", str(invalid), "--json"])
    assert (done.returncode, done.stderr) == (1, b"")


def test_closed_stdout_and_stderr_keep_the_exit_code() -> None:
    done = _with_reader_gone(["config", "validate", "--stack", "no-such-stack"], stderr_too=True)
    assert done.returncode == 2
