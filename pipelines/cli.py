"""The ``modelrail`` command line: one typer app with a sub-app or command per concern.

``main`` is the console-script entry point. It turns every ``ModelrailError`` into its
documented exit code and a readable message (or a JSON object under ``--json``), so no
command ever ends in a traceback for bad input.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType

import typer
from rich.markup import escape

from infra.config import StackConfigError, StackFileUnreadableError
from pipelines.commands import config as config_commands
from pipelines.commands import demo as demo_commands
from pipelines.commands import embedded as embedded_commands
from pipelines.commands import gate as gate_commands
from pipelines.commands import lineage as lineage_commands
from pipelines.commands import package as package_commands
from pipelines.commands import plan as plan_commands
from pipelines.commands import policy as policy_commands
from pipelines.commands import promotion as promotion_commands
from pipelines.commands import register as register_commands
from pipelines.commands import replay as replay_commands
from pipelines.commands import sandbox as sandbox_commands
from pipelines.commands import service as service_commands
from pipelines.commands import train as train_commands
from pipelines.console import emit_json, err_console
from pipelines.errors import BadInputError, ExitCode, InterruptedByUserError, ModelrailError, RefusedError

app = typer.Typer(
    name="modelrail",
    help="Continuous delivery for machine-learning models on Pulumi and AWS.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config_commands.app, name="config")
app.add_typer(gate_commands.app, name="gate")
app.add_typer(lineage_commands.app, name="lineage")
app.add_typer(embedded_commands.app, name="embedded")
app.add_typer(sandbox_commands.app, name="sandbox")
plan_commands.register(app)
policy_commands.register(app)
promotion_commands.register(app)
demo_commands.register(app)
service_commands.register(app)
train_commands.register(app)
package_commands.register(app)
register_commands.register(app)
replay_commands.register(app)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C as a typed error, so it maps to exit 130 (click would turn it into exit 1)."""
    raise InterruptedByUserError("interrupted by Ctrl-C")


def _stack_file_error(error: StackFileUnreadableError | StackConfigError) -> ModelrailError:
    """Stack-file problems from any command: unreadable is bad input (2), invalid is refused (1)."""
    if isinstance(error, StackFileUnreadableError):
        return BadInputError(str(error))
    return RefusedError(
        f"{error.source}: the stack config is invalid", details=[str(issue) for issue in error.issues]
    )


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; ``ModelrailError`` becomes a clean message."""
    args = sys.argv[1:] if argv is None else argv
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
    try:
        try:
            app(args=args, prog_name="modelrail")
        except (StackFileUnreadableError, StackConfigError) as error:
            raise _stack_file_error(error) from error
    except ModelrailError as error:
        if "--json" in args:
            emit_json(error.to_json())
        else:
            err_console.print(f"[bold red]error:[/] {escape(error.message)}", soft_wrap=True)
            for detail in error.details:
                err_console.print(f"  - {detail}", soft_wrap=True, markup=False)
        return int(error.exit_code)
    except SystemExit as done:
        # click exits with the command's ``typer.Exit`` code, or 2 on a usage error.
        if done.code is None:
            return int(ExitCode.OK)
        return done.code if isinstance(done.code, int) else int(ExitCode.FAILED)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
