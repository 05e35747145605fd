"""The slow-lookup step: concurrent requests queue for its one connection."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from pipelines.serving.transformers import SlowLookup


def test_concurrent_lookups_are_served_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    step = SlowLookup(ms_per_call=20)
    inside = 0
    most_inside = 0
    guard = threading.Lock()
    original_sleep = __import__("time").sleep

    def counting_sleep(seconds: float) -> None:
        nonlocal inside, most_inside
        with guard:
            inside += 1
            most_inside = max(most_inside, inside)
        original_sleep(seconds)
        with guard:
            inside -= 1

    monkeypatch.setattr("pipelines.serving.transformers.time.sleep", counting_sleep)
    threads = [threading.Thread(target=step.transform, args=(np.zeros((1, 3)),)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most_inside == 1


def test_rows_pass_through_unchanged_and_fit_is_free() -> None:
    rows = np.arange(6).reshape(2, 3)
    step = SlowLookup(ms_per_call=0)
    assert step.fit(rows) is step
    assert (step.transform(rows) == rows).all()
