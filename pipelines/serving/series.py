"""The series a model version's traffic is counted in: one definition for every writer and reader.

The model server (``pipelines.serving.metrics``) and the sandbox router write them, the local
source and PromQL read them (``pipelines.metrics.exposition``, ``pipelines.metrics.stats``). They
live here because the serving code ships in every package and imports nothing outside
``pipelines.serving``; this module imports nothing at all, so the controller's side pays nothing
for it either.
"""

from __future__ import annotations

import math

INVOCATIONS = "modelrail_invocations_total"
ERRORS = "modelrail_invocation_errors_total"
LATENCY = "modelrail_model_latency_seconds"
PREDICTIONS = "modelrail_predictions_total"
HELP = {
    INVOCATIONS: ("counter", "Requests routed to a version, including the ones that failed."),
    ERRORS: ("counter", "Requests that failed, by status class (5xx includes unreachable servers)."),
    LATENCY: (
        "histogram",
        "Model latency in seconds: the request's time in the model server (via the sandbox router).",
    ),
    PREDICTIONS: (
        "counter",
        "Predictions by bin of the served prediction (probability, class or decile of the label).",
    ),
}

SHADOW_COMPARISONS = "modelrail_shadow_comparisons_total"
"""Labelled ``result`` = ``agreed`` or ``disagreed``: one per prediction of a mirrored request that
both production and the shadow answered, under the shadow's ``version``."""
SHADOW_MIRRORS_DROPPED = "modelrail_shadow_mirrors_dropped_total"
"""Production requests chosen for mirroring that the shadow's queue had no room for."""
SHADOW_HELP = {
    SHADOW_COMPARISONS: (
        "counter",
        "Predictions of the shadow compared with production's answer to the same mirrored request.",
    ),
    SHADOW_MIRRORS_DROPPED: (
        "counter",
        "Production requests not mirrored to the shadow because its queue was full (it was too slow).",
    ),
}
"""The router's shadow series: only a router mirrors, so the model server never writes them; they
are defined here with the others so that every reader takes the names from one place."""

VARIANT_LABEL = "variant"
"""The label that sets a shadow's answers to mirrored copies apart from its version's own traffic,
as CloudWatch sets them apart by ``VariantName``: the router writes the requests, errors, latency
and predictions of the copies with ``variant="shadow"``. The series of traffic a client was served
have no ``variant`` label, as the model server writes them, so ``variant!="shadow"`` selects them.
A candidate that is first a shadow and then the canary keeps the two apart this way: copies no user
saw never count as canary traffic."""
SHADOW_VARIANT = "shadow"
"""The ``variant`` of a shadow's answers: SageMaker's name for the shadow variant
(``infra.naming.SHADOW_VARIANT_NAME``; this module imports nothing, so the name is repeated)."""

PREDICTION_BINS = 10
"""Bins of the prediction histogram, for every task (``pipelines.serving.metrics.served_bin`` says
which prediction goes where): a binary classifier's positive-class probability in fixed bins [0, 0.1),
[0.1, 0.2), …, [0.9, 1.0]; a multiclass one's predicted class by its position; a regressor's
number between the training labels' deciles."""
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7.5, 10, 15, 20, 25, 30, 40, 50, 60, 75, 90, 100, 120, 140, 160, 180, 200,
    250, 300, 350, 400, 500, 600, 750, 1000, 1500, 2000, 3000, 5000, 10000,
)  # fmt: skip
"""Upper bounds of the model-latency histogram buckets, in milliseconds (``+Inf`` is implied).

The one definition of the buckets: the router counts into them, and its exposition writes them
in seconds, Prometheus' base unit (``pipelines.metrics.exposition.latency_le``).

Dense between 50 and 500 ms, where guardrails live, so a p99 read from the histogram is within
a few percent of the exact one.
"""


def escape(value: str) -> str:
    """A label value as the text exposition format writes it."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value: float) -> str:
    """A sample value as the text exposition format writes it (whole numbers without a point)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))
