"""``PrometheusMetricsSource``: windows by PromQL over a Prometheus server's HTTP API.

Prometheus scrapes the router's exposition (``pipelines.metrics.exposition``: the sandbox's
``/metrics``, or KServe predictor pods through their PodMonitor), so the series, names and
labels are the ones ``LocalMetricsSource`` reads, and both sources assemble a window with the
same code (``pipelines.metrics.versions``). Every query is an instant query at ``time=end``
over a range of the window's length (``[Nms]``, to the millisecond), summed by ``version``:

* counts: ``sum by (version, …) (increase(<counter>{service="…"}[N]))`` for requests, 4xx/5xx
  (``code_class``), latency buckets (``le``), prediction bins (``bin``), labels and correct labels;
* latency: ``histogram_quantile(q, sum by (version, le) (rate(<latency>_bucket{…}[N])))`` for the
  p50 and the p99 (in seconds, reported in ms);
* roles: ``modelrail_variant_info`` at ``end``, or also at ``start`` when the canary was gone by
  ``end`` (promoted or rolled back during the window). Only the sandbox's router writes it: the
  model servers a cluster's Prometheus scrapes (``pipelines.serving.metrics``) cannot know their
  role. For those the source is given ``canary_version`` (a service's InferenceService names the
  version its latest spec serves): without variant_info series, that version is the canary and
  the one other version with series in the window the baseline.

How counts are rounded, and why that is fine. ``increase`` is not a difference of two readings:
it takes the samples inside the range and extrapolates their increase to the range's edges
(never below zero for a counter that starts in the range). With a scrape interval ``s`` and a
window ``w``, that scales a window's counts by up to about ``w / (w - 2s)`` (2 to 4 % for a 1 s
scrape and 60 s intervals; tests/integration/test_prometheus_source.py measures it on 7 s). The
result is not a whole number, so each count is rounded to the nearest one; where rounding makes
a pair inconsistent (more correct labels than labels) the smaller is capped. The canary analysis
compares ratios (error rate, accuracy, the share of slow requests, the prediction
distribution), which a factor common to both counts of a ratio does not change; the sample
sizes behind its confidence sequences grow by that factor, which narrows a bound by about its
square root (1 to 2 %), little next to the margins a regression worth rolling back shows (the
integration test checks the verdict and every check agree with the sandbox's exact window).
Windows of the sandbox's own source are exact to its one-second readings instead.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from pipelines.dependencies import DependencyUnavailableError
from pipelines.errors import ModelrailError
from pipelines.metrics import exposition as expo
from pipelines.metrics.stats import CanaryWindow
from pipelines.metrics.versions import canary_window, read_service, window_roles

TIMEOUT_SECONDS = 10.0
"""How long one query may take before the server counts as not answering."""
RETRY_DELAYS_SECONDS = (0.5, 1.0)
"""Pauses between attempts of a query that found no server (queries are safe to repeat)."""

COUNTED: tuple[tuple[str, tuple[str, ...]], ...] = (
    (expo.INVOCATIONS, ()),
    (expo.ERRORS, ("code_class",)),
    (f"{expo.LATENCY}_bucket", ("le",)),
    (expo.PREDICTIONS, ("bin",)),
    (expo.LABELS, ()),
    (expo.LABELS_CORRECT, ()),
)
"""Every counter a window counts, with the labels besides ``version`` that tell its series apart."""

Vector = list[tuple[dict[str, str], float]]


class PromQLError(ModelrailError):
    """Prometheus answered, but refused or could not run a query (it names the query)."""


class AmbiguousBaselineError(ModelrailError):
    """Without variant_info, more than one version besides the canary has series: none of them
    can be called the baseline, so the window is not judged (the controller fails closed)."""


class PrometheusMetricsSource:
    """The ``MetricsSource`` of services whose router Prometheus scrapes (KServe, the sandbox)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        retry_delays: Sequence[float] = RETRY_DELAYS_SECONDS,
        settle_seconds: float = 0.0,
        canary_version: Callable[[str], str | None] | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"Prometheus URL {url!r}: an http(s) URL of the server is required, e.g. http://prometheus:9090"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retry_delays = tuple(retry_delays)
        self.settle_seconds = settle_seconds
        """How long after a window's end its last samples take to be scraped: ``window`` waits that
        long before it queries, so a window just ended is not judged on what was not scraped yet."""
        self.canary_version = canary_version
        """A service's canary version, for a Prometheus without ``modelrail_variant_info`` for it
        (model servers scraped directly); None: the roles come from variant_info only."""

    def window(
        self,
        service: str,
        start: float,
        end: float,
        *,
        rollout_start: float | None = None,
        shadow: bool = False,
    ) -> CanaryWindow:
        """Both versions side by side over ``[start, end)``: the rollout's start does not matter here."""
        if shadow:
            raise ValueError("KServe has no shadow variant: a shadow phase is refused on a KServe service")
        if end < start:
            raise ValueError(f"a window ends after it starts: start={start}, end={end}")
        time.sleep(max(0.0, end + self.settle_seconds - time.time()))
        # a shadow's answers to mirrored copies (variant="shadow") are never a version's traffic
        selector = f'{{service={json.dumps(service)},{expo.VARIANT_LABEL}!="{expo.SHADOW_VARIANT}"}}'
        span = f"{max(round((end - start) * 1000), 1)}ms"
        samples = []
        for name, labels in COUNTED:
            query = f"sum by ({', '.join(('version', *labels))}) (increase({name}{selector}[{span}]))"
            for series, value in self.query(query, end):
                if not math.isfinite(value):
                    raise PromQLError(f"PromQL `{query}` gave {value} for {series}, not a count")
                samples.append(expo.Sample(name, {**series, "service": service}, max(round(value), 0)))
        counters = read_service(samples, service).counters
        quantiles = {
            q: self._latency_quantile(q, f"{expo.LATENCY}_bucket{selector}[{span}]", end) for q in (0.5, 0.99)
        }
        stats = {
            version: replace(
                variant,
                latency_p50_ms=quantiles[0.5].get(version),
                latency_p99_ms=quantiles[0.99].get(version),
            )
            for version, variant in counters.items()
        }
        roles = window_roles(self._roles(selector, start), self._roles(selector, end))
        if not roles and self.canary_version is not None:
            roles = versions_roles(service, self.canary_version(service), sorted(stats))
        return canary_window(start, end, roles, stats)

    def _latency_quantile(self, q: float, buckets: str, at: float) -> dict[str, float]:
        """Each version's q-quantile in ms; a version without requests in the window has none."""
        query = f"histogram_quantile({q}, sum by (version, le) (rate({buckets})))"
        return {
            series["version"]: value * 1000
            for series, value in self.query(query, at)
            if "version" in series and math.isfinite(value)
        }

    def _roles(self, selector: str, at: float) -> dict[str, str]:
        query = f"max by (version, role) ({expo.VARIANT_INFO}{selector})"
        return {
            series["version"]: series.get("role", "")
            for series, _ in self.query(query, at)
            if "version" in series
        }

    def query(self, promql: str, at: float) -> Vector:
        """An instant query at ``at`` (epoch seconds): each series' labels and value.

        ``DependencyUnavailableError`` names the server when it does not answer (after the
        retries); ``PromQLError`` names the query when Prometheus refuses or fails it.
        """
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"})
        body = self._get(address, promql)
        try:
            answer = json.loads(body)
            data = answer["data"]
            if answer.get("status") != "success" or data["resultType"] != "vector":
                raise ValueError(f"status {answer.get('status')!r}, result type {data.get('resultType')!r}")
            return [(dict(item["metric"]), float(item["value"][1])) for item in data["result"]]
        except (ValueError, KeyError, TypeError, IndexError) as error:
            raise PromQLError(
                f"PromQL `{promql}`: {self.url} answered with something that is not an instant vector",
                details=[f"{type(error).__name__}: {error}", body[:300].decode(errors="replace")],
            ) from None

    def _get(self, address: str, promql: str) -> bytes:
        for attempt in range(len(self.retry_delays) + 1):
            try:
                with urllib.request.urlopen(address, timeout=self.timeout) as response:
                    body: bytes = response.read()
                    return body
            except urllib.error.HTTPError as error:
                problem = _error_text(error)
                if error.code < 500:
                    raise PromQLError(f"PromQL `{promql}` failed at {self.url}: {problem}") from None
                failure = f"HTTP {error.code}: {problem}"
            except OSError as error:  # refused, reset, timed out, unknown host
                failure = f"{type(error).__name__}: {getattr(error, 'reason', error)}"
            if attempt < len(self.retry_delays):
                time.sleep(self.retry_delays[attempt])
        raise DependencyUnavailableError(
            f"Prometheus at {self.url} is not answering",
            details=[f"query `{promql}`: {failure}", f"{len(self.retry_delays) + 1} attempts"],
        )


def versions_roles(service: str, canary: str | None, versions: Sequence[str]) -> dict[str, str]:
    """Roles from the versions with series when nothing says them: ``canary`` and the one other.

    A canary alone (no other version has series) serves all the traffic: it is the baseline,
    and there is no canary to judge, as outside a deployment. No canary version (no
    InferenceService, no annotation): no roles. More than one other: ``AmbiguousBaselineError``.
    """
    if canary is None:
        return {}
    others = [version for version in versions if version != canary]
    if not others:
        return {canary: "baseline"}
    if len(others) > 1:
        raise AmbiguousBaselineError(
            f"service {service!r}: Prometheus has series of {len(others)} versions besides the canary "
            f"{canary[:12]}, so none is the baseline: {', '.join(others)}",
            details=[
                f"no {expo.VARIANT_INFO} series names the roles; the canary is the version the "
                "InferenceService's latest spec serves"
            ],
        )
    return {canary: "canary", others[0]: "baseline"}


def _error_text(error: urllib.error.HTTPError) -> str:
    """Prometheus' own ``errorType: error`` from an error response, or the HTTP status."""
    try:
        answer: dict[str, Any] = json.loads(error.read())
        return f"{answer['errorType']}: {answer['error']}"
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {error.code} {error.reason}"
