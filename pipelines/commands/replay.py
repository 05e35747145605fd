"""``modelrail replay``: send held-out rows to a sandbox endpoint, with an optional delayed-label feed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipelines.console import console, emit_json
from pipelines.errors import BadInputError, RefusedError

if TYPE_CHECKING:
    from pipelines.contract.model import ServiceContract
    from pipelines.sandbox.replay import ReplaySummary


def replay(
    service: Annotated[str, typer.Option("--service", help="The service whose endpoint gets the traffic.")],
    data: Annotated[
        Path,
        typer.Option(
            "--data",
            help="CSV of rows (comma + optional space); the label is the contract's label column "
            "(the last column when the columns are not named).",
        ),
    ],
    rps: Annotated[float, typer.Option("--rps", help="Requests per second (up to 1000).")],
    duration: Annotated[float, typer.Option("--duration", help="Seconds to replay for.")],
    stack: Annotated[
        str, typer.Option("--stack", "-s", help="Only `local`: replay drives the local sandbox.")
    ] = "local",
    labels_after: Annotated[
        float | None,
        typer.Option(
            "--labels-after", help="Post each row's true label this many seconds after its request."
        ),
    ] = None,
    has_header: Annotated[
        bool, typer.Option("--header", help="The first CSV line names the columns.")
    ] = False,
    columns: Annotated[
        str | None,
        typer.Option(
            "--columns",
            help="Comma-separated column names, label included (default: the columns of the "
            "service's data, as its contract declares them).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Replay rows against the sandbox router at a bounded rate and summarise what came back.

    Exit 0 when the endpoint answered, 1 when the sandbox is not running or nothing answered,
    2 for a bad flag or an unreadable data file.
    """
    from pipelines.sandbox import SandboxClient
    from pipelines.sandbox.replay import check_rate, load_rows
    from pipelines.sandbox.replay import replay as run_replay

    if stack != "local":
        raise BadInputError(f"--stack {stack}: replay drives the local sandbox; only `local` is allowed")
    check_rate(rps, duration, labels_after)
    names = [name.strip() for name in columns.split(",")] if columns else None
    contract = _contract(service)
    if names is None and not has_header and contract is not None:
        names = _dataset_columns(contract)
    label = None if contract is None else contract.label
    rows = load_rows(
        data,
        columns=names,
        label_column=_label_position(data, names, has_header, label),
        has_header=has_header,
        numeric_labels=contract is not None and not contract.task.is_classification,
    )
    url = SandboxClient.connect().endpoint_url(service)
    if as_json:
        summary = run_replay(url, rows, rps=rps, duration=duration, labels_after=labels_after)
    else:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn(f"replaying {len(rows)} rows of {data.name} to {service}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task("replay", total=int(rps * duration), status="")

            def show(summary: ReplaySummary, total: int) -> None:
                status = f"2xx {summary.ok} 4xx {summary.errors_4xx} 5xx {summary.errors_5xx}"
                progress.update(task, completed=summary.sent, status=status)

            summary = run_replay(
                url, rows, rps=rps, duration=duration, labels_after=labels_after, on_progress=show
            )
    report = {"service": service, "stack": stack, "data": str(data), "rps": rps, **summary.to_json()}
    if as_json:
        emit_json(report)
    else:
        _print(report)
    if summary.sent and summary.unreachable == summary.sent:
        raise RefusedError(f"endpoint {service} did not answer any of {summary.sent} requests")


def _contract(service: str) -> ServiceContract | None:
    """The service's contract, when the project has one (an endpoint may serve any model)."""
    from pipelines.contract.load import load_contract, service_names

    return load_contract(service) if service in service_names() else None


def _dataset_columns(contract: ServiceContract) -> list[str]:
    """The columns of the service's data files in file order: the contract's headerless layout,
    or its features then its label (the order of positional rows)."""
    declared = contract.data.format.columns
    return list(declared) if declared is not None else [*contract.feature_names, contract.label]


def _label_position(data: Path, names: list[str] | None, has_header: bool, label: str | None) -> int:
    """Where the label is in each row: the contract's label among the named columns, else last."""
    import csv

    if names is None and has_header and label is not None:
        try:
            with data.open(encoding="utf-8", newline="") as handle:
                names = [name.strip() for name in next(csv.reader(handle, skipinitialspace=True), [])]
        except (OSError, UnicodeDecodeError):
            return -1  # load_rows names the unreadable file
    if names is None or label is None or label not in names:
        return -1
    return names.index(label)


def _print(report: dict[str, object]) -> None:
    from rich.table import Table

    table = Table(title=f"replay to {report['service']}", show_header=False)
    status, by_version = report["status"], report["by_version"]
    assert isinstance(status, dict) and isinstance(by_version, dict)
    for key, value in (
        ("sent", report["sent"]),
        ("2xx / 4xx / 5xx", f"{status['2xx']} / {status['4xx']} / {status['5xx']}"),
        ("unreachable", report["unreachable"]),
        ("latency p50 / p99 (ms)", f"{report['latency_p50_ms']} / {report['latency_p99_ms']}"),
        ("by version", ", ".join(f"{v[:12]}: {n}" for v, n in by_version.items()) or "-"),
        ("labels sent / matched", f"{report['labels_sent']} / {report['labels_matched']}"),
        ("duration (s)", report["duration_seconds"]),
    ):
        table.add_row(key, str(value))
    console.print(table)


def register(app: typer.Typer) -> None:
    """Mount ``replay`` on the main app."""
    app.command(name="replay")(replay)
