"""A KServe InferenceService's revisions and traffic, as a pure state machine (no processes).

What KServe (over Knative) does with a predictor spec, reduced to what the controller relies on:

* every spec that changes the model (another version) creates a revision,
  ``<name>-predictor-00001``, ``-00002``…; until its server is ready it takes no traffic;
* once the latest revision is ready, ``canaryTrafficPercent: N`` gives it N% and the latest
  rolled-out revision the rest; without a canary percent (or at 100) it takes all traffic and
  becomes the latest rolled-out revision, the one a rollback returns to;
* a spec that changes only ``canaryTrafficPercent`` re-splits traffic between the same revisions
  (0: all of it back on the rolled-out revision);
* a revision whose server never becomes ready leaves traffic where it was, and the
  InferenceService ``Ready: False`` with reason ``RevisionFailed``.

``InferenceServiceState.document`` renders it all in the shape ``kubectl get inferenceservice -o
json`` prints, so one interpreter reads the sandbox and a real cluster alike. The live service
(``pipelines.sandbox.inference_service``) runs a model server per revision along this machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from infra.naming import MODEL_VERSION_ANNOTATION
from pipelines.sandbox.endpoint import DeploymentInProgressError

API_VERSION = "serving.kserve.io/v1beta1"
ABORT_ANNOTATION = "modelrail.io/canary-aborted"
"""Why the canary's share was set to 0 (``abort``); cleared by the next applied spec."""


class RevisionPhase(StrEnum):
    """Where one revision stands."""

    STARTING = "starting"
    """Its model server is coming up; it takes no traffic, and the spec is not yet observed."""
    READY = "ready"
    """Its server answered ``/ping``: it can take traffic."""
    FAILED = "failed"
    """Its server never became ready; traffic stayed where it was."""


@dataclass
class Revision:
    """One immutable snapshot of the predictor: a version served from a model directory."""

    name: str
    version: str
    model_dir: str
    phase: RevisionPhase = RevisionPhase.STARTING
    message: str | None = None
    """Why it failed."""


@dataclass(frozen=True)
class PredictorSpec:
    """What one applied spec asks for: the model and the canary's share (``None``: all traffic)."""

    version: str
    canary_percent: int | None


@dataclass(frozen=True)
class TrafficTarget:
    """One entry of ``status.components.predictor.traffic``."""

    revision: str
    percent: int
    latest: bool
    """Knative's ``latestRevision``: this entry follows the latest ready revision."""
    tag: str | None
    """``latest``/``prev`` in a canary split; none when one revision takes everything."""

    def to_json(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "revisionName": self.revision,
            "percent": self.percent,
            "latestRevision": self.latest,
        }
        if self.tag is not None:
            entry["tag"] = self.tag
        return entry


def check_canary_percent(canary_percent: int | None) -> None:
    """``ValueError`` unless the share is 0..100 or none; the runtime checks it before a first spec
    creates the InferenceService, so a refused one leaves no InferenceService without a spec."""
    if not 0 <= (canary_percent or 0) <= 100:
        raise ValueError(f"canaryTrafficPercent = {canary_percent!r}; allowed: 0..100 or none")


def revision_name(isvc: str, number: int) -> str:
    """Knative's revision name for the predictor's ``number``-th revision."""
    return f"{isvc}-predictor-{number:05d}"


