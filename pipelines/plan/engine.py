"""Run the real ``infra/`` program under the mock runtime and collect its desired state."""

from __future__ import annotations

import json
import runpy
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.config import PROJECT, SECRET_PLACEHOLDER, load_stack_file, stack_file
from pipelines.plan.values import SECRET_TEXT

if TYPE_CHECKING:
    from pipelines.plan.mocks import Registration

ROOT_TYPE = "pulumi:pulumi:Stack"

_RUN_LOCK = threading.Lock()
"""The mock runtime is process-global: one plan at a time per process."""


def build_plan(
    stack: str,
    *,
    project_dir: Path | None = None,
    program: Path | None = None,
    new_stack: bool = False,
) -> dict[str, Any]:
    """The desired state of ``stack`` in the shape of ``pulumi preview --json``.

    The stack file is validated first (``StackConfigError`` lists every problem); then the
    program (``infra/__main__.py`` by default) runs under ``PlanMonitor`` with the stack's
    config, exactly as the engine would hand it over. Secrets print as ``"[secret]"``.

    ``new_stack=True`` plans the stack's first preview: what AWS assigns on creation (ARNs,
    IDs, URLs) is unknown, and so is every input built from it (``"[unknown]"``). The policy
    pack must decide on that plan too.
    """
    root = project_dir or _default_project_dir()
    path = stack_file(root / "stacks", stack)
    config = load_stack_file(path)
    raw_config, secret_keys = _engine_config(path)
    started = time.monotonic_ns()
    registrations = run_program(
        program or root / "infra" / "__main__.py",
        stack=stack,
        region=config.platform.region,
        config=raw_config,
        secret_keys=secret_keys,
        new_stack=new_stack,
    )
    shown = {key: SECRET_TEXT if key in secret_keys else value for key, value in raw_config.items()}
    return render_preview(registrations, config=shown, duration_ns=time.monotonic_ns() - started)


def run_program(
    program: Path,
    *,
    stack: str,
    region: str,
    config: Mapping[str, str],
    secret_keys: list[str],
    new_stack: bool = False,
) -> list[Registration]:
    """Execute a Pulumi program file under the recording mock monitor; return its registrations.

    ``new_stack``: answer as a new stack's first preview (see ``PlanMocks``).
    """
    # The SDK (about a second to import) loads only once the stack file has been judged, so bad
    # input such as a YAML alias bomb from a fork's pull request is refused at once.
    import pulumi
    from pulumi.runtime import settings as pulumi_settings
    from pulumi.runtime.config import set_all_config
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from pipelines.plan.mocks import PlanMocks, PlanMonitor

    with _RUN_LOCK:
        _ensure_event_loop()
        mocks = PlanMocks(region=region, new_stack=new_stack)
        monitor = PlanMonitor(mocks)
        pulumi_settings.reset_options(project=PROJECT, stack=stack, preview=True)
        set_all_config(dict(config), secret_keys)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=True, monitor=monitor)
        try:
            # Pulumi's own loop, as ``@pulumi.runtime.test`` uses it; resources bind to it.
            _sync_await(run_pulumi_func(lambda: _run_file(program)))
        finally:
            set_all_config({}, [])
        return list(monitor.registrations)


def _ensure_event_loop() -> None:
    """The SDK binds resources to the thread's event loop; a worker thread has none until given one."""
    import asyncio

    try:
        asyncio.get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())


def _run_file(program: Path) -> None:
    runpy.run_path(str(program), run_name="__main__")


def render_preview(
    registrations: list[Registration], *, config: Mapping[str, str] | None = None, duration_ns: int = 0
) -> dict[str, Any]:
    """Registrations in the shape of ``pulumi preview --json`` (pulumi's ``display.PreviewDigest``).

    ``config`` is the stack config as the engine saw it (``"ns:key"`` → text, secrets blinded),
    ``steps`` are sorted for determinism, each with ``detailedDiff: null`` as the engine prints
    it for a create, and ``duration`` is the run time in nanoseconds (Go's ``time.Duration``),
    left out when zero like the engine's ``omitempty``. Everything but ``duration`` is the same
    on every run; compare plans without it.
    """
    stack_urns = [r.urn for r in registrations if r.type == ROOT_TYPE]
    root_urn = stack_urns[0] if stack_urns else ""
    steps = []
    for registration in sorted(registrations, key=lambda r: (r.type != ROOT_TYPE, r.urn)):
        parent = registration.parent or ("" if registration.type == ROOT_TYPE else root_urn)
        steps.append(
            {
                "op": "create",
                "urn": registration.urn,
                "newState": {
                    "type": registration.type,
                    "urn": registration.urn,
                    "custom": registration.custom,
                    "parent": parent,
                    "inputs": registration.inputs,
                    "dependencies": list(registration.dependencies),
                    "retainOnDelete": registration.retain_on_delete,
                    "protect": registration.protect,
                    "replaceOnChanges": list(registration.replace_on_changes),
                },
                "detailedDiff": None,
            }
        )
    preview: dict[str, Any] = {"steps": steps, "changeSummary": {"create": len(steps)}}
    if config:
        preview["config"] = dict(sorted(config.items()))
    if duration_ns:
        preview["duration"] = duration_ns
    return preview


def _engine_config(path: Path) -> tuple[dict[str, str], list[str]]:
    """The stack file's ``config:`` map as the engine passes it: strings, objects as JSON.

    ``secure:`` values cannot be decrypted offline; they become a placeholder marked secret.
    The file is read with the same bounded loader as ``load_stack_file``, which has already
    validated it. Values YAML has and JSON lacks (dates, in pass-through keys) pass as text.
    """
    from ruamel.yaml.error import YAMLError

    from infra.config import StackFileUnreadableError
    from infra.yamlio import describe_yaml_error, load_yaml

    try:
        document = load_yaml(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError) as error:
        raise StackFileUnreadableError(f"{path}: cannot read the stack file: {error}") from None
    except YAMLError as error:
        raise StackFileUnreadableError(f"{path}: {describe_yaml_error(error)}") from None
    values: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in (document.get("config") or {}).items():
        if isinstance(value, Mapping) and set(value) == {"secure"}:
            values[key] = SECRET_PLACEHOLDER
            secret_keys.append(key)
        elif isinstance(value, str):
            values[key] = value
        else:
            values[key] = json.dumps(value, default=str)
    return values, secret_keys


def _default_project_dir() -> Path:
    from pipelines.paths import project_root

    return project_root()
