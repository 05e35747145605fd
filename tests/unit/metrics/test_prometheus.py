"""The text exposition the router writes and the local source reads."""

from __future__ import annotations

import pytest

from pipelines.metrics import prometheus as prom


def test_exposition_round_trips_labels_with_quotes_and_backslashes() -> None:
    samples = [
        prom.Sample(prom.INVOCATIONS, {"service": 'we"ird\\name', "version": "v1"}, 12),
        prom.Sample(f"{prom.LATENCY}_bucket", {"service": "s", "version": "v1", "le": "+Inf"}, 3),
        prom.Sample(f"{prom.LATENCY}_sum", {"service": "s", "version": "v1"}, 1.5),
    ]
    text = prom.render(samples)
    assert "# TYPE modelrail_invocations_total counter" in text
    assert text.count("# TYPE modelrail_model_latency_ms histogram") == 1
    parsed = prom.parse(text)
    assert [(s.name, dict(s.labels), s.value) for s in parsed] == [
        (s.name, dict(s.labels), float(s.value)) for s in samples
    ]


def test_parsing_accepts_timestamps_and_unlabelled_samples() -> None:
    parsed = prom.parse('up 1\nmodelrail_alarm_state{service="s",guardrail="5xx-rate"} 1 1700000000000\n')
    assert parsed[0].name == "up" and parsed[0].labels == {}
    assert parsed[1].labels["guardrail"] == "5xx-rate"


def test_a_line_that_is_not_exposition_is_named() -> None:
    with pytest.raises(ValueError, match="line 2"):
        prom.parse("up 1\nthis is not { a metric\n")
