"""The lineage catalog: one SQLite file of models and the events that happened to them.

``models`` holds what made each package (dataset, code, parameters, seed, environment,
features); ``events`` holds every register, gate, approval, promotion and rollback, with
the stack, the actor, the time and a JSON payload. The queries behind ``modelrail lineage``
are methods here. The file lives in the state directory and is copied to the artifact bucket
after every write (``on_write``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipelines.errors import BadInputError, RefusedError

EVENT_KINDS = ("register", "gate", "approval", "promotion", "rollback")
SERVING_KINDS = ("promotion", "rollback")
"""Events that change what serves: ``promotion`` with ``payload["stage"] == "production"``, or a
``rollback`` (its ``version`` is the one serving afterwards)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    package_sha TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    dataset_uri TEXT NOT NULL,
    dataset_sha256 TEXT NOT NULL,
    git_sha TEXT NOT NULL,
    parameters TEXT NOT NULL,
    seed INTEGER NOT NULL,
    environment TEXT NOT NULL,
    metrics TEXT NOT NULL,
    training_run_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS model_features (
    package_sha TEXT NOT NULL REFERENCES models(package_sha),
    feature TEXT NOT NULL,
    PRIMARY KEY (package_sha, feature)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    stack TEXT NOT NULL,
    actor TEXT NOT NULL,
    at TEXT NOT NULL,
    run_id TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_service ON events (service, stack, at);
CREATE INDEX IF NOT EXISTS events_by_version ON events (version);
"""


@dataclass(frozen=True)
class LineageEvent:
    """One recorded event."""

    id: int
    kind: str
    service: str
    version: str
    stack: str
    actor: str
    at: str
    """UTC, ISO 8601."""
    run_id: str
    """The OpenLineage run that reported it."""
    payload: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp (``Z`` allowed; naive means UTC) as an aware UTC datetime."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInputError(f"--at {text!r}: not an ISO 8601 timestamp (e.g. 2025-06-01T12:00:00Z)") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Catalog:
    """The SQLite catalog at ``path``; ``on_write`` runs after each committed write."""

    def __init__(self, path: Path, *, on_write: Callable[[Path], None] | None = None) -> None:
        self.path = path
        self.on_write = on_write
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    # -- writes --------------------------------------------------------------------------------

    def record_model(self, package_sha: str, manifest: dict[str, Any], training_run_id: str) -> None:
        """What made ``package_sha``, from its package manifest (recording it again changes nothing)."""
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    package_sha,
                    manifest["service"],
                    manifest["dataset"]["uri"],
                    manifest["dataset"]["sha256"],
                    manifest["code"]["git_sha"],
                    json.dumps(manifest["parameters"], sort_keys=True),
                    int(manifest["seed"]),
                    json.dumps(manifest["environment"], sort_keys=True),
                    json.dumps(manifest.get("metrics", {}), sort_keys=True),
                    training_run_id,
                    _now(),
                ),
            )
            db.executemany(
                "INSERT OR IGNORE INTO model_features VALUES (?, ?)",
                [(package_sha, feature) for feature in manifest.get("features", [])],
            )
        self._written()

    def record_event(
        self,
        kind: str,
        service: str,
        version: str,
        stack: str,
        actor: str,
        payload: dict[str, Any] | None = None,
        *,
        run_id: str,
        at: datetime | None = None,
    ) -> LineageEvent:
        """Append one event; ``kind`` is one of ``EVENT_KINDS``."""
        if kind not in EVENT_KINDS:
            raise BadInputError(f"event kind {kind!r}: allowed: {', '.join(EVENT_KINDS)}")
        when = (at.astimezone(UTC).isoformat(timespec="microseconds")) if at else _now()
        body = json.dumps(payload or {}, sort_keys=True, default=str)
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO events (kind, service, version, stack, actor, at, run_id, payload) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, service, version, stack, actor, when, run_id, body),
            )
            event_id = int(cursor.lastrowid or 0)
        self._written()
        return LineageEvent(event_id, kind, service, version, stack, actor, when, run_id, json.loads(body))

    def _written(self) -> None:
        if self.on_write is not None:
            self.on_write(self.path)

    def snapshot(self, dest: Path) -> Path:
        """A consistent copy of the catalog (SQLite's backup API), e.g. for upload."""
        with self._connect() as db, sqlite3.connect(dest) as target:
            db.backup(target)
        return dest

    # -- queries -------------------------------------------------------------------------------

    def events(self, *, version: str | None = None, service: str | None = None) -> list[LineageEvent]:
        clauses, values = [], []
        if version is not None:
            clauses.append("version = ?")
            values.append(version)
        if service is not None:
            clauses.append("service = ?")
            values.append(service)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._connect() as db:
            rows = db.execute(f"SELECT * FROM events {where} ORDER BY at, id", values).fetchall()
        return [_event(row) for row in rows]

    def resolve(self, sha_or_prefix: str) -> str:
        """The full package sha of a recorded model (a unique prefix of ≥ 8 hex digits is enough)."""
        wanted = sha_or_prefix.strip().lower()
        if len(wanted) < 8:
            raise BadInputError(f"version {sha_or_prefix!r}: give at least 8 hex digits of the package sha")
        with self._connect() as db:
            rows = db.execute(
                "SELECT package_sha FROM models WHERE package_sha LIKE ? ORDER BY package_sha",
                (wanted + "%",),
            ).fetchall()
        if not rows:
            raise RefusedError(f"no model {sha_or_prefix} in the lineage catalog ({self.path})")
        if len(rows) > 1:
            raise BadInputError(
                f"version prefix {sha_or_prefix!r} matches {len(rows)} models",
                details=[row["package_sha"] for row in rows],
            )
        return str(rows[0]["package_sha"])

    def model(self, sha_or_prefix: str) -> dict[str, Any]:
        """Where a model came from (dataset, code, parameters, environment, parent runs) and its events."""
        sha = self.resolve(sha_or_prefix)
        with self._connect() as db:
            row = db.execute("SELECT * FROM models WHERE package_sha = ?", (sha,)).fetchone()
            features = [
                r["feature"]
                for r in db.execute(
                    "SELECT feature FROM model_features WHERE package_sha = ? ORDER BY feature", (sha,)
                )
            ]
        events = self.events(version=sha)
        parent_runs = [
            {"job": f"{row['service']}.train", "run_id": row["training_run_id"], "kind": "training"}
        ]
        parent_runs += [
            {
                "job": f"{row['service']}.{event.kind}",
                "run_id": event.run_id,
                "kind": event.kind,
                "stack": event.stack,
            }
            for event in events
            if event.kind == "register"
        ]
        return {
            "version": sha,
            "service": row["service"],
            "dataset": {"uri": row["dataset_uri"], "sha256": row["dataset_sha256"]},
            "code": {"git_sha": row["git_sha"]},
            "parameters": json.loads(row["parameters"]),
            "seed": row["seed"],
            "environment": json.loads(row["environment"]),
            "metrics": json.loads(row["metrics"]),
            "features": features,
            "parent_runs": parent_runs,
            "events": [event.to_json() for event in events],
        }

    def models_for_dataset(self, fingerprint: str) -> list[dict[str, Any]]:
        """Models trained on the dataset with this sha256 (a prefix of ≥ 8 hex digits matches too)."""
        wanted = fingerprint.strip().lower()
        if len(wanted) < 8:
            raise BadInputError(
                f"fingerprint {fingerprint!r}: give at least 8 hex digits of the dataset sha256"
            )
        return self._models("WHERE m.dataset_sha256 LIKE ?", (wanted + "%",))

    def models_for_feature(self, feature: str) -> list[dict[str, Any]]:
        """Models whose input schema includes ``feature``."""
        return self._models(
            "WHERE m.package_sha IN (SELECT package_sha FROM model_features WHERE feature = ?)", (feature,)
        )

    def _models(self, where: str, values: tuple[Any, ...]) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT m.package_sha, m.service, m.dataset_sha256, m.git_sha, m.recorded_at FROM models m "
                f"{where} ORDER BY m.recorded_at, m.package_sha",
                values,
            ).fetchall()
        return [
            {
                "version": row["package_sha"],
                "service": row["service"],
                "dataset_sha256": row["dataset_sha256"],
                "git_sha": row["git_sha"],
                "recorded_at": row["recorded_at"],
            }
            for row in rows
        ]

    def production_at(self, service: str, stack: str, at: datetime) -> dict[str, Any]:
        """What served ``service`` in ``stack`` at ``at``: the last serving event at or before it."""
        when = at.astimezone(UTC).isoformat(timespec="microseconds")
        with self._connect() as db:
            rows = db.execute(
                "SELECT * FROM events WHERE service = ? AND stack = ? AND kind IN (?, ?) AND at <= ? "
                "ORDER BY at DESC, id DESC",
                (service, stack, *SERVING_KINDS, when),
            ).fetchall()
        for row in rows:
            event = _event(row)
            if event.kind == "rollback" or event.payload.get("stage") == "production":
                return {
                    "service": service,
                    "stack": stack,
                    "at": when,
                    "version": event.version,
                    "since": event.at,
                    "event": event.to_json(),
                }
        return {"service": service, "stack": stack, "at": when, "version": None, "since": None, "event": None}


def _event(row: sqlite3.Row) -> LineageEvent:
    return LineageEvent(
        id=row["id"],
        kind=row["kind"],
        service=row["service"],
        version=row["version"],
        stack=row["stack"],
        actor=row["actor"],
        at=row["at"],
        run_id=row["run_id"],
        payload=json.loads(row["payload"]),
    )
