"""A new service's files written and checked in a scratch project, then moved into the project."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from pipelines.contract.load import CONTRACT_FILE, SERVICES_DIR, ContractError, read_contract
from pipelines.contract.scaffold.bounds import Baseline, failing_metric_checks, fit_baseline, metric_bounds
from pipelines.contract.scaffold.code_templates import render_model, render_test
from pipelines.contract.scaffold.contract_yaml import render_contract
from pipelines.contract.scaffold.infer import DataSummary
from pipelines.contract.scaffold.names import MODEL_FILE, PLACEHOLDER, existing_files, service_test_path
from pipelines.contract.tasks import Task
from pipelines.errors import RefusedError


@dataclass
class Scaffold:
    """A service's files, written and checked in a scratch project, not yet in the project."""

    name: str
    task: Task
    scratch: Path
    data: DataSummary | None = None
    baseline: Baseline | None = None
    bounds: dict[str, dict[str, float | bool]] = field(default_factory=dict)
    files: dict[Path, str] = field(default_factory=dict)
    """Relative to the project root: the text of every file the service adds."""

    @property
    def placeholder(self) -> bool:
        return self.data is None


def build(
    name: str,
    task: Task,
    *,
    root: Path,
    data: DataSummary | None,
    progress: Callable[[str], None] = lambda _message: None,
) -> Scaffold:
    """Write the service into a scratch project and check it there; the caller discards ``scratch``."""
    scratch = Path(tempfile.mkdtemp(prefix=f"modelrail-service-new-{name}-"))
    try:
        scaffold = Scaffold(name=name, task=task, scratch=scratch, data=data)
        folder = scratch / "project" / SERVICES_DIR / name
        folder.mkdir(parents=True)
        (folder / MODEL_FILE).write_text(render_model(name, task), encoding="utf-8")
        contract_file = folder / CONTRACT_FILE
        contract_file.write_text(render_contract(name, task, data), encoding="utf-8")
        if data is None:
            _check_placeholders(contract_file)
        else:
            contract = read_contract(contract_file, root=scratch / "project")
            progress(f"fitting model.py once on {data.rows} rows to set the metric bounds")
            scaffold.baseline = fit_baseline(contract, data.file, scratch / "project", scratch / "fit")
            scaffold.bounds = metric_bounds(task, scaffold.baseline)
            contract_file.write_text(
                render_contract(name, task, data, scaffold.bounds, scaffold.baseline), encoding="utf-8"
            )
            final = read_contract(contract_file, root=scratch / "project")
            failed = failing_metric_checks(final, data.file, scratch / "project", scratch / "fit")
            if failed:
                raise RefusedError(
                    f"{name}: the generated model does not pass the model gate it was written for",
                    details=failed,
                )
        scaffold.files = {
            Path(SERVICES_DIR) / name / CONTRACT_FILE: contract_file.read_text(encoding="utf-8"),
            Path(SERVICES_DIR) / name / MODEL_FILE: (folder / MODEL_FILE).read_text(encoding="utf-8"),
            service_test_path(name): render_test(name),
        }
        return scaffold
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise


def _check_placeholders(path: Path) -> None:
    """A placeholder contract must be refused for its placeholders, and for nothing else."""
    try:
        read_contract(path)
    except ContractError as error:
        others = [str(issue) for issue in error.issues if PLACEHOLDER not in str(issue.value)]
        if others:
            raise RefusedError(
                f"{path}: the generated contract is wrong beyond its placeholders", details=others
            ) from None
        return
    raise RefusedError(f"{path}: the generated placeholder contract loads; the loader should refuse it")


