"""``modelrail sandbox``: see and stop the local sandbox (its endpoints, fleets and traffic split)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from pipelines.console import console, emit_json

app = typer.Typer(
    help="The local sandbox: SageMaker and KServe style endpoints on loopback.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


@app.command()
def status(as_json: JsonOption = False) -> None:
    """Show whether the sandbox runs, each endpoint's status, version, phase, weights and shadow, and
    each InferenceService's revisions, traffic split and readiness.

    A state file left by a killed sandbox is cleaned up (its model servers stopped). Exit 0.
    """
    from pipelines.sandbox import SandboxClient, SandboxNotRunningError
    from pipelines.sandbox.client import recover_stale
    from pipelines.sandbox.state import sandbox_dir

    directory = sandbox_dir()
    recovered = recover_stale(directory)
    report: dict[str, Any] = {
        "running": False,
        "state_dir": str(directory),
        "recovered_stale": recovered is not None,
        "stopped_pids": list(recovered.stopped_pids) if recovered else [],
        "endpoints": {},
        "inference_services": {},
    }
    try:
        client = SandboxClient.connect()
        report.update(running=True, pid=client.state.daemon.pid, url=client.url, **client.status())
    except SandboxNotRunningError:
        pass
    if as_json:
        emit_json(report)
        return
    _print_status(report)


@app.command()
def stop(as_json: JsonOption = False) -> None:
    """Stop the sandbox daemon and every model server it started. Idempotent; exit 0."""
    from pipelines.sandbox import stop_sandbox

    result = stop_sandbox()
    report = {
        "was_running": result.was_running,
        "stale": result.stale,
        "stopped_pids": list(result.stopped_pids),
    }
    if as_json:
        emit_json(report)
    elif result.was_running:
        console.print(f"sandbox stopped ({len(result.stopped_pids)} process(es) ended)")
    elif result.stale:
        console.print(
            f"the sandbox was already gone; stopped {len(result.stopped_pids)} leftover process(es)"
        )
    else:
        console.print("no sandbox was running")


def _print_status(report: dict[str, Any]) -> None:
    from rich.table import Table

    if report["recovered_stale"]:
        console.print(
            f"cleaned up a stale sandbox (stopped {len(report['stopped_pids'])} leftover process(es))",
            markup=False,
        )
    if not report["running"]:
        console.print(f"no sandbox running (state in {report['state_dir']})", markup=False)
        return
    console.print(f"sandbox pid {report['pid']} at {report['url']}", markup=False)
    table = Table("service", "status", "phase", "serving", "weights", "shadow", "restarts", "reason")
    for service, endpoint in sorted(report["endpoints"].items()):
        weights = ", ".join(f"{v[:8]} {w:.0%}" for v, w in endpoint["weights"].items())
        restarts = sum(fleet["restarts"] for fleet in endpoint["fleets"])
        shadow = endpoint.get("shadow_version")
        table.add_row(
            service,
            endpoint["status"],
            endpoint["phase"],
            (endpoint["serving_version"] or "-")[:12],
            weights or "-",
            "-" if shadow is None else f"{shadow[:8]} {endpoint['shadow_percent']}% mirrored",
            str(restarts),
            endpoint["failure_reason"] or "",
        )
    if report["endpoints"] or not report["inference_services"]:
        console.print(table)
    if report["inference_services"]:
        _print_inference_services(report["inference_services"])


def _print_inference_services(services: dict[str, Any]) -> None:
    """One row per InferenceService; a revision is shown by its number (``00002``), which is what
    tells revisions of one InferenceService apart, with the version it serves."""
    from rich.table import Table

    def number(revision: str) -> str:
        return revision.rsplit("-", 1)[-1]

    table = Table("service", "InferenceService", "url", "ready", "revisions", "traffic", "restarts", "reason")
    for service, isvc in sorted(services.items()):
        revisions = ", ".join(
            f"{number(r['name'])} {r['version'][:8]} {r['phase']}" for r in isvc["revisions"]
        )
        shares = sorted(isvc["traffic"].items(), key=lambda item: (-item[1], item[0]))  # JSON sorted the keys
        traffic = ", ".join(f"{number(name)} {percent}%" for name, percent in shares)
        table.add_row(
            service,
            f"{isvc['namespace']}/{isvc['name']}",
            isvc["url"],
            isvc["ready"],
            revisions or "-",
            traffic or "-",
            str(sum(fleet["restarts"] for fleet in isvc["fleets"])),
            isvc["reason"] or "",
        )
    console.print(table)


def register(main_app: typer.Typer) -> None:
    """Mount ``sandbox`` on the main app."""
    main_app.add_typer(app, name="sandbox")
