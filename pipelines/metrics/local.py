"""``LocalMetricsSource``: windows from the sandbox router's ``/metrics``.

The router keeps a reading of its counters every second and serves any of them with
``/metrics?at=T``, so a window is the difference between the readings at ``end`` and at
``start``, exact to a second and independent of who asked before. Which version is the
baseline and which the canary comes from the ``modelrail_variant_info`` roles at ``end``
(or at ``start`` if the canary was already gone by ``end``). The sandbox's alarms, which stop
a canary, are ``pipelines.runtimes.alarms.SandboxAlarms``.
"""

from __future__ import annotations

from typing import Protocol

from pipelines.metrics import exposition as expo
from pipelines.metrics.stats import CanaryWindow, VariantStats
from pipelines.metrics.versions import (
    ServiceReading,
    canary_window,
    difference,
    read_service,
    window_roles,
)


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

    def _reading(self, service: str, at: float) -> ServiceReading:
        text = self._readings.get(at)
        if text is None:
            text = self.client.metrics_text(at=at)
            self._readings[at] = text
            while len(self._readings) > self.READINGS_KEPT:
                del self._readings[min(self._readings)]
        return read_service(expo.parse(text), service)

    def window(
        self, service: str, start: float, end: float, *, rollout_start: float | None = None
    ) -> CanaryWindow:
        """Both fleets side by side over ``[start, end)``: the rollout's start does not matter here."""
        if end < start:
            raise ValueError(f"a window ends after it starts: start={start}, end={end}")
        before = self._reading(service, start)
        after = self._reading(service, end)
        roles = window_roles(before.roles, after.roles)
        stats = {
            version: difference(
                after.counters.get(version, VariantStats(version=version)), before.counters.get(version)
            )
            for version in roles
        }
        return canary_window(start, end, roles, stats)
