"""The ``modelrail`` command line: one click group, a command module per concern.

``main`` is the console-script entry point. It turns every ``ModelrailError`` into its
documented exit code and a readable message (or a JSON object under ``--json``), so no
command ever ends in a traceback for bad input.

Start-up is kept to what the invoked command needs: the root group lists every command from
``COMMANDS`` and imports a command's module only when that command runs or shows its help,
and help is plain text, so ``modelrail --help`` loads neither rich nor pydantic nor any of
the libraries the commands work with.
"""

from __future__ import annotations

import functools
import importlib
import io
import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, TextIO

import typer
from typer.core import TyperGroup

from pipelines.console import emit_json, err_console, escape
from pipelines.errors import BadInputError, ExitCode, InterruptedByUserError, ModelrailError, RefusedError

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer
    from typer import _click


@dataclass(frozen=True)
class CommandEntry:
    """Where a top-level command lives, and the summary ``modelrail --help`` shows for it."""

    module: str
    """Its module under ``pipelines.commands``; the module's ``register(app)`` mounts it."""
    summary: str
    """The first paragraph of the command's help, on one line (a unit test keeps them equal)."""


COMMANDS: dict[str, CommandEntry] = {
    "plan": CommandEntry(
        "plan", "Show a stack's desired state offline: no Pulumi CLI, no credentials, no network."
    ),
    "policy": CommandEntry("policy", "Check a stack's plan against the policy pack, offline."),
    "qualify": CommandEntry(
        "promotion",
        "Run a stage's gates on a version and store the report as its evidence. Exit 0 passed, 1 refused.",
    ),
    "approve": CommandEntry(
        "promotion",
        "Approve a version for a stack as a second person; the approval binds to the gate evidence.",
    ),
    "promote": CommandEntry(
        "promotion",
        "Pin VERSION in the stack file, preview, update the stack, bake the canary, verify the endpoint.",
    ),
    "rollback": CommandEntry(
        "promotion",
        "Return the service to the last version that was stable on this stack, through the stack path.",
    ),
    "resume": CommandEntry(
        "promotion", "Finish or undo every promotion a crash left unfinished on the stack."
    ),
    "status": CommandEntry(
        "promotion", "Per service: the serving version, the previous stable version, any promotion in flight."
    ),
    "verify": CommandEntry(
        "verify",
        "Check that every endpoint runs the configuration the stack outputs name, InService. Exit 0 or 5.",
    ),
    "history": CommandEntry(
        "promotion", "Every recorded step for a service on a stack: gates, approvals, promotions, rollbacks."
    ),
    "changelog": CommandEntry(
        "promotion",
        "Write a service's changelog as Markdown: version, date, who, why, data, gates, rollbacks.",
    ),
    "demo": CommandEntry(
        "demo",
        "Run the delivery demo: v1 promoted, v2 refused at a gate, v3 stopped as a shadow, v4 through "
        "shadow, canary and full.",
    ),
    "train": CommandEntry(
        "train", "Train a model from a manifest; the same manifest always gives byte-identical files."
    ),
    "package": CommandEntry(
        "package",
        "Build model.tar.gz (SageMaker layout) with a sha256 for every file; its id is sha256(manifest.json).",
    ),
    "compare-models": CommandEntry(
        "package", "Say which files differ between two models, and precisely why (reproducibility check)."
    ),
    "register": CommandEntry(
        "register",
        "Register a package as an experimental version: S3 upload by content, SageMaker model package, lineage.",
    ),
    "versions": CommandEntry(
        "register", "List a service's registered versions: package sha, stage, approval, registrant."
    ),
    "replay": CommandEntry(
        "replay", "Replay rows against the sandbox router at a bounded rate and summarise what came back."
    ),
    "canary": CommandEntry(
        "canary", "Replay request logs through the canary judge, offline: a verdict per interval, per run."
    ),
    "config": CommandEntry("config", "Validate stack config and publish its schema."),
    "gate": CommandEntry(
        "gate", "Quality gates: data, drift, model versus baseline, reproducibility, latency."
    ),
    "lineage": CommandEntry("lineage", "Query the lineage catalog."),
    "embedded": CommandEntry("embedded", "Inspect or stop the embedded AWS (a moto server on 127.0.0.1)."),
    "sandbox": CommandEntry(
        "sandbox",
        "The local sandbox: SageMaker and KServe style endpoints on loopback.",
    ),
    "audit": CommandEntry("promotion", "Verify the hash-chained audit log, or show where it is."),
    "service": CommandEntry("service", "Scaffold a model service (new) or declare one in a stack (add)."),
}
"""Every top-level command in ``--help`` order. A new command needs a line here, or it stays
unreachable even though its module registers it."""


