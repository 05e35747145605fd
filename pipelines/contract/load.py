"""Find, read and check service contracts, and import the team's code they name.

A contract lives at ``services/<name>/service.yaml`` under the project root, beside the team's
Python modules. Its entry points are imported as ``modelrail_services.<slug>.<module>``: a
package made for the folder, so two services may each have a ``model.py`` and a module may
import its siblings relatively, without the folder being on ``sys.path``.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import ValidationError

from infra.config import ConfigIssue
from pipelines.contract.model import ServiceContract, module_file, slug
from pipelines.contract.tasks import METRIC_DIRECTIONS, Task
from pipelines.errors import BadInputError
from pipelines.training.manifest import Hyperparameters

SERVICES_DIR = "services"
CONTRACT_FILE = "service.yaml"
PACKAGE_ROOT = "modelrail_services"
RESERVED_HYPERPARAMETERS = ("seed", *Hyperparameters.model_fields)
"""Keys the platform owns: the manifest's ``seed`` and its own hyperparameters (``Hyperparameters``)."""


class ContractError(BadInputError):
    """A contract that is missing, not YAML, or breaks the schema; lists every problem."""

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        super().__init__(
            f"{source}: {len(issues)} problem(s) in the service contract",
            details=[str(issue) for issue in issues],
        )
        self.issues = issues


def services_dir(root: Path | None = None) -> Path:
    from pipelines.paths import project_root

    return (root or project_root()) / SERVICES_DIR


def contract_path(name: str, root: Path | None = None) -> Path:
    return services_dir(root) / name / CONTRACT_FILE


def service_names(root: Path | None = None) -> list[str]:
    """Every service with a contract, by name."""
    folder = services_dir(root)
    if not folder.is_dir():
        return []
    return sorted(path.parent.name for path in folder.glob(f"*/{CONTRACT_FILE}"))


_CACHE: dict[tuple[str, int, int], ServiceContract] = {}


def load_contract(name: str, root: Path | None = None) -> ServiceContract:
    """The contract of service ``name``; ``BadInputError`` naming the known services if there is none."""
    path = contract_path(name, root)
    try:
        stat = path.stat()
    except FileNotFoundError:
        known = ", ".join(service_names(root)) or "none"
        raise BadInputError(
            f"service {name!r}: no contract at {path}; known services: {known}. "
            "`modelrail service new NAME --task TASK` writes one"
        ) from None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _CACHE:
        _CACHE[key] = read_contract(path, root=root)
    return _CACHE[key]


def live_tolerance(name: str, root: Path | None = None) -> float | None:
    """A regression service's live tolerance; ``None`` for a classifier or a service without a contract
    (a stack may declare a service whose team has not written one yet: it has infrastructure only)."""
    if not contract_path(name, root).is_file():
        return None
    return load_contract(name, root).live_tolerance


def read_contract(path: Path, *, root: Path | None = None) -> ServiceContract:
    """Read and check one contract file, reporting every problem at once."""
    from pipelines.yamlfile import read_yaml_file

    source = str(path)
    document = read_yaml_file(path, "service contract")
    return parse_contract(document, source=source, folder=path.parent, root=root)


def parse_contract(
    document: Any, *, source: str, folder: Path | None = None, root: Path | None = None
) -> ServiceContract:
    """Validate a parsed contract; the structure first, then the rules that join its fields."""
    if not isinstance(document, dict):
        issue = ConfigIssue(
            source, "<document>", type(document).__name__, "a mapping (name, task, label, ...)"
        )
        raise ContractError(source, [issue])
    try:
        contract = ServiceContract.model_validate(document)
    except ValidationError as error:
        raise ContractError(source, [_issue(source, item) for item in error.errors()]) from None
    issues = contract_issues(contract, source=source, folder=folder, root=root)
    if issues:
        raise ContractError(source, issues)
    return contract


