"""The text exposition the router writes and the local source (and Prometheus) read."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pipelines.metrics import exposition as expo
from pipelines.sandbox.metrics import MetricsBook
from pipelines.serving.series import LATENCY_BUCKETS_MS

PROMTOOL = shutil.which("promtool")
OLD, NEW = "a" * 64, "b" * 64


def test_exposition_round_trips_labels_with_quotes_and_backslashes() -> None:
    samples = [
        expo.Sample(expo.INVOCATIONS, {"service": 'we"ird\\name', "version": "v1"}, 12),
        expo.Sample(f"{expo.LATENCY}_bucket", {"service": "s", "version": "v1", "le": "+Inf"}, 3),
        expo.Sample(f"{expo.LATENCY}_sum", {"service": "s", "version": "v1"}, 1.5),
    ]
    text = expo.render(samples)
    assert "# TYPE modelrail_invocations_total counter" in text
    assert text.count("# TYPE modelrail_model_latency_seconds histogram") == 1
    parsed = expo.parse(text)
    assert [(s.name, dict(s.labels), s.value) for s in parsed] == [
        (s.name, dict(s.labels), float(s.value)) for s in samples
    ]


def test_parsing_accepts_timestamps_and_unlabelled_samples() -> None:
    parsed = expo.parse('up 1\nmodelrail_alarm_state{service="s",guardrail="5xx-rate"} 1 1700000000000\n')
    assert parsed[0].name == "up" and parsed[0].labels == {}
    assert parsed[1].labels["guardrail"] == "5xx-rate"


def test_a_line_that_is_not_exposition_is_named() -> None:
    with pytest.raises(ValueError, match="line 2"):
        expo.parse("up 1\nthis is not { a metric\n")


def test_latency_buckets_are_written_in_seconds_and_read_back_as_the_same_bounds_in_ms() -> None:
    assert expo.latency_le(7.5) == "0.0075" and expo.latency_le(10000) == "10"
    assert expo.latency_le(float("inf")) == "+Inf"
    for bound in (*LATENCY_BUCKETS_MS, float("inf")):
        assert expo.latency_bound_ms(expo.latency_le(bound)) == bound
    assert expo.latency_bound_ms("7.5e-03") == 7.5  # another writer's spelling of the same bound


def test_a_latency_bound_that_is_not_one_of_ours_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"le='0\.0042' is not one of the bucket bounds \(0\.001, "):
        expo.latency_bound_ms("0.0042")
    with pytest.raises(ValueError, match="le='soon' is not a number"):
        expo.latency_bound_ms("soon")


def test_the_latency_sum_is_in_seconds() -> None:
    book = MetricsBook()
    book.invocation("svc", OLD, 200, 250.0, [1])
    book.invocation("svc", OLD, 200, 50.0, [1])
    (total,) = (s.value for s in expo.parse(book.exposition()) if s.name == f"{expo.LATENCY}_sum")
    assert total == pytest.approx(0.3)


def _realistic_exposition() -> str:
    """A router mid-canary and one with a shadow: traffic, errors, labels, a restart, an alarm, the
    shadow's answers (``variant="shadow"``, one failed), comparisons and a dropped copy."""
    book = MetricsBook()
    book.set_service("svc", {OLD: "baseline", NEW: "canary"}, {OLD: 0.9, NEW: 0.1}, {"p99-latency": "slow"})
    book.set_service("other", {OLD: "baseline"}, {OLD: 1.0}, {})
    book.set_service("shadowed", {OLD: "baseline", NEW: "shadow"}, {OLD: 1.0}, {})
    book.comparison("shadowed", NEW, paired=3, agreed=2)
    book.mirror_dropped("shadowed", NEW)
    book.invocation("shadowed", OLD, 200, 12.0, [2])
    book.invocation("shadowed", NEW, 200, 250.0, [7], shadow=True)
    book.invocation("shadowed", NEW, 502, None, [], shadow=True)
    for latency in (0.4, 7.5, 42.0, 480.0, 12_000.0):
        book.invocation("svc", OLD, 200, latency, [2])
    book.invocation("svc", NEW, 404, 3.0, [])
    book.invocation("svc", NEW, 502, None, [])
    book.label("svc", OLD, correct=True)
    book.restart("svc", NEW)
    return book.exposition()


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
def test_promtool_finds_the_router_exposition_clean() -> None:
    assert PROMTOOL is not None
    text = _realistic_exposition()
    assert all(family in text for family in expo.HELP)  # every family is checked
    assert f'{expo.INVOCATIONS}{{service="shadowed",version="{NEW}",variant="shadow"}} 2' in text
    assert f'{expo.LATENCY}_count{{service="shadowed",version="{NEW}",variant="shadow"}} 1' in text
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30, check=False
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, "")


@pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)")
def test_promtool_would_catch_a_latency_in_milliseconds() -> None:
    """The check above can fail: the old name is exactly what promtool's linter rejects."""
    assert PROMTOOL is not None
    text = _realistic_exposition().replace(expo.LATENCY, "modelrail_model_latency_ms")
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode != 0 and "abbreviated units" in checked.stdout + checked.stderr
