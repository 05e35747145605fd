"""The Prometheus text exposition the sandbox router writes, and ``LocalMetricsSource`` and
Prometheus itself read (``pipelines.metrics.promql`` queries what Prometheus scraped).

Counters are labelled by ``service`` and ``version``, so a version's series stays one series for
its whole life; which version is the baseline and which the canary is a separate
``modelrail_variant_info`` gauge carrying a ``role`` label. A shadow's answers to mirrored copies
are series of their own, with ``variant="shadow"`` besides (``VARIANT_LABEL``, ``SHADOW_VARIANT``):
no client saw them, so they are never the version's traffic, even once it is the canary. Names
follow Prometheus' conventions (``promtool check metrics`` is clean): base units (seconds,
ratios), ``_total`` on counters, ``_info`` on the info gauge. Inside modelrail latency stays in
milliseconds (guardrails and ``VariantStats`` are in ms); ``latency_le`` and
``latency_bound_ms`` convert at this boundary.
The series the model server writes too (requests, errors, latency, predictions) are defined
once, in ``pipelines.serving.series``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipelines.serving.series import (
    ERRORS,
    INVOCATIONS,
    LATENCY,
    LATENCY_BUCKETS_MS,
    PREDICTIONS,
    SHADOW_COMPARISONS,
    SHADOW_HELP,
    SHADOW_MIRRORS_DROPPED,
    SHADOW_VARIANT,
    VARIANT_LABEL,
    escape,
    format_value,
)
from pipelines.serving.series import HELP as SERVED_HELP

__all__ = [
    "ALARM",
    "ERRORS",
    "HELP",
    "INVOCATIONS",
    "LABELS",
    "LABELS_CORRECT",
    "LATENCY",
    "PREDICTIONS",
    "RESTARTS",
    "SHADOW_COMPARISONS",
    "SHADOW_MIRRORS_DROPPED",
    "SHADOW_VARIANT",
    "VARIANT_INFO",
    "VARIANT_LABEL",
    "WEIGHT",
    "Sample",
    "latency_bound_ms",
    "latency_le",
    "parse",
    "render",
]
"""The router's exposition: its own series, and the served ones (``pipelines.serving.series``)."""

LABELS = "modelrail_labels_total"
LABELS_CORRECT = "modelrail_labels_correct_total"
RESTARTS = "modelrail_model_server_restarts_total"
WEIGHT = "modelrail_variant_weight_ratio"
VARIANT_INFO = "modelrail_variant_info"
"""1 per live version, labelled ``role`` = ``baseline``, ``canary`` or ``shadow``."""
ALARM = "modelrail_alarm_state"
"""1 while a guardrail alarm is in ALARM, labelled ``guardrail``."""

HELP = {
    **SERVED_HELP,
    **SHADOW_HELP,
    LABELS: ("counter", "Delayed labels joined to a prediction of this version."),
    LABELS_CORRECT: ("counter", "Joined labels that matched the predicted label."),
    RESTARTS: ("counter", "Model server restart attempts after a failed /ping or an exit."),
    WEIGHT: ("gauge", "Share of the service's traffic routed to this version, 0 to 1."),
    VARIANT_INFO: ("gauge", "Live versions and their role in the current deployment."),
    ALARM: ("gauge", "1 while the guardrail alarm is in ALARM."),
}


def latency_le(bound_ms: float) -> str:
    """The ``le`` label of a latency bucket whose upper bound is ``bound_ms`` (``+Inf`` for the overflow)."""
    return "+Inf" if math.isinf(bound_ms) else f"{bound_ms / 1000:g}"


_BOUNDS_BY_LE = {latency_le(bound): bound for bound in (*LATENCY_BUCKETS_MS, math.inf)}


def latency_bound_ms(le: str) -> float:
    """The bucket bound in ms (one of ``LATENCY_BUCKETS_MS`` or ``inf``) that an ``le`` label names.

    Matched by value, so ``0.0075`` and ``7.5e-03`` both read as 7.5 ms; a bound that is not one
    of ours means the exposition was written with other buckets, and is refused.
    """
    bound = _BOUNDS_BY_LE.get(le)
    if bound is not None:
        return bound
    try:
        seconds = float(le.replace("Inf", "inf"))
    except ValueError:
        raise ValueError(f"{LATENCY}_bucket: le={le!r} is not a number") from None
    for known in _BOUNDS_BY_LE.values():
        if math.isclose(known / 1000, seconds, rel_tol=1e-9):
            return known
    raise ValueError(
        f"{LATENCY}_bucket: le={le!r} is not one of the bucket bounds "
        f"({', '.join(_BOUNDS_BY_LE)}; pipelines.metrics.stats.LATENCY_BUCKETS_MS)"
    )


@dataclass(frozen=True)
class Sample:
    """One exposition line: metric name, labels, value."""

    name: str
    labels: Mapping[str, str]
    value: float


def render(samples: Iterable[Sample]) -> str:
    """Text exposition format 0.0.4, with HELP and TYPE once per metric family."""
    lines: list[str] = []
    announced: set[str] = set()
    for sample in samples:
        family = next((f for f in HELP if sample.name == f or sample.name.startswith(f + "_")), sample.name)
        if family not in announced and family in HELP:
            kind, text = HELP[family]
            lines += [f"# HELP {family} {text}", f"# TYPE {family} {kind}"]
            announced.add(family)
        labels = ",".join(f'{key}="{escape(value)}"' for key, value in sample.labels.items())
        head = f"{sample.name}{{{labels}}}" if labels else sample.name
        lines.append(f"{head} {format_value(sample.value)}")
    return "\n".join(lines) + "\n"


_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'\s*(?P<key>[a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"(?P<value>(?:[^"\\]|\\.)*)"\s*(?:,|$)')


def parse(text: str) -> list[Sample]:
    """Parse text exposition; raises ``ValueError`` naming the line that is not exposition."""
    samples = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ValueError(f"line {number} is not Prometheus text exposition: {raw!r}")
        labels: dict[str, str] = {}
        body = match.group("labels") or ""
        position = 0
        while position < len(body):
            label = _LABEL.match(body, position)
            if label is None:
                raise ValueError(f"line {number}: cannot read the labels {body!r}")
            labels[label.group("key")] = _unescape(label.group("value"))
            position = label.end()
        samples.append(Sample(match.group("name"), labels, _parse_value(match.group("value"), number)))
    return samples


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _parse_value(text: str, number: int) -> float:
    try:
        return float(text.replace("Inf", "inf"))
    except ValueError:
        raise ValueError(f"line {number}: {text!r} is not a number") from None
