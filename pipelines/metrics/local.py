"""``LocalMetricsSource``: windows from the sandbox router's ``/metrics``.

The router keeps a reading of its counters every second and serves any of them with
``/metrics?at=T``, so a window is the difference between the readings at ``end`` and at
``start``, exact to a second and independent of who asked before. Which version is the
baseline and which the canary comes from the ``modelrail_variant_info`` roles at ``end``
(or at ``start`` if the canary was already gone by ``end``). A shadow phase's window takes the
``shadow`` role's version as the canary instead, with the router's pairing of its answers to
production's (``modelrail_shadow_comparisons_total``) as the agreement. The sandbox's alarms,
which stop a canary, are ``pipelines.runtimes.alarms.SandboxAlarms``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from pipelines.metrics import exposition as expo
from pipelines.metrics.stats import Agreement, CanaryWindow, VariantStats
from pipelines.metrics.versions import (
    ServiceReading,
    canary_window,
    difference,
    read_service,
    window_roles,
)


@dataclass(frozen=True)
class _Reading:
    """One reading of one service: per-version stats and roles, and each shadow's comparisons."""

    service: ServiceReading
    agreement: dict[str, Agreement]


def _agreement(samples: Sequence[expo.Sample], service: str) -> dict[str, Agreement]:
    """Per version, its predictions compared with production's as a shadow, cumulative."""
    counts: dict[str, dict[str, int]] = {}
    for sample in samples:
        labels = sample.labels
        if sample.name == expo.SHADOW_COMPARISONS and labels.get("service") == service:
            counts.setdefault(labels.get("version", ""), {})[labels.get("result", "")] = int(sample.value)
    return {
        version: Agreement(by.get("agreed", 0) + by.get("disagreed", 0), by.get("agreed", 0))
        for version, by in counts.items()
    }


def _between(before: Agreement | None, after: Agreement | None) -> Agreement:
    """What was paired and agreed between two cumulative readings of one shadow."""
    before, after = before or Agreement(), after or Agreement()
    paired = max(after.paired - before.paired, 0)
    return Agreement(paired, min(max(after.agreed - before.agreed, 0), paired))


def _shadow_roles(at_start: Mapping[str, str], at_end: Mapping[str, str]) -> dict[str, str]:
    """Production as the baseline and the shadow as the canary over a window: the roles at ``end``,
    or at ``start`` for a shadow that was gone by ``end``. A canary is none of a shadow window's."""
    roles = dict(at_end) if "shadow" in at_end.values() else {**at_end, **at_start}
    return {
        version: "canary" if role == "shadow" else role for version, role in roles.items() if role != "canary"
    }


class SandboxMetrics(Protocol):
    """What the source needs from ``SandboxClient``."""

    def metrics_text(self, at: float | None = None) -> str: ...


class LocalMetricsSource:
    """The ``MetricsSource`` of the local sandbox."""

    READINGS_KEPT = 8

    def __init__(self, client: SandboxMetrics) -> None:
        self.client = client
        self._readings: dict[float, str] = {}
        """Recent readings by time, so back-to-back windows share their boundary reading exactly."""

    def _reading(self, service: str, at: float) -> _Reading:
        text = self._readings.get(at)
        if text is None:
            text = self.client.metrics_text(at=at)
            self._readings[at] = text
            while len(self._readings) > self.READINGS_KEPT:
                del self._readings[min(self._readings)]
        samples = expo.parse(text)
        return _Reading(read_service(samples, service), _agreement(samples, service))

    def window(
        self,
        service: str,
        start: float,
        end: float,
        *,
        rollout_start: float | None = None,
        shadow: bool = False,
    ) -> CanaryWindow:
        """Both fleets side by side over ``[start, end)``: the rollout's start does not matter here.

        ``shadow``: production is the baseline and the shadow variant the canary, on the requests
        mirrored to it, with their agreement (``None`` while no shadow runs). Without it a shadow's
        traffic is nobody's: it never counts as the canary's.
        """
        if end < start:
            raise ValueError(f"a window ends after it starts: start={start}, end={end}")
        before = self._reading(service, start)
        after = self._reading(service, end)
        if shadow:
            roles = _shadow_roles(before.service.roles, after.service.roles)
        else:
            roles = window_roles(before.service.roles, after.service.roles)
        stats = {
            version: difference(
                after.service.counters.get(version, VariantStats(version=version)),
                before.service.counters.get(version),
            )
            for version in roles
        }
        window = canary_window(start, end, roles, stats)
        version = next((name for name, role in roles.items() if role == "canary"), None)
        if not shadow or version is None:
            return window
        return replace(
            window, agreement=_between(before.agreement.get(version), after.agreement.get(version))
        )
