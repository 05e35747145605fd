"""The model server's own ``GET /metrics``: what it served, in the sandbox router's exposition.

On a cluster no router stands in front of the model server, so Prometheus scrapes the server
itself (KServe's predictor pods, through the PodMonitor of ``components/kserve.py``) and the
PromQL canary analysis (``pipelines.metrics.promql``) reads the series the router writes in the
sandbox: requests, errors by status class, the model-latency histogram in seconds and the
predictions by bin, each labelled ``service`` (``MODELRAIL_SERVICE``) and ``version``
(``MODELRAIL_MODEL_VERSION``, else the package id). Only ``POST /invocations`` counts, with its
time in the server as the model latency; which version is the canary is not the server's to
know (``modelrail_variant_info`` stays the router's).

The metric names, HELP texts, latency buckets and prediction bins are ``pipelines.serving.series``,
the one definition the router's exposition shares. ``served_bin`` is the one definition of a
served prediction's bin, which the router imports (``pipelines.sandbox.outputs``).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

from pipelines.serving.launch import MODEL_VERSION_ENV
from pipelines.serving.model import MULTICLASS, REGRESSION, LoadedPackage
from pipelines.serving.series import (
    ERRORS,
    HELP,
    INVOCATIONS,
    LATENCY,
    LATENCY_BUCKETS_MS,
    PREDICTION_BINS,
    PREDICTIONS,
    escape,
    format_value,
)

SERVICE_ENV = "MODELRAIL_SERVICE"
"""The service's name, which ``components/kserve.py`` sets on the predictor container."""
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def served_bin(row: Mapping[str, Any], task: str, classes: Sequence[str], bins: Sequence[float]) -> int:
    """The prediction-histogram bin of one served row (a response's JSON row, or a CSV row's cells).

    Binary: the positive class's probability in tenths (clamped to [0, 1]; 1.0 in the last).
    Multiclass: the predicted class's position in ``classes`` (9 and beyond share the last bin).
    Regression: how many of the ``bins`` edges (the schema's training-label deciles) are at or
    below the prediction. Raises ``ValueError``, ``KeyError`` or ``TypeError`` for a row that is
    not such a prediction, so the caller counts the response as no predictions, not some of them.
    """
    if task == REGRESSION:
        prediction = float(row["prediction"])
        if not math.isfinite(prediction) or len(bins) != PREDICTION_BINS - 1:
            raise ValueError(f"prediction {prediction} with {len(bins)} bin edges")
        return bisect.bisect_right(bins, prediction)
    if task == MULTICLASS:
        return min(list(classes).index(str(row["label"])), PREDICTION_BINS - 1)
    clamped = min(max(float(row["probability"]), 0.0), 1.0)  # NaN stays NaN: int() refuses it
    return min(int(clamped * PREDICTION_BINS), PREDICTION_BINS - 1)


class ServingMetrics:
    """Thread-safe counters of one server's ``POST /invocations``, and their exposition."""

    def __init__(self, model: LoadedPackage, environ: Mapping[str, str]) -> None:
        self.labels = {
            "service": environ.get(SERVICE_ENV, ""),
            "version": environ.get(MODEL_VERSION_ENV) or model.package_id,
        }
        output = model.schema["output"]
        self._task, self._classes = model.task, tuple(model.classes)
        self._bins = tuple(output.get("bins") or ())
        self._lock = threading.Lock()
        self._invocations = 0
        self._errors = {"4xx": 0, "5xx": 0}
        self._latency_counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self._latency_sum_seconds = 0.0
        self._predictions = [0] * PREDICTION_BINS

    def invocation(self, status: int, seconds: float, predictions: Sequence[Mapping[str, Any]]) -> None:
        """One request: its status, its time in the server, and the rows it served (none on an error)."""
        try:
            bins = [served_bin(row, self._task, self._classes, self._bins) for row in predictions]
        except (ValueError, KeyError, TypeError):
            bins = []
        with self._lock:
            self._invocations += 1
            if 400 <= status < 600:
                self._errors[f"{status // 100}xx"] += 1
            self._latency_counts[bisect.bisect_left(LATENCY_BUCKETS_MS, seconds * 1000)] += 1
            self._latency_sum_seconds += seconds
            for index in bins:
                self._predictions[index] += 1

    def exposition(self) -> str:
        """Prometheus text exposition 0.0.4 of the counters, HELP and TYPE once per family."""
        with self._lock:
            invocations, errors = self._invocations, dict(self._errors)
            latency_counts, latency_sum = list(self._latency_counts), self._latency_sum_seconds
            predictions = list(self._predictions)
        families: dict[str, list[tuple[str, dict[str, str], float]]] = {
            INVOCATIONS: [(INVOCATIONS, {}, invocations)],
            ERRORS: [(ERRORS, {"code_class": code}, count) for code, count in errors.items()],
            LATENCY: [],
            PREDICTIONS: [(PREDICTIONS, {"bin": str(i)}, count) for i, count in enumerate(predictions)],
        }
        cumulative = 0
        for bound, count in zip((*LATENCY_BUCKETS_MS, math.inf), latency_counts, strict=True):
            cumulative += count
            le = "+Inf" if math.isinf(bound) else f"{bound / 1000:g}"
            families[LATENCY].append((f"{LATENCY}_bucket", {"le": le}, cumulative))
        families[LATENCY] += [(f"{LATENCY}_sum", {}, latency_sum), (f"{LATENCY}_count", {}, cumulative)]
        lines: list[str] = []
        for family, samples in families.items():
            kind, text = HELP[family]
            lines += [f"# HELP {family} {text}", f"# TYPE {family} {kind}"]
            for name, extra, value in samples:
                labels = ",".join(f'{key}="{escape(val)}"' for key, val in {**self.labels, **extra}.items())
                lines.append(f"{name}{{{labels}}} {format_value(value)}")
        return "\n".join(lines) + "\n"
