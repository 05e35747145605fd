"""Lineage: where every model came from and where it went, in a catalog and as OpenLineage events.

Other parts of the controller record what they do with one call::

    from pipelines.lineage import record_event
    record_event("promotion", service, version, stack, actor, {"stage": "production", "from": old},
                 registry=registry)

``record_event`` writes the SQLite catalog (``<state_dir>/lineage/catalog.sqlite``), emits an
OpenLineage run, and copies the catalog to the stack's artifact bucket
(``CATALOG_KEY``) through the ``registry`` its caller holds. ``open_catalog()`` gives the queries.
"""

from pipelines.lineage.catalog import EVENT_KINDS, Catalog, LineageEvent, parse_timestamp
from pipelines.lineage.record import CATALOG_KEY, open_catalog, record_event, record_registration

__all__ = [
    "CATALOG_KEY",
    "EVENT_KINDS",
    "Catalog",
    "LineageEvent",
    "open_catalog",
    "parse_timestamp",
    "record_event",
    "record_registration",
]
