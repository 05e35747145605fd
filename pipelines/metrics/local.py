"""``LocalMetricsSource``: windows from the sandbox router's ``/metrics``.

The router keeps a reading of its counters every second and serves any of them with
``/metrics?at=T``, so a window is the difference between the readings at ``end`` and at
``start``, exact to a second and independent of who asked before. Which version is the
baseline and which the canary comes from the ``modelrail_variant_info`` roles at ``end``
(or at ``start`` if the canary was already gone by ``end``). A shadow phase's window takes the
``shadow`` role's version as the canary instead, on its answers to the mirrored copies (the
series with ``variant="shadow"``), with the router's pairing of its answers to production's
(``modelrail_shadow_comparisons_total``) as the agreement. Any other window reads only the series
without that label, the traffic clients were served: a candidate that was the shadow and then is
the canary is judged as the canary on its canary requests alone, even in a window that starts
(or reads a snapshot from) before the shadow was removed. The sandbox's alarms,
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
    """One reading of one service: per-version stats of the traffic served, and roles; per version
    its stats as a shadow (its answers to mirrored copies), and its comparisons."""

    service: ServiceReading
    shadow: dict[str, VariantStats]
    agreement: dict[str, Agreement]


def _mirrored(sample: expo.Sample) -> bool:
    """Whether a sample counts a shadow's answers to mirrored copies rather than served traffic."""
    return sample.labels.get(expo.VARIANT_LABEL) == expo.SHADOW_VARIANT


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
        served = [sample for sample in samples if not _mirrored(sample)]
        mirrored = [sample for sample in samples if _mirrored(sample)]
        return _Reading(
            read_service(served, service),
            read_service(mirrored, service).counters,
            _agreement(samples, service),
        )

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
        mirrored to it (its ``variant="shadow"`` series only), with their agreement (``None`` while
        no shadow runs). Without it a shadow's traffic is nobody's: it never counts as the canary's,
        not even when the shadow's version is the canary by then.
        """
        if end < start:
            raise ValueError(f"a window ends after it starts: start={start}, end={end}")
        before = self._reading(service, start)
        after = self._reading(service, end)
        if shadow:
            roles = _shadow_roles(before.service.roles, after.service.roles)
        else:
            roles = window_roles(before.service.roles, after.service.roles)
        stats: dict[str, VariantStats] = {}
        for version, role in roles.items():
            as_shadow = shadow and role == "canary"
            at_end = after.shadow if as_shadow else after.service.counters
            at_start = before.shadow if as_shadow else before.service.counters
            stats[version] = difference(
                at_end.get(version, VariantStats(version=version)), at_start.get(version)
            )
        window = canary_window(start, end, roles, stats)
        canary = next((name for name, role in roles.items() if role == "canary"), None)
        if not shadow or canary is None:
            return window
        return replace(window, agreement=_between(before.agreement.get(canary), after.agreement.get(canary)))