def summary(command: _click.Command) -> str:
    """What a group lists for ``command``: the first paragraph of its help, whole, on one line."""
    return " ".join((command.help or "").split("\n\n")[0].split())


def _help_flag_off_by_default(command: _click.Command) -> None:
    """Give ``command``'s ``--help`` the default False instead of None.

    Typer coerces an option's value through a pydantic ``TypeAdapter`` unless it is already a
    bool, so a help flag left at None (that of every group above the command whose help is
    asked for) imports pydantic, over 0.1 s, for nothing.
    """
    option = command.get_help_option(typer.Context(command))
    if option is not None:
        option.default = False


def _ready_for_help(group: TyperGroup) -> None:
    """Prepare every command under ``group`` as the root group is prepared.

    Each one's help flag is off by default, and each one's summary is listed whole: click would
    cut it at the first full stop or about 45 columns ("Write the JSON Schema of the stack
    config, or the..."), but it lists a ``short_help`` as it is.
    """
    for sub in group.commands.values():
        _help_flag_off_by_default(sub)
        if not sub.short_help:
            sub.short_help = summary(sub)
        if isinstance(sub, TyperGroup):
            _ready_for_help(sub)


@functools.cache
def load_commands(module: str) -> dict[str, _click.Command]:
    """Import ``pipelines.commands.<module>`` and build the click commands it registers.

    They are built on a typer app of their own with plain help, as the root group's are.
    """
    holder = typer.Typer(add_completion=False, rich_markup_mode=None, pretty_exceptions_enable=False)
    importlib.import_module(f"pipelines.commands.{module}").register(holder)
    group = typer.main.get_group(holder)
    _ready_for_help(group)
    return dict(group.commands)


class _CommandsOnDemand(Mapping[str, "_click.Command"]):
    """The root group's command table: the names are known up front, a command is built on lookup."""

    def __getitem__(self, name: str) -> _click.Command:
        return load_commands(COMMANDS[name].module)[name]

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)


class _RootGroup(TyperGroup):
    """The ``modelrail`` group: lists and summarises its commands without importing any of them.

    Typer's own group would call every command's ``get_command`` to list them; here the list and
    the summaries come from ``COMMANDS``. Looking a command up (to run it, to show its help, or to
    suggest a near miss's name) goes through ``_CommandsOnDemand``.
    """

    def list_commands(self, ctx: _click.Context) -> list[str]:
        return list(COMMANDS)

    def format_commands(self, ctx: _click.Context, formatter: _click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, entry.summary) for name, entry in COMMANDS.items()])


