"""PrometheusMetricsSource against a fake Prometheus HTTP API on loopback: the queries it sends,
how answers become a window, and its errors. The real server is in
tests/integration/test_prometheus_source.py."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from pipelines.dependencies import DependencyUnavailableError
from pipelines.metrics.exposition import latency_le
from pipelines.metrics.promql import AmbiguousBaselineError, PrometheusMetricsSource, PromQLError
from pipelines.serving.series import LATENCY_BUCKETS_MS

OLD, NEW = "a" * 64, "b" * 64
BOUNDS = (*LATENCY_BUCKETS_MS, float("inf"))
Answer = Callable[[str, float], tuple[int, dict[str, Any]]]
"""(query, time) -> (HTTP status, JSON body)."""


def vector(*series: tuple[dict[str, str], float | str]) -> tuple[int, dict[str, Any]]:
    result = [{"metric": labels, "value": [0, str(value)]} for labels, value in series]
    return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}


class FakePrometheus:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.queries: list[tuple[str, float]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = {key: values[0] for key, values in parse_qs(parts.query).items()}
                assert parts.path == "/api/v1/query"
                fake.queries.append((params["query"], float(params["time"])))
                status, body = fake.answer(params["query"], float(params["time"]))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def serve() -> Iterator[Callable[[Answer], FakePrometheus]]:
    started: list[FakePrometheus] = []

    def start(answer: Answer) -> FakePrometheus:
        fake = FakePrometheus(answer)
        threading.Thread(target=fake.server.serve_forever, daemon=True).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.server.shutdown()
        fake.server.server_close()


def mid_canary(query: str, at: float) -> tuple[int, dict[str, Any]]:
    """A canary twice as slow, with more 5xx, and extrapolated (non-whole) counts."""
    if query.startswith("histogram_quantile(0.99"):
        return vector(({"version": OLD}, 0.0495), ({"version": NEW}, 0.19))
    if query.startswith("histogram_quantile(0.5"):
        return vector(({"version": OLD}, 0.02), ({"version": NEW}, "NaN"))
    if "modelrail_variant_info" in query:
        return vector(({"version": OLD, "role": "baseline"}, 1), ({"version": NEW, "role": "canary"}, 1))
    if "modelrail_invocations_total" in query:
        return vector(({"version": OLD}, 905.4), ({"version": NEW}, 101.6))
    if "modelrail_invocation_errors_total" in query:
        return vector(
            ({"version": OLD, "code_class": "5xx"}, 1.02),
            ({"version": NEW, "code_class": "5xx"}, 20.5),
            ({"version": NEW, "code_class": "4xx"}, 3.49),
        )
    if "modelrail_model_latency_seconds_bucket" in query:  # old: all ≤ 50 ms; new: 10 ≤ 50 ms, the rest ≤ 200
        return vector(
            *(({"version": OLD, "le": latency_le(b)}, 0.0 if b < 50 else 904.6) for b in BOUNDS),
            *(({"version": NEW, "le": latency_le(b)}, 0.0 if b < 50 else 10.2 if b < 200 else 81.0) for b in BOUNDS),
        )  # fmt: skip
    if "modelrail_predictions_total" in query:
        return vector(({"version": OLD, "bin": "2"}, 904.6), ({"version": NEW, "bin": "9"}, 81.0))
    if "modelrail_labels_total" in query:
        return vector(({"version": NEW}, 10.4))
    if "modelrail_labels_correct_total" in query:
        return vector(({"version": NEW}, 10.6))  # rounds above the labels: capped
    return vector()


def test_a_window_counts_each_version_by_promql_over_the_windows_length_at_its_end(
    serve: Callable[[Answer], FakePrometheus],
) -> None:
    fake = serve(mid_canary)

    window = PrometheusMetricsSource(fake.url).window("svc", 1000.0, 1060.5, rollout_start=900.0)

    assert window.baseline.version == OLD and window.canary is not None and window.canary.version == NEW
    assert (window.baseline.invocations, window.baseline.errors_5xx) == (905, 1)
    assert (window.canary.invocations, window.canary.errors_5xx, window.canary.errors_4xx) == (102, 20, 3)
    assert window.canary.latency_histogram is not None
    assert window.canary.latency_histogram.count_above(50.0) == 71  # 81 - 10 in (50 ms, 200 ms]
    assert window.canary.latency_p99_ms == pytest.approx(190.0)  # histogram_quantile, in ms
    assert window.canary.latency_p50_ms is None  # NaN: no quantile
    assert window.baseline.latency_p50_ms == pytest.approx(20.0)
    assert window.canary.prediction_histogram[9] == 81
    assert (window.canary.labelled, window.canary.correct) == (10, 10)
    queries = [query for query, _ in fake.queries]
    selector = '{service="svc",variant!="shadow"}[60500ms]'
    assert f"sum by (version, code_class) (increase(modelrail_invocation_errors_total{selector}))" in queries
    assert f"sum by (version, le) (increase(modelrail_model_latency_seconds_bucket{selector}))" in queries
    p99 = f"histogram_quantile(0.99, sum by (version, le) (rate(modelrail_model_latency_seconds_bucket{selector})))"
    assert p99 in queries
    assert {at for query, at in fake.queries if "variant_info" not in query} == {1060.5}


def test_when_the_canary_is_gone_by_the_end_its_role_comes_from_the_start(
    serve: Callable[[Answer], FakePrometheus],
) -> None:
    def rolled_back(query: str, at: float) -> tuple[int, dict[str, Any]]:
        if "modelrail_variant_info" in query:
            roles = [({"version": OLD, "role": "baseline"}, 1)]
            return vector(*roles, ({"version": NEW, "role": "canary"}, 1)) if at == 1000.0 else vector(*roles)
        return mid_canary(query, at)

    window = PrometheusMetricsSource(serve(rolled_back).url).window("svc", 1000.0, 1060.0)
    assert window.canary is not None and (window.canary.version, window.canary.invocations) == (NEW, 102)


def test_outside_a_deployment_there_is_no_canary(serve: Callable[[Answer], FakePrometheus]) -> None:
    def alone(query: str, at: float) -> tuple[int, dict[str, Any]]:
        if "modelrail_variant_info" in query:
            return vector(({"version": OLD, "role": "baseline"}, 1))
        return mid_canary(query, at)

    window = PrometheusMetricsSource(serve(alone).url).window("svc", 1000.0, 1060.0)
    assert window.canary is None and window.baseline.invocations == 905


def scraped_servers(query: str, at: float) -> tuple[int, dict[str, Any]]:
    """Model servers scraped directly: the router's counters, but no variant_info."""
    return vector() if "modelrail_variant_info" in query else mid_canary(query, at)


