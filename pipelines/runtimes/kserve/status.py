"""What an InferenceService really runs, read from its status document.

The document is what ``kubectl get inferenceservice NAME -n NS -o json`` prints (the sandbox
writes the same shape). KServe's controller copies the predictor's Knative Service status into
``status.components.predictor`` (``PropagateStatus`` in KServe's
``pkg/apis/serving/v1beta1/inference_service_status.go``):

* ``latestCreatedRevision``: the revision of the newest spec; ``latestReadyRevision``: the newest
  one whose pods are ready; ``latestRolledoutRevision``: the newest one that took 100% of the
  traffic (KServe's rollback target); ``previousRolledoutRevision``: the one before it.
* ``traffic``: the Knative route's targets. Knative routes ``latestRevision: true`` to the latest
  *ready* revision, so while a new revision is not ready both targets may name the old one:
  the shares are summed per revision.
* ``conditions``: ``Ready`` is ``PredictorReady`` and ``IngressReady`` together.

``metadata.annotations["modelrail.io/model-version"]`` is the version of the newest spec, so it
names what the latest created revision serves; the revisions before it are not named here.

Statuses (``EndpointState.status``): the controller's ``InService``, ``Updating`` (transitional),
``Failed`` and ``NotFound``, and three more it treats as "not serving the target" because they
are neither transitional nor ``InService``: ``Canary`` (the latest revision ready with part of
the traffic), ``CanaryAborted`` (ready with none of it) and ``Unversioned`` (no model-version
annotation). Each is a constant below, with what it means.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.naming import MODEL_VERSION_ANNOTATION, version_config_name
from pipelines.runners.base import EndpointState

"""The InferenceService annotation that names the model version of its spec."""

IN_SERVICE = "InService"
"""The spec is observed, Ready, and its latest revision is rolled out with all the traffic."""
UPDATING = "Updating"
"""Transitional: KServe has not observed the spec yet, or the latest created revision is not
ready while ``Ready`` is not False (pods starting, the model downloading)."""
CANARY = "Canary"
"""Settled mid-rollout: the latest revision is ready and carries part of the traffic (1 to 99%),
the latest rolled-out revision the rest. Not ``InService``: the endpoint does not serve the
target version alone, so a verification that expects it fails, and one that expects a canary
step reads ``RevisionStatus``."""
CANARY_ABORTED = "CanaryAborted"
"""Settled: the latest revision is ready but carries no traffic (``canaryTrafficPercent: 0``,
KServe's "rollback and pin the previous model"); the latest rolled-out revision serves it all."""
FAILED = "Failed"
"""``Ready`` is False (the new revision failed, or the ingress); ``failure_reason`` has KServe's
reason and message. Knative keeps the traffic on the last ready revision meanwhile."""
NOT_FOUND = "NotFound"
"""No InferenceService of that name in the namespace."""
UNVERSIONED = "Unversioned"
"""Settled, but the InferenceService carries no ``modelrail.io/model-version`` annotation, so
which version it serves cannot be told: not one modelrail deployed, or edited by hand."""


@dataclass(frozen=True)
class Condition:
    """One of ``status.conditions``: ``status`` is ``"True"``, ``"False"`` or ``"Unknown"``."""

    status: str
    reason: str = ""
    message: str = ""

    def describe(self) -> str:
        return ": ".join(part for part in (self.reason, self.message) if part)


@dataclass(frozen=True)
class RevisionStatus:
    """The predictor's revisions and traffic as one InferenceService document has them."""

    observed: bool
    """``status.observedGeneration == metadata.generation``: the status describes the current spec."""
    generation: int | None
    observed_generation: int | None
    ready: Condition
    """The ``Ready`` condition (``Unknown`` when there is none yet)."""
    latest_created: str
    latest_ready: str
    latest_rolled_out: str
    previous_rolled_out: str
    traffic: Mapping[str, int] = field(default_factory=dict)
    """Percent of the traffic per revision, summed over the route's targets."""
    version: str = ""
    """The ``modelrail.io/model-version`` annotation: the version of the latest created revision."""

    @classmethod
    def of(cls, document: Mapping[str, Any]) -> RevisionStatus:
        """Read the fields the controller needs; absent ones are empty (a new InferenceService
        has no status yet)."""
        metadata = document.get("metadata") or {}
        status = document.get("status") or {}
        predictor = (status.get("components") or {}).get("predictor") or {}
        traffic: dict[str, int] = {}
        for target in predictor.get("traffic") or []:
            name = str(target.get("revisionName") or "")
            if name and target.get("percent") is not None:
                traffic[name] = traffic.get(name, 0) + int(target["percent"])
        ready = next(
            (
                Condition(
                    str(c.get("status", "Unknown")), str(c.get("reason", "")), str(c.get("message", ""))
                )
                for c in status.get("conditions") or []
                if c.get("type") == "Ready"
            ),
            Condition("Unknown", "NoReadyCondition", "KServe has not reported readiness yet"),
        )
        generation = metadata.get("generation")
        observed_generation = status.get("observedGeneration")
        return cls(
            observed=generation is not None and observed_generation == generation,
            generation=None if generation is None else int(generation),
            observed_generation=None if observed_generation is None else int(observed_generation),
            ready=ready,
            latest_created=str(predictor.get("latestCreatedRevision") or ""),
            latest_ready=str(predictor.get("latestReadyRevision") or ""),
            latest_rolled_out=str(predictor.get("latestRolledoutRevision") or ""),
            previous_rolled_out=str(predictor.get("previousRolledoutRevision") or ""),
            traffic=traffic,
            version=str((metadata.get("annotations") or {}).get(MODEL_VERSION_ANNOTATION) or ""),
        )

    @property
    def latest_is_ready(self) -> bool:
        """The newest spec's revision is the newest ready one (its pods serve)."""
        return bool(self.latest_created) and self.latest_created == self.latest_ready

    @property
    def latest_percent(self) -> int:
        """The share of the traffic the latest created revision serves (0 while it is not ready)."""
        return self.traffic.get(self.latest_created, 0) if self.latest_is_ready else 0

    def split(self) -> str:
        """The traffic per revision, for people: ``a-00002 10%, a-00001 90%``."""
        shares = sorted(self.traffic.items(), key=lambda item: (-item[1], item[0]))
        return ", ".join(f"{name} {percent}%" for name, percent in shares) or "no traffic targets"

    def step_failure(self, percent: int | None) -> str:
        """Why the status does not show a rollout step done, or '' when it does.

        ``percent`` is the step's ``canaryTrafficPercent``: the latest revision must be ready and
        carry exactly that share. ``None`` (the full step): it must be the latest rolled-out
        revision too, with all the traffic. Either way the status must describe the current spec.
        """
        if not self.observed:
            return (
                f"KServe has not observed generation {self.generation} of the InferenceService yet "
                f"(observed: {self.observed_generation})"
            )
        if not self.latest_is_ready:
            created = self.latest_created or "none"
            ready = self.latest_ready or "none"
            return (
                f"the latest revision {created} is not ready (latest ready: {ready}; {self.ready.describe()})"
            )
        expected = 100 if percent is None else percent
        if self.latest_percent != expected:
            return (
                f"the latest revision {self.latest_created} carries {self.latest_percent}%, "
                f"not {expected}% ({self.split()})"
            )
        if percent is None and self.latest_rolled_out != self.latest_created:
            rolled = self.latest_rolled_out or "none"
            return f"the latest revision {self.latest_created} is not the rolled-out one ({rolled})"
        return ""


def endpoint_state(service: str, document: Mapping[str, Any] | None) -> EndpointState:
    """The controller's view of an InferenceService document (None: it does not exist).

    Checked in order: not found; spec not observed (``Updating``); ``Ready`` False (``Failed``);
    the latest revision not ready (``Updating``); then the traffic: all of it on the latest,
    rolled-out revision is ``InService`` on ``version_config_name(service, version)``, part of it
    ``Canary`` (on the latest revision's configuration), none ``CanaryAborted``.
    """
    if document is None:
        return EndpointState(NOT_FOUND, "", "no InferenceService for this service")
    status = RevisionStatus.of(document)
    if not status.observed:
        return EndpointState(UPDATING, "", status.step_failure(None))
    if status.ready.status == "False":
        return EndpointState(FAILED, "", status.ready.describe() or "Ready is False")
    if not status.latest_is_ready or status.ready.status != "True":
        return EndpointState(UPDATING, "", status.step_failure(None))
    if not status.version:
        return EndpointState(UNVERSIONED, "", f"no {MODEL_VERSION_ANNOTATION} annotation ({status.split()})")
    running = version_config_name(service, status.version)
    share = status.latest_percent
    if share == 100 and status.latest_rolled_out == status.latest_created:
        return EndpointState(IN_SERVICE, running)
    if share == 100:
        # KServe records the rolled-out revision in the reconcile that routes 100% to it.
        return EndpointState(UPDATING, "", status.step_failure(None))
    if share == 0:
        return EndpointState(
            CANARY_ABORTED, "", f"the latest revision {status.latest_created} carries 0% ({status.split()})"
        )
    return EndpointState(
        CANARY, running, f"the latest revision {status.latest_created} carries {share}% ({status.split()})"
    )
