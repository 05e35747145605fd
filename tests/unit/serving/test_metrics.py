"""The server's own ``GET /metrics``: the router's names and buckets, what it counts of
``/invocations``, and an exposition that Prometheus' ``promtool`` and modelrail's reader accept."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pipelines.metrics import exposition as expo
from pipelines.metrics.versions import read_service
from pipelines.serving import series
from pipelines.serving.metrics import CONTENT_TYPE, ServingMetrics, served_bin
from pipelines.serving.model import BINARY, MULTICLASS, REGRESSION, LoadedPackage
from pipelines.serving.server import ModelServer

VERSION = "c" * 64
EDGES = [float(edge) for edge in range(10, 100, 10)]


class Doubler:
    """A stand-in regressor: twice its one input."""

    def predict(self, frame: Any) -> Any:
        return frame["x"].to_numpy() * 2


def regressor() -> LoadedPackage:
    schema = {
        "input": {"columns": [{"name": "x", "type": "number"}]},
        "output": {"task": REGRESSION, "label": "y", "bins": EDGES, "tolerance": 1.0},
    }
    return LoadedPackage(package_id="f" * 64, manifest={}, schema=schema, pipeline=Doubler())


@contextmanager
def serving(model: LoadedPackage) -> Iterator[str]:
    httpd = ModelServer(model, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def post(url: str, body: bytes, content_type: str = "application/json") -> int:
    request = urllib.request.Request(f"{url}/invocations", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def scrape(url: str) -> tuple[str, str]:
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as response:
        return response.headers["Content-Type"], response.read().decode()


@pytest.mark.parametrize(
    ("probability", "expected"),
    [(-0.5, 0), (0.0, 0), (0.05, 0), (0.1, 1), (0.45, 4), (0.99, 9), (1.0, 9), (3.0, 9), (math.inf, 9)],
)
def test_a_binary_prediction_is_binned_in_tenths_clamped(probability: float, expected: int) -> None:
    assert served_bin({"probability": probability}, BINARY, (), ()) == expected


def test_multiclass_and_regression_predictions_are_binned_by_class_and_by_edge() -> None:
    classes = [f"c{i}" for i in range(12)]
    assert [served_bin({"label": name}, MULTICLASS, classes, ()) for name in ("c0", "c3", "c11")] == [0, 3, 9]
    assert [served_bin({"prediction": value}, REGRESSION, (), EDGES) for value in (5, 10, 55, 500)] == [
        0,
        1,
        5,
        9,
    ]
    unservable: list[tuple[dict[str, Any], str]] = [
        ({"prediction": math.nan}, REGRESSION),
        ({"probability": "x"}, BINARY),
    ]
    for row, task in unservable:
        with pytest.raises(ValueError):
            served_bin(row, task, (), EDGES)
    with pytest.raises(ValueError, match="0 bin edges"):
        served_bin({"prediction": 1.0}, REGRESSION, (), ())


def test_the_server_counts_its_invocations_errors_latency_and_predictions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELRAIL_SERVICE", "diabetes")
    monkeypatch.setenv("MODELRAIL_MODEL_VERSION", VERSION)
    with serving(regressor()) as url:
        assert post(url, json.dumps([[1], [20], [40]]).encode()) == 200  # 2, 40, 80
        assert post(url, b"x\n30\n", "text/csv") == 200  # 60
        assert post(url, b"[[1, 2]]") == 400
        assert post(url, b"1", "text/plain") == 415
        content_type, text = scrape(url)
    assert content_type == CONTENT_TYPE
    (stats_,) = read_service(expo.parse(text), "diabetes").counters.values()
    assert (stats_.version, stats_.invocations, stats_.errors_4xx, stats_.errors_5xx) == (VERSION, 4, 2, 0)
    assert stats_.prediction_histogram == (1, 0, 0, 0, 1, 0, 1, 0, 1, 0)
    assert stats_.latency_histogram is not None and stats_.latency_histogram.total == 4
    assert "modelrail_variant_info" not in text  # roles are not the server's to know


def test_a_5xx_counts_without_predictions() -> None:
    counted = ServingMetrics(regressor(), {})
    counted.invocation(500, 0.002, [])
    counted.invocation(200, 0.5, [{"prediction": 15.0}, {"prediction": "garbage"}])
    (stats_,) = read_service(expo.parse(counted.exposition()), "").counters.values()
    assert (stats_.version, stats_.invocations, stats_.errors_5xx) == ("f" * 64, 2, 1)
    assert sum(stats_.prediction_histogram) == 0  # a response it cannot bin counts no predictions
    assert f'{series.LATENCY}_sum{{service="",version="{"f" * 64}"}} 0.502' in counted.exposition()


def test_counters_are_exact_under_concurrent_requests() -> None:
    counted = ServingMetrics(regressor(), {"MODELRAIL_SERVICE": "s"})

    def hammer() -> None:
        for _ in range(2000):
            counted.invocation(200, 0.001, [{"prediction": 95.0}])

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (stats_,) = read_service(expo.parse(counted.exposition()), "s").counters.values()
    assert (stats_.invocations, stats_.prediction_histogram[9]) == (16000, 16000)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Prometheus) is not installed")
def test_promtool_finds_nothing_to_complain_about() -> None:
    counted = ServingMetrics(regressor(), {"MODELRAIL_SERVICE": 'we"ird\\name'})
    counted.invocation(200, 0.0123, [{"prediction": 42.0}])
    promtool = shutil.which("promtool")
    assert promtool is not None
    checked = subprocess.run(
        [promtool, "check", "metrics"],
        input=counted.exposition(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (checked.returncode, checked.stdout, checked.stderr) == (0, "", "")
