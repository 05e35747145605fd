"""Recording lineage: the catalog write, the OpenLineage run and the bucket copy, in that order."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import ModelrailError
from pipelines.lineage.catalog import Catalog, LineageEvent
from pipelines.lineage.runs import RunEmitter, new_run_id, training_run_id
from pipelines.paths import state_dir

if TYPE_CHECKING:
    from pipelines.registry.port import Registration, Registry

CATALOG_FILE = "lineage/catalog.sqlite"
CATALOG_KEY = "lineage/catalog.sqlite"
"""Where the catalog's copy lives in each stack's artifact bucket."""


class CatalogMirrorError(ModelrailError):
    """The event is recorded locally, but copying the catalog to the artifact bucket failed."""


def open_catalog(state: Path | None = None) -> Catalog:
    """The catalog of this state directory (created empty if there is none yet)."""
    return Catalog((state or state_dir()) / CATALOG_FILE)


def record_registration(
    registry: Registry, registration: Registration, manifest: dict[str, Any], actor: str
) -> LineageEvent:
    """Record a new registration: the model's origin, the ``register`` event, its OpenLineage runs."""
    version = registration.version
    catalog = open_catalog()
    catalog.record_model(version.package_sha, manifest, training_run_id(manifest))
    run_id = new_run_id()
    event = catalog.record_event(
        "register",
        version.service,
        version.package_sha,
        registry.stack,
        actor,
        {"arn": version.arn, "artifact_uri": version.artifact_uri, "stage": version.stage},
        run_id=run_id,
    )
    RunEmitter(state_dir()).registration(
        manifest=manifest,
        package_sha=version.package_sha,
        stack=registry.stack,
        artifact_uri=version.artifact_uri,
        run_id=run_id,
    )
    mirror_catalog(registry, catalog)
    return event


def record_event(
    kind: str,
    service: str,
    version: str,
    stack: str,
    actor: str,
    payload: dict[str, Any] | None = None,
    *,
    at: datetime | None = None,
    registry: Registry,
) -> LineageEvent:
    """Record a gate, approval, promotion or rollback of ``version`` in ``stack``.

    ``kind`` is one of ``EVENT_KINDS``. A ``promotion`` whose payload has
    ``"stage": "production"``, or any ``rollback``, marks ``version`` as the one serving from
    then on (``modelrail lineage production`` reads those). ``registry`` is the stack's, from the
    caller (the controller's wiring): the catalog is copied to its bucket.
    """
    catalog = open_catalog()
    run_id = new_run_id()
    event = catalog.record_event(kind, service, version, stack, actor, payload, run_id=run_id, at=at)
    parents = [e.run_id for e in catalog.events(version=version) if e.kind == "register" and e.stack == stack]
    RunEmitter(state_dir()).event(
        kind=kind,
        service=service,
        stack=stack,
        version=version,
        run_id=run_id,
        parent_run_id=parents[-1] if parents else None,
        payload=payload or {},
    )
    mirror_catalog(registry, catalog)
    return event


def mirror_catalog(registry: Registry, catalog: Catalog) -> str:
    """Copy a consistent snapshot of the catalog to the registry's bucket; returns its S3 URI."""
    with tempfile.TemporaryDirectory(prefix="modelrail-catalog-") as scratch:
        snapshot = catalog.snapshot(Path(scratch) / "catalog.sqlite")
        try:
            return registry.put_file(CATALOG_KEY, snapshot)
        except Exception as error:
            raise CatalogMirrorError(
                f"recorded in {catalog.path}, but copying it to s3://{registry.bucket}/{CATALOG_KEY} failed: "
                f"{error}; the next recorded event copies it again"
            ) from error