def contract_issues(
    contract: ServiceContract, *, source: str, folder: Path | None = None, root: Path | None = None
) -> list[ConfigIssue]:
    """The rules across fields: each problem with its key path, value and what is allowed."""
    issues: list[ConfigIssue] = []

    def add(path: str, value: Any, allowed: str) -> None:
        issues.append(ConfigIssue(source, path, value, allowed))

    if folder is not None and contract.name != folder.name:
        add("name", contract.name, f"must be the folder's name, {folder.name!r}")
    names = contract.feature_names
    for index, name in enumerate(names):
        if name in names[:index]:
            add(f"features.{index}.name", name, "each feature is declared once")
    if contract.label in names:
        add("label", contract.label, "the label cannot also be a feature")
    for index, column in enumerate(contract.sensitive):
        if column not in names:
            add(
                f"sensitive.{index}",
                column,
                f"a sensitive column must be a feature; features: {', '.join(names)}",
            )
    _task_issues(contract, add)
    allowed_metrics = METRIC_DIRECTIONS[contract.task]
    for stage in ("candidate", "production"):
        for metric in getattr(contract.metrics, stage):
            if metric not in allowed_metrics:
                add(
                    f"metrics.{stage}.{metric}",
                    metric,
                    f"not a metric of {contract.task.value}; allowed: {', '.join(allowed_metrics)}",
                )
    fmt = contract.data.format
    if contract.data.reader is None:
        if not fmt.header and fmt.columns is None:
            add("data.format.columns", None, "a headerless file needs `columns`, every column in file order")
        if fmt.header and fmt.columns is not None:
            add(
                "data.format.columns",
                list(fmt.columns),
                "only a headerless file (`header: false`) lists columns",
            )
        if fmt.columns is not None:
            missing = [column for column in (*names, contract.label) if column not in fmt.columns]
            if missing:
                add(
                    "data.format.columns",
                    list(fmt.columns),
                    f"must include the label and every feature; missing: {', '.join(missing)}",
                )
    for key in contract.hyperparameters:
        if key in RESERVED_HYPERPARAMETERS:
            add(
                f"hyperparameters.{key}",
                key,
                f"reserved for the platform ({', '.join(RESERVED_HYPERPARAMETERS)}); set it in a training manifest",
            )
    for index, snapshot in enumerate(contract.data.snapshots):
        problem = _snapshot_path_problem(snapshot.path)
        if problem:
            add(f"data.snapshots.{index}.path", snapshot.path, problem)
    if folder is not None:
        for key, entry in (
            ("train", contract.train),
            ("predict", contract.predict),
            ("data.reader", contract.data.reader),
        ):
            if entry is not None and not (folder / module_file(entry)).is_file():
                add(key, entry, f"no module file {module_file(entry)} in {folder}")
    return issues


def _task_issues(contract: ServiceContract, add: Callable[[str, Any, str], None]) -> None:
    classes = contract.classes
    if contract.task is Task.regression:
        if classes is not None:
            add("classes", list(classes), "a regression service has no classes")
        if contract.positive_class is not None:
            add("positiveClass", contract.positive_class, "a regression service has no positive class")
        if contract.live_tolerance is None:
            add(
                "liveTolerance",
                None,
                "required for regression: how far a live prediction may be from its label and still count as correct",
            )
        return
    if contract.live_tolerance is not None:
        add("liveTolerance", contract.live_tolerance, "only a regression service has a live tolerance")
    wanted = "exactly 2" if contract.task is Task.binary else "at least 3"
    if classes is None:
        add("classes", None, f"required for {contract.task.value}: {wanted} label values")
        return
    if len(set(classes)) != len(classes):
        add("classes", list(classes), "each class is listed once")
    if (contract.task is Task.binary) != (len(classes) == 2) or len(classes) < 2:
        add("classes", list(classes), f"{contract.task.value} needs {wanted} classes")
    if contract.task is Task.binary:
        if contract.positive_class is None:
            add("positiveClass", None, f"required for binary classification: one of {', '.join(classes)}")
        elif contract.positive_class not in classes:
            add("positiveClass", contract.positive_class, f"must be one of the classes: {', '.join(classes)}")
    elif contract.positive_class is not None:
        add("positiveClass", contract.positive_class, "only a binary classifier has a positive class")


def _snapshot_path_problem(path: str) -> str | None:
    if "\x00" in path:
        return "contains a NUL character"
    if path.startswith("file://") or path.startswith("/"):
        return None
    if "://" in path:
        return "only local snapshots: a path relative to the project root, an absolute path or a file:// URI"
    if ".." in PurePosixPath(path).parts:
        return "a relative path stays inside the project root (no `..`); give an absolute path for data elsewhere"
    return None


def _issue(source: str, item: Any) -> ConfigIssue:
    where = ".".join(str(part) for part in item["loc"]) or "<document>"
    if item["type"] == "extra_forbidden":
        allowed = "unknown key"
    elif item["type"] == "missing":
        allowed = "required key is missing"
    else:
        message = str(item["msg"])
        allowed = message[0].lower() + message[1:]
    return ConfigIssue(source, where, item.get("input"), allowed)


def entry_point(contract: ServiceContract, entry: str, root: Path | None = None) -> Callable[..., Any]:
    """Import the function ``module:function`` names from the service's folder."""
    folder = services_dir(root) / contract.name
    module_name, function_name = entry.split(":", 1)
    package = f"{PACKAGE_ROOT}.{slug(contract.name)}"
    _ensure_package(PACKAGE_ROOT, None)
    _ensure_package(package, folder)
    try:
        module = importlib.import_module(f"{package}.{module_name}")
    except ModuleNotFoundError as error:
        raise BadInputError(
            f"{folder / CONTRACT_FILE}: {entry!r}: cannot import {module_name!r} from {folder}: {error}"
        ) from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise BadInputError(
            f"{folder / CONTRACT_FILE}: {entry!r}: {module_file(entry)} has no function {function_name!r}"
        )
    return function  # type: ignore[no-any-return]


def _ensure_package(name: str, folder: Path | None) -> None:
    """A package module for ``name`` whose path is ``folder`` (none for the root)."""
    existing = sys.modules.get(name)
    wanted = [] if folder is None else [str(folder)]
    if existing is not None and list(getattr(existing, "__path__", [])) == wanted:
        return
    package = types.ModuleType(name)
    package.__path__ = wanted
    package.__package__ = name
    sys.modules[name] = package
    for loaded in [module for module in sys.modules if module.startswith(name + ".")]:
        if folder is not None:
            del sys.modules[loaded]