@dataclass
class InferenceServiceState:
    """One InferenceService: its applied specs (``generation``), revisions and traffic split.

    ``observed_generation`` catches up with ``generation`` once the sandbox has finished with the
    spec: at once for a change of split, when its revision is ready or failed for a new model.
    """

    name: str
    service: str
    namespace: str
    url: str
    environment: str
    generation: int = 0
    observed_generation: int = 0
    spec: PredictorSpec | None = None
    revisions: list[Revision] = field(default_factory=list)
    rolled_out: str | None = None
    previous_rolled_out: str | None = None
    traffic: tuple[TrafficTarget, ...] = ()
    abort_reason: str | None = None

    @property
    def latest(self) -> Revision | None:
        return self.revisions[-1] if self.revisions else None

    @property
    def latest_ready(self) -> Revision | None:
        return next((r for r in reversed(self.revisions) if r.phase is RevisionPhase.READY), None)

    def revision(self, name: str) -> Revision:
        return next(revision for revision in self.revisions if revision.name == name)

    # ---- transitions ----

    def apply(self, version: str, model_dir: str, canary_percent: int | None) -> Revision | None:
        """Apply a spec (one stack update); the new revision to start, or None when no server is needed.

        The same spec again changes nothing (no new generation). The latest revision's version
        with another share only re-splits traffic. Any other version (or the latest's version
        after its revision failed: the sandbox has no Knative to keep retrying it) is a new
        revision. ``DeploymentInProgressError`` while a revision is still starting.
        """
        latest = self.latest
        if latest is not None and latest.phase is RevisionPhase.STARTING:
            raise DeploymentInProgressError(
                f"InferenceService {self.name} is still starting revision {latest.name} "
                f"({latest.version[:12]}); wait for it to be ready or failed"
            )
        check_canary_percent(canary_percent)
        spec = PredictorSpec(version, canary_percent)
        if spec == self.spec:
            return None
        self.generation += 1
        self.spec = spec
        self.abort_reason = None
        if latest is not None and latest.version == version and latest.phase is RevisionPhase.READY:
            self._route()
            self.observed_generation = self.generation
            return None
        revision = Revision(revision_name(self.name, len(self.revisions) + 1), version, model_dir)
        self.revisions.append(revision)
        return revision

    def ready(self, name: str) -> None:
        """The revision's server answered ``/ping``: traffic moves by the current spec."""
        revision = self.revision(name)
        revision.phase = RevisionPhase.READY
        if revision is self.latest:
            self._route()
            self.observed_generation = self.generation

    def failed(self, name: str, message: str) -> None:
        """The revision's server never became ready: traffic stays, ``Ready`` turns False."""
        revision = self.revision(name)
        revision.phase = RevisionPhase.FAILED
        revision.message = message
        if revision is self.latest:
            self.observed_generation = self.generation

    def abort(self, reason: str) -> bool:
        """Patch ``canaryTrafficPercent`` to 0: the canary's share goes to the rolled-out revision at once.

        False (nothing changes) when no canary is in flight: no spec, the share already 0, the
        latest revision is the rolled-out one, or none was ever rolled out (KServe gives a first
        revision all traffic whatever the share, so there is nothing to send it back to). The
        canary is the latest *ready* revision, as Knative's ``latestRevision`` target follows it:
        while a newer revision starts (or after it failed) the one taking traffic goes to 0% now,
        and a revision still starting takes 0% once ready.
        """
        latest = self.latest
        if self.spec is None or latest is None or self.rolled_out is None or latest.name == self.rolled_out:
            return False
        if self.spec.canary_percent == 0:
            return False
        self.generation += 1
        self.spec = PredictorSpec(self.spec.version, 0)
        self.abort_reason = reason
        self._route()
        if latest.phase is not RevisionPhase.STARTING:
            self.observed_generation = self.generation
        return True

    def _route(self) -> None:
        """Split traffic for the latest ready revision by the spec, as KServe's reconciler does.

        That is the latest revision but in an abort, which may find a newer one still starting or
        failed; a rolled-out revision exists then, so the abort's 0% never promotes anything.
        """
        ready = self.latest_ready
        assert self.spec is not None and ready is not None
        latest = ready.name
        share = 100 if self.spec.canary_percent is None else self.spec.canary_percent
        if self.rolled_out is None or self.rolled_out == latest or share == 100:
            if self.rolled_out != latest:
                self.previous_rolled_out, self.rolled_out = self.rolled_out, latest
            self.traffic = (TrafficTarget(latest, 100, latest=True, tag=None),)
            return
        self.traffic = (
            TrafficTarget(latest, share, latest=True, tag="latest"),
            TrafficTarget(self.rolled_out, 100 - share, latest=False, tag="prev"),
        )

    # ---- what the router reads ----

    def serving(self) -> set[str]:
        """The revisions whose servers must keep running: every traffic target, 0% included."""
        return {target.revision for target in self.traffic}

    def roles(self) -> dict[str, str]:
        """``baseline``: the rolled-out revision's version; ``canary``: the version of the revision
        that follows the latest target while it is not the rolled-out one."""
        roles = {
            self.revision(t.revision).version: "canary"
            for t in self.traffic
            if t.latest and t.revision != self.rolled_out
        }
        if self.rolled_out is not None:
            roles[self.revision(self.rolled_out).version] = "baseline"
        return roles

    def summary(self) -> dict[str, Any]:
        """The InferenceService at a glance, for ``modelrail sandbox status``: every revision (the
        document names only the latest and the rolled-out ones), the split and ``Ready``."""
        ready = next(condition for condition in self.conditions() if condition["type"] == "Ready")
        return {
            "service": self.service,
            "name": self.name,
            "namespace": self.namespace,
            "url": self.url,
            "ready": ready["status"],
            "reason": ready.get("message"),
            "generation": self.generation,
            "observed_generation": self.observed_generation,
            "revisions": [
                {"name": r.name, "version": r.version, "phase": r.phase.value, "message": r.message}
                for r in self.revisions
            ],
            "traffic": {target.revision: target.percent for target in self.traffic},
            "rolled_out": self.rolled_out,
        }

    # ---- the document ----

    def conditions(self) -> list[dict[str, Any]]:
        """``PredictorReady`` and ``Ready``, as KServe propagates them from the Knative service."""
        latest = self.latest
        assert latest is not None
        if latest.phase is RevisionPhase.READY:
            condition: dict[str, Any] = {"status": "True"}
        elif latest.phase is RevisionPhase.STARTING:
            condition = {
                "status": "Unknown",
                "reason": "RevisionMissing",
                "message": f'Configuration "{self.name}-predictor" is waiting for a Revision to become ready.',
            }
        else:
            condition = {
                "status": "False",
                "reason": "RevisionFailed",
                "message": f'Revision "{latest.name}" failed with message: {latest.message}.',
            }
        return [{"type": kind, **condition} for kind in ("PredictorReady", "Ready")]

    def document(self) -> dict[str, Any]:
        """The InferenceService as ``kubectl get inferenceservice NAME -o json`` prints it."""
        assert self.spec is not None and self.latest is not None
        predictor_spec: dict[str, Any] = {
            "containers": [
                {
                    "name": "kserve-container",
                    "env": [
                        {"name": "MODELRAIL_SERVICE", "value": self.service},
                        {"name": "MODELRAIL_MODEL_VERSION", "value": self.spec.version},
                        {"name": "STORAGE_URI", "value": f"file://{self._model_dir(self.spec.version)}"},
                    ],
                }
            ]
        }
        if self.spec.canary_percent is not None:
            predictor_spec["canaryTrafficPercent"] = self.spec.canary_percent
        annotations = {MODEL_VERSION_ANNOTATION: self.spec.version}
        if self.abort_reason is not None:
            annotations[ABORT_ANNOTATION] = self.abort_reason
        predictor: dict[str, Any] = {"latestCreatedRevision": self.latest.name}
        if (ready := self.latest_ready) is not None:
            predictor["latestReadyRevision"] = ready.name
        if self.rolled_out is not None:
            predictor["latestRolledoutRevision"] = self.rolled_out
        if self.previous_rolled_out is not None:
            predictor["previousRolledoutRevision"] = self.previous_rolled_out
        predictor["traffic"] = [target.to_json() for target in self.traffic]
        predictor["url"] = self.url
        return {
            "apiVersion": API_VERSION,
            "kind": "InferenceService",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "generation": self.generation,
                "labels": {
                    "modelrail.io/service": self.service,
                    "modelrail.io/environment": self.environment,
                },
                "annotations": annotations,
            },
            "spec": {"predictor": predictor_spec},
            "status": {
                "observedGeneration": self.observed_generation,
                "url": self.url,
                "conditions": self.conditions(),
                "components": {"predictor": predictor},
            },
        }

    def _model_dir(self, version: str) -> str:
        return next(r.model_dir for r in reversed(self.revisions) if r.version == version)


def settled(document: dict[str, Any]) -> bool:
    """Whether the InferenceService has finished with its latest spec (ready or failed)."""
    return bool(document["status"]["observedGeneration"] == document["metadata"]["generation"])