def install(scaffold: Scaffold, root: Path, stack_writes: Sequence[tuple[Path, str]]) -> list[Path]:
    """Move the service's files into the project and write the stack files, or change nothing.

    The service's folder appears in one rename; the test and each stack file replace atomically.
    Should any step fail, the steps before it are undone in reverse, so the project is as it was.
    """
    from pipelines.promotion.stackfile import restore

    taken = existing_files(scaffold.name, root)
    if taken:
        raise RefusedError(f"{taken[0]}: already exists; nothing written")
    undo: list[Callable[[], object]] = []
    written: list[Path] = []
    try:
        folder = root / SERVICES_DIR / scaffold.name
        _make_dirs(folder.parent, undo)
        staging = Path(tempfile.mkdtemp(prefix=f".{scaffold.name}.", dir=folder.parent))
        undo.append(partial(shutil.rmtree, staging, ignore_errors=True))
        for relative, text in scaffold.files.items():
            if relative.parts[:2] == (SERVICES_DIR, scaffold.name):
                (staging / relative.name).write_text(text, encoding="utf-8")
        staging.chmod(0o755)
        staging.rename(folder)
        undo[-1] = partial(shutil.rmtree, folder, ignore_errors=True)
        written.append(folder)

        test = root / service_test_path(scaffold.name)
        if _make_dirs(test.parent, undo):
            (test.parent / "__init__.py").write_text("", encoding="utf-8")  # the tests are a package
        temporary = test.with_name(f".{test.name}.{os.getpid()}.tmp")
        undo.append(partial(temporary.unlink, missing_ok=True))
        temporary.write_text(scaffold.files[service_test_path(scaffold.name)], encoding="utf-8")
        os.replace(temporary, test)
        undo.append(partial(test.unlink, missing_ok=True))
        written.append(test)

        for path, text in stack_writes:
            before = path.read_text(encoding="utf-8")
            restore(path, text)
            undo.append(partial(restore, path, before))
            written.append(path)
    except BaseException:
        for step in reversed(undo):
            with contextlib.suppress(OSError):
                step()
        raise
    return written


def _make_dirs(folder: Path, undo: list[Callable[[], object]]) -> bool:
    """Create ``folder`` and its missing parents, each removed again by ``undo``; whether it was new."""
    missing = [path for path in (folder, *folder.parents) if not path.exists()]
    for path in reversed(missing):
        path.mkdir()
        undo.append(partial(shutil.rmtree, path, ignore_errors=True))
    return bool(missing)


def next_commands(name: str, *, stack: str | None, snapshot: str) -> list[str]:
    """The governed path from here to serving, with each command's real flags."""
    target = stack or "local"
    version = "<package id>"
    model, tarball = f"build/{name}/model", f"build/{name}/model.tar.gz"
    steps = [] if stack else [f"modelrail service add {name} --stack {target}"]
    return [
        *steps,
        f"pytest {service_test_path(name).as_posix()}",
        f"modelrail train    --service {name} --out {model}",
        f"modelrail package  --service {name} --model-dir {model} --out {tarball}",
        f"modelrail register --service {name} --package {tarball} --stack {target} --as you@example.com",
        f"modelrail qualify  --service {name} --version {version} --stack {target} --stage candidate "
        f"--reference {snapshot} --data {snapshot} --as you@example.com",
        f"modelrail qualify  --service {name} --version {version} --stack {target} --stage production "
        f"--reference {snapshot} --data {snapshot} --as you@example.com",
        f"modelrail approve  --service {name} --version {version} --stack {target} "
        '--as reviewer@example.com --comment "gates reviewed"',
        f"modelrail promote  --service {name} --version {version} --stack {target} --yes --as you@example.com",
        f"modelrail status   --stack {target}",
    ]


def describe(scaffold: Scaffold) -> dict[str, Any]:
    """The scaffold's facts for ``--json`` and the summary on screen."""
    data = scaffold.data
    return {
        "service": scaffold.name,
        "task": scaffold.task.value,
        "placeholder": scaffold.placeholder,
        "files": [path.as_posix() for path in scaffold.files],
        "data": None
        if data is None
        else {
            "path": data.path,
            "sha256": data.sha256,
            "rows": data.rows,
            "features": [{"name": column, "type": kind} for column, kind in data.features],
            "na_values": list(data.na_values),
            "classes": None if data.classes is None else list(data.classes),
            "positive_class": data.positive_class,
            "live_tolerance": data.live_tolerance,
        },
        "baseline": None
        if scaffold.baseline is None
        else {
            "held_out": scaffold.baseline.held_out,
            "snapshot": scaffold.baseline.snapshot,
            "live_accuracy": scaffold.baseline.live_accuracy,
        },
        "metrics": scaffold.bounds,
        "warnings": [] if data is None else list(data.warnings),
    }
