"""Replayed telemetry: JSON lines in, the windows the sandbox router would have counted out.

Each test writes a small request log and reads it with ``read_telemetry``; the windows are
checked against what the serving side's own definitions give for the same requests
(``LatencyHistogram.of``, ``served_bin``, ``normalise_label``), and every malformed line against
the message that names its file, its line, its key, the bad value and what is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pipelines.canary import telemetry
from pipelines.canary.telemetry import (
    Predictions,
    ReplayedRun,
    TelemetryError,
    parse_predictions,
    read_telemetry,
)
from pipelines.contract.load import load_contract
from pipelines.metrics.stats import LatencyHistogram
from pipelines.serving.metrics import served_bin
from pipelines.serving.model import REGRESSION

CLASSIFIER = Predictions("classification", classes=("<=50K", ">50K"))
REGRESSOR = Predictions("regression", tolerance=5.0)


def lines(path: Path, *records: dict[str, Any] | str) -> Path:
    """A JSON-lines file: dicts as JSON, strings as they are (for malformed lines)."""
    text = "".join((record if isinstance(record, str) else json.dumps(record)) + "\n" for record in records)
    path.write_text(text, encoding="utf-8")
    return path


def request(t: float, **fields: Any) -> dict[str, Any]:
    return {"t": t, "latency_ms": 10.0, "status": 200, **fields}


def read(
    tmp_path: Path,
    baseline: Sequence[dict[str, Any] | str],
    canary: Sequence[dict[str, Any] | str],
    predictions: Predictions = CLASSIFIER,
    interval: float = 60.0,
) -> list[ReplayedRun]:
    return read_telemetry(
        lines(tmp_path / "baseline.jsonl", *baseline),
        lines(tmp_path / "canary.jsonl", *canary),
        predictions,
        interval,
    )


def refusal(
    tmp_path: Path, *records: dict[str, Any] | str, predictions: Predictions = CLASSIFIER
) -> list[str]:
    """The details of the error for a canary file of ``records`` (the baseline is one good request)."""
    with pytest.raises(TelemetryError) as refused:
        read(tmp_path, [request(0.0)], list(records), predictions)
    return refused.value.details


def test_requests_count_in_the_interval_of_their_t_with_the_servers_latency_buckets(tmp_path: Path) -> None:
    canary = [
        request(0.0, latency_ms=12.0),
        request(59.9, latency_ms=480.0, status=503),
        request(30.0, latency_ms=None, status=504),  # no answer: an invocation and a 5xx, no latency
        request(60.0, latency_ms=75.0, status=404),
        request(61.0, latency_ms=3.5),
    ]
    (run,) = read(tmp_path, [request(1.0)], canary)
    first, second = (window.canary for window in run.windows)
    assert first is not None and second is not None
    assert (first.invocations, first.errors_4xx, first.errors_5xx) == (3, 0, 2)
    assert (second.invocations, second.errors_4xx, second.errors_5xx) == (2, 1, 0)
    assert first.latency_histogram == LatencyHistogram.of(
        [12.0]
    )  # a 5xx has no model latency, as at the router
    assert second.latency_histogram == LatencyHistogram.of([75.0, 3.5])
    assert first.latency_p99_ms == LatencyHistogram.of([12.0]).quantile(0.99)
    assert [(window.start, window.end) for window in run.windows] == [(0.0, 60.0), (60.0, 120.0)]
    assert run.requests == {"baseline": 1, "canary": 5}


def test_classes_are_binned_by_their_position_in_the_declared_classes(tmp_path: Path) -> None:
    predictions = Predictions("classification", classes=tuple("abcdefghijkl"))
    canary = [request(0.0, prediction=name) for name in "bakl"]
    (run,) = read(tmp_path, [request(0.0)], canary, predictions)
    expected = [0] * 10
    for name in "bakl":
        expected[served_bin({"label": name}, "multiclass_classification", predictions.classes or (), ())] += 1
    assert run.windows[0].canary is not None
    assert list(run.windows[0].canary.prediction_histogram) == expected == [1, 1] + [0] * 7 + [2]


def test_undeclared_classes_are_binned_in_sorted_order_whatever_order_they_appear_in(tmp_path: Path) -> None:
    undeclared = Predictions("classification")
    (run,) = read(tmp_path, [request(0.0, prediction="zebra")], [request(0.0, prediction="ant")], undeclared)
    baseline, canary = run.windows[0].baseline, run.windows[0].canary
    assert canary is not None
    assert baseline.prediction_histogram[:2] == (0, 1)
    assert canary.prediction_histogram[:2] == (1, 0)


def test_regression_predictions_are_binned_by_the_declared_edges_as_served(tmp_path: Path) -> None:
    edges = tuple(float(edge) for edge in range(10, 100, 10))
    predictions = Predictions("regression", bins=edges, tolerance=5.0)
    values = [-3.0, 10.0, 10.5, 55.0, 90.0, 1e6]
    (run,) = read(tmp_path, [request(0.0)], [request(0.0, prediction=v) for v in values], predictions)
    expected = [0] * 10
    for value in values:
        expected[served_bin({"prediction": value}, REGRESSION, (), edges)] += 1
    assert run.windows[0].canary is not None
    assert list(run.windows[0].canary.prediction_histogram) == expected


def test_without_declared_edges_each_run_is_binned_by_its_own_baselines_deciles(tmp_path: Path) -> None:
    small = [request(0.0, run="small", prediction=float(v)) for v in range(100)]
    large = [request(0.0, run="large", prediction=float(v) * 1000) for v in range(100)]
    runs = read(tmp_path, small + large, [request(0.0, run="small", prediction=50.0)], REGRESSOR)
    for run in runs:
        assert list(run.windows[0].baseline.prediction_histogram) == [10] * 10, run.run
    canary = runs[0].windows[0].canary
    assert canary is not None and canary.prediction_histogram[5] == 1


def test_a_label_counts_in_the_interval_it_came_back_in_on_the_side_that_served_it(tmp_path: Path) -> None:
    canary = [
        request(10.0, prediction=">50K", label=">50K.", label_t=70.0),  # Adult's test file writes ">50K."
        request(20.0, prediction=">50K", label="<=50K", label_t=130.0),
        request(30.0, prediction="<=50K", label="<=50K"),  # label_t null: it came with the request
        request(40.0, prediction="<=50K", label=None),
    ]
    (run,) = read(tmp_path, [request(0.0)], canary)
    counted = [(w.canary.labelled, w.canary.correct) for w in run.windows if w.canary is not None]
    assert counted == [(1, 1), (1, 1), (1, 0)]
    assert all(window.baseline.labelled == 0 for window in run.windows)


def test_a_regression_label_is_correct_within_the_tolerance(tmp_path: Path) -> None:
    canary = [request(0.0, prediction=100.0, label=label) for label in (95.0, 105.0, 94.9, 120)]
    (run,) = read(tmp_path, [request(0.0)], canary, REGRESSOR)
    assert run.windows[0].canary is not None
    assert (run.windows[0].canary.labelled, run.windows[0].canary.correct) == (4, 2)


def test_a_failed_request_served_nothing_so_its_prediction_and_label_do_not_count(tmp_path: Path) -> None:
    (run,) = read(tmp_path, [request(0.0)], [request(0.0, status=500, prediction=">50K", label=">50K")])
    canary = run.windows[0].canary
    assert canary is not None
    assert (canary.invocations, canary.errors_5xx, canary.predictions, canary.labelled) == (1, 1, 0, 0)


def test_runs_are_kept_apart_in_order_of_first_appearance_and_span_their_own_intervals(
    tmp_path: Path,
) -> None:
    baseline = [request(0.0, run="b"), request(0.0), request(200.0, run="b")]
    canary = [request(5.0, run="c"), request(0.0, run="b", prediction="<=50K", label="<=50K", label_t=290.0)]
    runs = read(tmp_path, baseline, canary)
    assert [(run.run, len(run.windows)) for run in runs] == [("b", 5), ("0", 1), ("c", 1)]
    assert [run.requests for run in runs] == [
        {"baseline": 2, "canary": 1},
        {"baseline": 1, "canary": 0},
        {"baseline": 0, "canary": 1},
    ]
    only_canary = runs[2].windows[0]
    assert only_canary.baseline.invocations == 0 and only_canary.canary is not None
    assert only_canary.canary.invocations == 1
    quiet = runs[1].windows[0].canary
    assert quiet is not None and quiet.invocations == 0  # no canary traffic: an empty side, not None


def test_blank_lines_and_a_byte_order_mark_are_not_requests(tmp_path: Path) -> None:
    canary = tmp_path / "canary.jsonl"
    canary.write_bytes(
        b"\xef\xbb\xbf" + json.dumps(request(0.0)).encode() + b"\n\n   \n" + json.dumps(request(1.0)).encode()
    )
    (run,) = read_telemetry(lines(tmp_path / "baseline.jsonl"), canary, CLASSIFIER, 60.0)
    assert run.requests == {"baseline": 0, "canary": 2}


@pytest.mark.parametrize(
    ("record", "issue"),
    [
        (
            {"t": 1, "latency_ms": 1, "status": 200, "lable": "a"},
            'lable = "a": unknown key; allowed keys: run, t,',
        ),
        ({"latency_ms": 1, "status": 200}, "t = null: required key is missing"),
        (request(-1.0), "t = -1.0: a finite number of seconds since the rollout started, ≥ 0"),
        ('{"t": NaN, "latency_ms": 1, "status": 200}', "t = NaN: a finite number of seconds"),
        (
            '{"t": 1, "latency_ms": Infinity, "status": 200}',
            "latency_ms = Infinity: a finite number of milliseconds",
        ),
        (
            '{"t": 1, "latency_ms": 1e999, "status": 200}',
            "latency_ms = Infinity: a finite number of milliseconds",
        ),
        ({"t": 1, "status": 200}, "latency_ms = null: required key is missing"),
        (request(1.0, latency_ms=-2), "latency_ms = -2: a finite number of milliseconds ≥ 0"),
        (request(1.0, status=700), "status = 700: an HTTP status: a whole number from 100 to 599"),
        (request(1.0, status=99), "status = 99: an HTTP status"),
        (request(1.0, status=True), "status = true: an HTTP status"),
        (request(1.0, status="200"), 'status = "200": an HTTP status'),
        (request(1.0, run=3), "run = 3: text of 1 to 128 characters; quote a number"),
        (
            request(1.0, prediction=1),
            "prediction = 1: a class name as text (the service is a classification)",
        ),
        (request(1.0, prediction=">50K", label=1), "label = 1: a class name as text"),
        (request(1.0, prediction="maybe"), 'prediction = "maybe": one of the classes: <=50K, >50K'),
        (
            request(5.0, prediction=">50K", label=">50K", label_t=4.0),
            "label_t = 4.0: a label comes back after",
        ),
        (request(5.0, label_t=9.0), "label_t = 9.0: null when the request has no label"),
        (request(600_000.0), "t = 600000.0: below 600000: at most 10,000 intervals of 60 s per run"),
        ('{"t": 1, "latency_ms": 1, "status": 200, "t": 2}', "t = 2: each key once per line"),
        ("[1, 2]", "<line> = [1, 2]: one JSON object per line, a request"),
        ('{"t": 1,', "<line> = "),
        ("[" * 3000 + "]" * 3000, "<line> = "),
    ],
)
def test_a_malformed_line_is_named_with_its_key_its_value_and_what_is_allowed(
    tmp_path: Path, record: dict[str, Any] | str, issue: str
) -> None:
    details = refusal(tmp_path, request(0.0), record)
    assert len(details) == 1
    assert details[0].startswith(f"{tmp_path / 'canary.jsonl'}:2: {issue}"), details[0]


@pytest.mark.parametrize(
    ("record", "issue"),
    [
        (
            request(1.0, prediction="high"),
            'prediction = "high": a finite number (the service is a regression)',
        ),
        (request(1.0, prediction=2.0, label="2"), 'label = "2": a finite number'),
        (request(1.0, prediction=False), "prediction = false: a finite number"),
    ],
)
def test_a_regression_takes_numbers_only(tmp_path: Path, record: dict[str, Any], issue: str) -> None:
    (detail,) = refusal(tmp_path, record, predictions=REGRESSOR)
    assert detail.startswith(f"{tmp_path / 'canary.jsonl'}:1: {issue}"), detail


def test_every_malformed_line_is_reported_at_once_up_to_a_bound(tmp_path: Path) -> None:
    details = refusal(tmp_path, *[request(1.0, status=0)] * (telemetry.MAX_ISSUES + 5))
    assert len(details) == telemetry.MAX_ISSUES
    assert details[-1].startswith(f"{tmp_path / 'canary.jsonl'}:{telemetry.MAX_ISSUES}: status = 0")


def test_the_message_names_the_first_malformed_line(tmp_path: Path) -> None:
    with pytest.raises(
        TelemetryError, match=r"1 malformed line\(s\) in the telemetry; the first: .*baseline.jsonl:2: "
    ):
        read(tmp_path, [request(0.0), request(-5.0)], [request(0.0)])


def test_a_line_too_long_to_be_a_request_stops_the_reading_there(tmp_path: Path) -> None:
    huge = json.dumps(request(1.0, run="x" * telemetry.MAX_LINE_BYTES))
    (detail,) = refusal(tmp_path, request(0.0), huge, request(2.0, status=0))
    assert detail.startswith(f"{tmp_path / 'canary.jsonl'}:2: <line> = ")
    assert detail.endswith('": a line of at most 4096 bytes')


def test_text_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    canary = tmp_path / "canary.jsonl"
    canary.write_bytes(b'{"t": 1, "latency_ms": 1, "status": 200, "run": "\xff"}\n')
    with pytest.raises(TelemetryError) as refused:
        read_telemetry(lines(tmp_path / "baseline.jsonl"), canary, CLASSIFIER, 60.0)
    assert "canary.jsonl:1: <line> = " in refused.value.details[0]
    assert "UTF-8 text (invalid start byte at byte 49)" in refused.value.details[0]


def test_a_file_too_large_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemetry, "MAX_FILE_BYTES", 100)
    with pytest.raises(
        TelemetryError, match=r"canary telemetry .*canary.jsonl is 1[0-9]{2} bytes; at most 100 per file"
    ):
        read(tmp_path, [request(0.0)], [request(0.0), request(1.0), request(2.0)])


def test_too_many_requests_runs_or_intervals_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemetry, "MAX_REQUESTS", 2)
    with pytest.raises(TelemetryError, match=r"canary.jsonl:3: more than 2 requests in one file"):
        read(tmp_path, [request(0.0)], [request(0.0)] * 3)
    monkeypatch.setattr(telemetry, "MAX_REQUESTS", 100)
    monkeypatch.setattr(telemetry, "MAX_RUNS", 2)
    assert refusal(tmp_path, request(0.0, run="1"), request(0.0, run="2")) == [
        f'{tmp_path / "canary.jsonl"}:2: run = "2": at most 2 runs in one replay'
    ]
    monkeypatch.setattr(telemetry, "MAX_TOTAL_INTERVALS", 5)
    with pytest.raises(TelemetryError, match=r"the runs span 6 intervals of 60 s in all; at most 5"):
        read(tmp_path, [request(0.0), request(240.0, run="1")], [])


def test_telemetry_without_requests_or_without_a_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TelemetryError, match=r"no requests in .* or .*: nothing to judge"):
        read(tmp_path, [], ["", "  "])
    with pytest.raises(TelemetryError, match=r"baseline telemetry .*missing.jsonl cannot be read"):
        read_telemetry(
            tmp_path / "missing.jsonl", lines(tmp_path / "c.jsonl", request(0.0)), CLASSIFIER, 60.0
        )


def test_progress_is_told_every_byte_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(telemetry, "PROGRESS_EVERY", 100)
    baseline = lines(tmp_path / "baseline.jsonl", *[request(float(t)) for t in range(20)])
    canary = lines(tmp_path / "canary.jsonl", *[request(float(t)) for t in range(7)])
    told: list[int] = []
    read_telemetry(baseline, canary, CLASSIFIER, 60.0, on_progress=told.append)
    assert sum(told) == baseline.stat().st_size + canary.stat().st_size
    assert len([n for n in told if n]) > 2


def test_a_services_contract_says_how_its_predictions_are_read() -> None:
    assert Predictions.of_contract(load_contract("adult-income")) == CLASSIFIER
    assert Predictions.of_contract(load_contract("diabetes")) == Predictions("regression", tolerance=60.0)


def test_a_policy_files_prediction_section_is_checked_whole() -> None:
    assert parse_predictions({"kind": "classification"}, "p.yaml") == (Predictions("classification"), [])
    edges = [float(edge) for edge in range(1, 10)]
    assert parse_predictions({"kind": "regression", "tolerance": 2, "bins": edges}, "p.yaml") == (
        Predictions("regression", bins=tuple(edges), tolerance=2.0),
        [],
    )
    predictions, issues = parse_predictions(
        {"kind": "regression", "classes": ["a"], "bins": [3, 2], "tolerance": 0, "extra": 1}, "p.yaml"
    )
    assert predictions is None
    assert [str(issue) for issue in issues] == [
        "p.yaml: prediction.extra = 1: unknown key; allowed keys: bins, classes, kind, tolerance",
        'p.yaml: prediction.classes = ["a"]: only a classification has classes',
        "p.yaml: prediction.tolerance = 0: required for a regression: a number above 0 (the contract's liveTolerance)",
        "p.yaml: prediction.bins = [3, 2]: 9 ascending numbers (the inner edges of the histogram)",
    ]
    _, issues = parse_predictions({"kind": "classification", "classes": ["a", "a"], "tolerance": 1}, "p.yaml")
    assert [issue.path for issue in issues] == ["prediction.classes", "prediction.tolerance"]
    _, issues = parse_predictions(None, "p.yaml")
    assert [str(issue) for issue in issues] == [
        "p.yaml: prediction = null: required: a mapping with `kind` (classification or regression) and its fields"
    ]
