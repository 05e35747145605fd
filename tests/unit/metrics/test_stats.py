"""Counts and histograms: what windows are made of."""

from __future__ import annotations

import pytest

from pipelines.metrics import LatencyHistogram, VariantStats


def test_a_quantile_is_interpolated_inside_its_bucket() -> None:
    histogram = LatencyHistogram((10.0, 20.0), (0, 100, 0))
    assert histogram.quantile(0.5) == pytest.approx(15.0)
    assert histogram.quantile(0.99) == pytest.approx(19.9)


def test_an_empty_histogram_has_no_quantile() -> None:
    assert LatencyHistogram().quantile(0.99) is None


def test_only_buckets_wholly_above_a_threshold_count_as_slower() -> None:
    histogram = LatencyHistogram((10.0, 20.0, 30.0), (5, 6, 7, 8))
    assert histogram.count_above(20.0) == 7 + 8
    assert histogram.count_above(25.0) == 8
    assert histogram.bound_at_or_above(25.0) == 30.0


def test_histograms_merge_and_subtract_bucket_by_bucket() -> None:
    a = LatencyHistogram((10.0,), (1, 2))
    b = LatencyHistogram((10.0,), (3, 4))
    assert a.merged(b).counts == (4, 6)
    assert a.merged(b).minus(a).counts == (3, 4)
    with pytest.raises(ValueError, match="different bucket bounds"):
        a.merged(LatencyHistogram((5.0,), (0, 0)))


def test_bucketing_raw_latencies_puts_a_value_on_a_bound_in_that_bucket() -> None:
    histogram = LatencyHistogram.of([10.0, 10.5, 99.0], bounds=(10.0, 20.0))
    assert histogram.counts == (1, 1, 1)


def test_merging_an_empty_side_keeps_the_other_sides_histogram() -> None:
    stats = VariantStats.from_histogram(
        invocations=3,
        errors_4xx=0,
        errors_5xx=1,
        latency=LatencyHistogram.of([5.0, 50.0]),
        predictions=(0,) * 10,
        labelled=0,
        correct=0,
    )
    merged = VariantStats().merged(stats)
    assert merged.latency_histogram == stats.latency_histogram
    assert merged.error_rate == pytest.approx(1 / 3)


def test_rates_are_none_without_data() -> None:
    assert VariantStats().error_rate is None
    assert VariantStats().accuracy is None


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="correct"):
        VariantStats(labelled=1, correct=2)
    with pytest.raises(ValueError, match="10 bins"):
        VariantStats(prediction_histogram=(1, 2))
