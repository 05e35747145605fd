"""Views over the audit log: a service's history, the changelog, and a stack's status."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from infra.config import STACK_NAMES
from pipelines.errors import ModelrailError
from pipelines.paths import state_dir
from pipelines.promotion.audit import AuditLog
from pipelines.promotion.evidence import EvidenceStore
from pipelines.promotion.journal import unfinished
from pipelines.promotion.lock import held_locks
from pipelines.promotion.phases import SERVING_ACTIONS


def about(entries: Iterable[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    """The entries about ``service``, in their order."""
    return [entry for entry in entries if entry.get("service") == service]


def history(audit: AuditLog, service: str) -> list[dict[str, Any]]:
    """Every audit entry about ``service`` on the log's stack, oldest first.

    Raises ``AuditLogDamagedError`` on a line that is not an entry; ``about(audit.read().entries,
    service)`` is the tolerant form (the entries before the damage).
    """
    return about(audit.entries(), service)


def status(
    audit: AuditLog, state_dir: Path, stack: str, pinned: dict[str, str | None]
) -> list[dict[str, Any]]:
    """Per service: the serving (pinned) version, the previous stable one, anything in flight.

    Reads only the audit entries that verify (those before any damage), so a damaged log still
    gives a status; ``audit.read().problems`` says what is wrong with the rest.
    """
    locks = {lock.service: lock for lock in held_locks(state_dir / "locks", stack)}
    open_journals = {
        journal.header["service"]: journal for journal in unfinished(state_dir / "journal" / stack)
    }
    entries = audit.read().entries
    rows = []
    for service, version in sorted(pinned.items()):
        stable = [
            e.get("version")
            for e in entries
            if e.get("service") == service and e["action"] in SERVING_ACTIONS
        ]
        previous = next((v for v in reversed(stable) if v != version), None)
        lock = locks.get(service)
        journal = open_journals.get(service)
        in_flight = None
        if lock is not None:
            in_flight = {"operation": lock.operation, "owner": lock.owner, "since": lock.acquired_at}
        elif journal is not None:
            in_flight = {
                "operation": journal.header["kind"],
                "owner": journal.header["actor"],
                "interrupted_at": str(journal.last_step),
                "resume": f"modelrail resume --stack {stack}",
            }
        rows.append(
            {
                "service": service,
                "serving": version,
                "previous_stable": previous,
                "verified": bool(stable) and stable[-1] == version,
                "in_flight": in_flight,
            }
        )
    return rows


JUDGED_DATA = ("reference", "training", "holdout", "current")
"""The data files a gate report's subject may name, each with its ``<name>_sha256``."""


def changelog(
    service: str,
    logs: Iterable[AuditLog],
    details: dict[str, dict[str, str]],
    judged: dict[str, dict[str, str]] | None = None,
) -> str:
    """Markdown: per stack, newest first, what changed, when, by whom, why, with its evidence.

    ``details`` maps a version to what the catalog knows of it (``dataset_sha256``: the sha256
    of the data it was trained on). ``judged`` maps an evidence digest to the sha256 of each
    data file that evidence's gates judged (``reference``, ``training``, ``holdout``).
    """
    judged = judged or {}
    lines = [f"# Changelog: {service}", ""]
    for audit in logs:
        entries = [e for e in history(audit, service) if e["action"] != "gates:passed" or e.get("stage")]
        if not entries:
            continue
        stack = audit.path.stem
        lines += [f"## {stack}", ""]
        for entry in reversed(entries):
            version = str(entry.get("version", ""))
            info = details.get(version, {})
            date = str(entry["time"])[:19].replace("T", " ")
            what = _describe(entry)
            lines.append(f"- **{date} UTC** · `{version[:12]}` · {what} · by {entry['actor']}")
            if info.get("dataset_sha256"):
                lines.append(f"  - data: sha256 `{info['dataset_sha256']}`")
            if entry.get("reason"):
                lines.append(f"  - why: {entry['reason']}")
            if entry.get("comment"):
                lines.append(f"  - comment: {entry['comment']}")
            if entry.get("evidence"):
                lines.append(f"  - gate evidence: `{str(entry['evidence'])[:16]}`")
                data = judged.get(str(entry["evidence"]), {})
                if data:
                    files = ", ".join(f"{name} `{data[name]}`" for name in JUDGED_DATA if data.get(name))
                    lines.append(f"  - gates judged (sha256): {files}")
            for decision in entry.get("analysis") or []:
                lines.append(f"  - canary: {decision}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _describe(entry: dict[str, Any]) -> str:
    action = str(entry["action"])
    previous = str(entry.get("previous") or "")[:12]
    return {
        "promote:promoted": f"promoted (was `{previous}`)",
        "promote:rolled_back": "canary rolled back",
        "promote:failed": "promotion failed, reverted",
        "promote:aborted": "promotion aborted",
        "rollback:rolled_back": f"rolled back to this version (was `{previous}`)",
        "rollback:failed": "rollback failed",
        "approve": "approved",
        "register": "registered (experimental)",
        "gates:passed": f"{entry.get('stage', '')} gates passed",
        "gates:refused": f"{entry.get('stage', '')} gates refused",
    }.get(action, action)


def changelog_markdown(service: str) -> str:
    """The changelog across every stack with a local audit log.

    Each version's training data is the lineage catalog's ``dataset_sha256`` (the manifest's
    ``dataset.sha256``), else the one its ``register`` entry recorded; each gate or approval
    entry whose stored evidence still has the digest it names gets the sha256s of the data
    those gates judged.
    """
    from pipelines.lineage.record import open_catalog

    logs = [AuditLog(state_dir() / "audit", stack) for stack in STACK_NAMES]
    present = [log for log in logs if log.path.exists()]
    catalog = open_catalog()
    store = EvidenceStore(state_dir() / "evidence")
    details: dict[str, dict[str, str]] = {}
    judged: dict[str, dict[str, str]] = {}
    for log in present:
        for entry in log.entries():
            version = str(entry.get("version", ""))
            if not version or entry.get("service") != service:
                continue
            if version not in details:
                dataset = _dataset_sha256(catalog, version) or str(
                    entry.get("dataset", "") if entry["action"] == "register" else ""
                )
                if dataset:
                    details[version] = {"dataset_sha256": dataset}
            digest = str(entry.get("evidence") or "")
            if digest and digest not in judged and str(entry["action"]).startswith("gates:"):
                data = _judged_data(store, service, version, str(entry.get("stage", "")), digest)
                if data:
                    judged[digest] = data
    return changelog(service, present, details, judged)


def _dataset_sha256(catalog: Any, version: str) -> str:
    """The sha256 of the data ``version`` was trained on, per the catalog; ``""`` if it has no record."""
    try:
        model = catalog.model(version)
    except ModelrailError:  # a version the catalog does not know
        return ""
    return str(model["dataset"]["sha256"] or "")


def _judged_data(store: EvidenceStore, service: str, version: str, stage: str, digest: str) -> dict[str, str]:
    """The sha256 of each data file the gates judged, from the stored evidence with ``digest``.

    Empty when that evidence is gone, unreadable, or replaced (a later run, or an edit): the
    stored report is then not the one the entry names.
    """
    if not stage:
        return {}
    try:
        evidence = store.load(service, version, stage)
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if evidence is None or evidence.digest != digest:
        return {}
    subject = evidence.report.get("subject")
    if not isinstance(subject, dict):
        return {}
    return {name: str(subject[f"{name}_sha256"]) for name in JUDGED_DATA if subject.get(f"{name}_sha256")}
