"""Pipeline steps that models may contain beyond scikit-learn's own.

They live in the serving package because a model can only be loaded where its classes can
be imported, and the serving package is what travels with the model. Each class here is on
the loader's list of trusted types (``pipelines.serving.model.TRUSTED_TYPES``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin

_LOOKUP_CONNECTION = threading.Lock()
"""The one connection every ``SlowLookup`` in a process shares (not part of the model's state)."""


class SlowLookup(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Waits ``ms_per_call`` milliseconds per prediction call, then passes the rows through unchanged.

    It stands for an online feature lookup: one round trip per request, through a single shared
    connection, so concurrent requests queue for it. A handful of concurrent requests (an
    offline latency test) barely notice; sustained live traffic near the connection's capacity
    queues up and the tail latency explodes. The demo trains a model with this step to get a
    real model that passes its offline gates and is slower live than its predecessor. The delay
    applies at prediction time only: fitting passes the training rows straight through.
    """

    def __init__(self, ms_per_call: float = 0.0) -> None:
        self.ms_per_call = ms_per_call

    def fit(self, x: Any, y: Any = None) -> SlowLookup:
        return self

    def fit_transform(self, x: Any, y: Any = None, **fit_params: Any) -> Any:
        return x

    def transform(self, x: Any) -> Any:
        if self.ms_per_call > 0:
            with _LOOKUP_CONNECTION:
                time.sleep(self.ms_per_call / 1000.0)
        return x