app = _RootGroup(
    name="modelrail",
    commands=_CommandsOnDemand(),  # type: ignore[arg-type]  # read-only on purpose: nothing adds commands
    help="Continuous delivery for machine-learning models on Pulumi and AWS.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
_help_flag_off_by_default(app)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C as a typed error, so it maps to exit 130 (click would turn it into exit 1)."""
    raise InterruptedByUserError("interrupted by Ctrl-C")


def _stack_file_error(error: Exception) -> ModelrailError | None:
    """Stack-file problems from any command: unreadable is bad input (2), invalid is refused (1).

    Their types live in ``infra.config``, whose pydantic schema is too heavy for start-up; while
    that module has not been imported, no command can have raised them.
    """
    if "infra.config" not in sys.modules:
        return None
    from infra.config import StackConfigError, StackFileUnreadableError

    if isinstance(error, StackFileUnreadableError):
        return BadInputError(str(error))
    if isinstance(error, StackConfigError):
        return RefusedError(
            f"{error.source}: the stack config is invalid", details=[str(issue) for issue in error.issues]
        )
    return None


class _WriterToGoneReader(io.RawIOBase):
    """Writes to a pipe; once its reader has gone, sends the rest of the output to /dev/null."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: ReadableBuffer) -> int:
        try:
            return os.write(self._fd, data)
        except BrokenPipeError:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._fd)
            os.close(devnull)
            return memoryview(data).nbytes


def _outliving_its_reader(stream: TextIO) -> TextIO:
    """``stream`` rebuilt over ``_WriterToGoneReader`` when it is this process's own pipe or socket."""
    if stream is not sys.__stdout__ and stream is not sys.__stderr__:
        return stream  # someone else's stream: a test's capture, an embedding program's
    if not isinstance(stream, io.TextIOWrapper):
        return stream
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):
        return stream
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        return stream  # a terminal or a file: no reader can go away
    stream.flush()
    return io.TextIOWrapper(
        io.BufferedWriter(_WriterToGoneReader(stream.fileno())),
        encoding=stream.encoding,
        errors=stream.errors,
        newline="\n",
        line_buffering=stream.line_buffering,
        write_through=stream.write_through,
    )


@contextmanager
def _output_outlives_its_reader() -> Iterator[None]:
    """A closed stdout or stderr (``modelrail register … | head -1``) is not the command's failure.

    Python reports a write to a pipe nobody reads as ``BrokenPipeError``, and click turns that
    into a silent exit 1 from wherever the write was, which cuts the command short and hides
    its verdict. Instead the output is dropped from then on and the command runs to its end,
    so its exit code is its own: 0 for a registration that happened, 1 for a failing gate.
    """
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _outliving_its_reader(sys.stdout), _outliving_its_reader(sys.stderr)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved


def _run(args: list[str]) -> int:
    """Run the group on ``args``; every way it can end becomes an exit code, none a traceback."""
    try:
        try:
            app.main(args=args, prog_name="modelrail")
        except Exception as error:
            mapped = _stack_file_error(error)
            if mapped is None:
                raise
            raise mapped from error
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
    except Exception as error:
        if os.environ.get(TRACEBACK_ENV) == "1":
            raise
        return _internal_error(error, "--json" in args)
    return int(ExitCode.OK)


TRACEBACK_ENV = "MODELRAIL_TRACEBACK"
"""Set to ``1`` to let an unexpected exception end in its traceback (for working on modelrail)."""


def _internal_error(error: Exception, as_json: bool) -> int:
    """A bug, not bad input: one sentence on screen, the traceback kept in a file, exit 1."""
    import tempfile
    import traceback

    with tempfile.NamedTemporaryFile(
        "w", prefix="modelrail-traceback-", suffix=".txt", delete=False, encoding="utf-8"
    ) as kept:
        kept.write("".join(traceback.format_exception(error)))
    message = f"internal error (a bug in modelrail): {type(error).__name__}: {error}"
    details = [f"the traceback is in {kept.name}", f"{TRACEBACK_ENV}=1 shows it here instead"]
    if as_json:
        emit_json({"error": "InternalError", "message": message, "details": details, "exit_code": 1})
    else:
        err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
        for detail in details:
            err_console.print(f"  - {detail}", soft_wrap=True, markup=False)
    return int(ExitCode.FAILED)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code; ``ModelrailError`` becomes a clean message."""
    args = sys.argv[1:] if argv is None else argv
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupt)
    try:
        with _output_outlives_its_reader():
            return _run(args)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)


if __name__ == "__main__":
    sys.exit(main())
