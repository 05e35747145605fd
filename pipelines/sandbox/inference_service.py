"""A sandbox InferenceService: ``InferenceServiceState`` with one model server per revision.

A new revision's server starts on a thread of its own; the control API returns at once and the
client waits for the document to settle (``revisions.settled``). The router's weights follow the
state's traffic. A revision that leaves the traffic keeps its server for ``SCALE_DOWN_SECONDS``
(requests already routed to it finish), then the watchdog stops it, as KServe scales an unrouted
revision to zero. A revision never returns to the traffic once it left it (only the latest ready
and the rolled-out revisions are ever routed), so a stopped server is never needed again.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from infra.naming import endpoint_name
from pipelines.sandbox.endpoint import ENVIRONMENT
from pipelines.sandbox.fleet import FleetContext, FleetSet, FleetStartError
from pipelines.sandbox.revisions import InferenceServiceState, Revision

SCALE_DOWN_SECONDS = 2.0


class InferenceService(FleetSet):
    """The live InferenceService of one service; its servers are keyed by revision name."""

    def __init__(self, service: str, url: str, context: FleetContext, namespace: str) -> None:
        super().__init__(service, url, context)
        self.state = InferenceServiceState(
            name=endpoint_name(ENVIRONMENT, service),
            service=service,
            namespace=namespace,
            url=url,
            environment=ENVIRONMENT,
        )

    @property
    def served_as(self) -> str:
        return f"KServe InferenceService {self.state.name}"

    def roles(self) -> dict[str, str]:
        with self._lock:
            return self.state.roles()

    def document(self) -> dict[str, Any]:
        with self._lock:
            return self.state.document()

    def status(self) -> dict[str, Any]:
        """``InferenceServiceState.summary`` with the model servers, in the shape an endpoint's
        ``fleets`` has, so ``sandbox status`` counts restarts alike."""
        with self._lock:
            return {
                **self.state.summary(),
                "fleets": [vars(fleet) for fleet in self.fleet_descriptions()],
            }

    def apply(self, version: str, model_dir: Path, canary_percent: int | None) -> bool:
        """Apply a spec; True if a new revision's server is starting (wait for the document to settle)."""
        with self._lock:
            revision = self.state.apply(version, str(model_dir), canary_percent)
            if revision is None:
                self._follow_traffic()
            else:
                self._thread = threading.Thread(
                    target=self._start, args=(revision,), name=f"revision-{revision.name}", daemon=True
                )
                self._thread.start()
        self._on_change(self)
        return revision is not None

    def abort_canary(self, reason: str) -> bool:
        """``canaryTrafficPercent: 0`` now; False when no canary is in flight."""
        with self._lock:
            aborted = self.state.abort(reason)
            if aborted:
                self._follow_traffic()
        if aborted:
            self._on_change(self)
        return aborted

    def _start(self, revision: Revision) -> None:
        try:
            fleet = self._launch(revision.version, Path(revision.model_dir))
        except FleetStartError as error:
            with self._lock:
                self.state.failed(revision.name, str(error))
            self._on_change(self)
            return
        with self._lock:
            if self._closed:
                fleet.stop()
                return
            self.fleets[revision.name] = fleet
            self.state.ready(revision.name)
            self._follow_traffic()
        self._on_change(self)

    def _follow_traffic(self) -> None:
        """Route by the state's traffic; scale down the servers of revisions no longer in it."""
        self.weights = {target.revision: target.percent / 100 for target in self.state.traffic}
        serving = self.state.serving()
        for name in [name for name in self.fleets if name not in serving]:
            self._scale_down(name, SCALE_DOWN_SECONDS)