def test_without_variant_info_the_canary_is_the_version_the_service_names(
    serve: Callable[[Answer], FakePrometheus],
) -> None:
    asked: list[str] = []

    def canary_version(service: str) -> str:
        asked.append(service)
        return NEW

    source = PrometheusMetricsSource(serve(scraped_servers).url, canary_version=canary_version)
    window = source.window("svc", 1000.0, 1060.0)
    assert window.canary is not None and (window.canary.version, window.canary.invocations) == (NEW, 102)
    assert (window.baseline.version, window.baseline.invocations) == (OLD, 905)
    assert asked == ["svc"]


def test_variant_info_wins_over_the_services_canary_version(
    serve: Callable[[Answer], FakePrometheus],
) -> None:
    source = PrometheusMetricsSource(serve(mid_canary).url, canary_version=lambda service: OLD)
    window = source.window("svc", 1000.0, 1060.0)
    assert window.canary is not None and window.canary.version == NEW


@pytest.mark.parametrize(("canary", "counted"), [(None, 0), (NEW, 102)])
def test_a_version_alone_or_none_named_is_no_canary(
    serve: Callable[[Answer], FakePrometheus], canary: str | None, counted: int
) -> None:
    def new_only(query: str, at: float) -> tuple[int, dict[str, Any]]:
        _, body = scraped_servers(query, at)
        if canary is not None:
            result = body["data"]["result"]
            body["data"]["result"] = [item for item in result if item["metric"].get("version") != OLD]
        return 200, body

    window = PrometheusMetricsSource(serve(new_only).url, canary_version=lambda service: canary).window(
        "svc", 1000.0, 1060.0
    )
    assert window.canary is None and window.baseline.invocations == counted


def test_more_than_one_other_version_is_no_baseline_and_names_them(
    serve: Callable[[Answer], FakePrometheus],
) -> None:
    third = "c" * 64

    def three(query: str, at: float) -> tuple[int, dict[str, Any]]:
        if "modelrail_invocations_total" in query:
            return vector(({"version": OLD}, 5), ({"version": NEW}, 5), ({"version": third}, 5))
        return scraped_servers(query, at)

    source = PrometheusMetricsSource(serve(three).url, canary_version=lambda service: NEW)
    with pytest.raises(
        AmbiguousBaselineError, match=f"2 versions besides the canary b{{12}}, .*: {OLD}, {third}"
    ):
        source.window("svc", 1000.0, 1060.0)


def test_a_service_name_is_quoted_as_a_promql_string(serve: Callable[[Answer], FakePrometheus]) -> None:
    fake = serve(lambda query, at: vector())
    PrometheusMetricsSource(fake.url).window('we"ird', 0.0, 1.0)
    assert all('{service="we\\"ird",variant!="shadow"}' in query for query, _ in fake.queries)


def test_a_refused_query_is_named(serve: Callable[[Answer], FakePrometheus]) -> None:
    fake = serve(
        lambda query, at: (
            400,
            {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"},
        )
    )
    with pytest.raises(
        PromQLError, match=r"PromQL `sum by \(version\) \(increase\(modelrail_invocations_total"
    ) as error:
        PrometheusMetricsSource(fake.url).window("svc", 0.0, 60.0)
    assert "bad_data: parse error at char 5" in error.value.message and fake.url in error.value.message


def test_a_server_that_is_not_ready_is_retried_then_unavailable(
    serve: Callable[[Answer], FakePrometheus],
) -> None:
    fake = serve(
        lambda query, at: (503, {"status": "error", "errorType": "unavailable", "error": "starting"})
    )
    source = PrometheusMetricsSource(fake.url, retry_delays=(0.01, 0.01))
    with pytest.raises(
        DependencyUnavailableError, match=f"Prometheus at {fake.url} is not answering"
    ) as error:
        source.window("svc", 0.0, 60.0)
    assert len(fake.queries) == 3
    assert any("HTTP 503: unavailable: starting" in detail for detail in error.value.details)


def test_an_unreachable_server_is_a_dependency_that_is_not_answering() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    url = f"http://127.0.0.1:{port}"
    with pytest.raises(DependencyUnavailableError, match=f"Prometheus at {url} is not answering"):
        PrometheusMetricsSource(url, retry_delays=()).window("svc", 0.0, 60.0)


def test_an_answer_that_is_not_a_vector_is_named(serve: Callable[[Answer], FakePrometheus]) -> None:
    fake = serve(
        lambda query, at: (200, {"status": "success", "data": {"resultType": "matrix", "result": []}})
    )
    with pytest.raises(PromQLError, match="not an instant vector"):
        PrometheusMetricsSource(fake.url).window("svc", 0.0, 60.0)


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="'prometheus:9090': an http"):
        PrometheusMetricsSource("prometheus:9090")
