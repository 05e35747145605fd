"""The served rows of every task, over HTTP through the server's own handler, as JSON and as CSV."""

from __future__ import annotations

import csv
import io
import json
import math
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipelines.errors import BadInputError
from pipelines.packaging.build import PackageResult
from pipelines.packaging.load import load_package
from pipelines.serving.model import BINARY, LoadedPackage, check_output
from pipelines.serving.server import ModelServer
from tests.unit.serving.builders import DIABETES_DATA, IRIS_CLASSES


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


def post(url: str, rows: list[Any], accept: str = "application/json") -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps({"instances": rows}).encode(),
        headers={"Content-Type": "application/json", "Accept": accept},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def diabetes_rows(count: int) -> list[dict[str, Any]]:
    frame = pd.read_csv(DIABETES_DATA, dtype={"sex": str}).head(count)
    return [{str(k): v for k, v in row.items() if k != "progression"} for row in frame.to_dict("records")]


IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.7, 5.1, 1.6], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 4.2, 1.5]]


def test_a_regression_model_serves_one_prediction_per_row(diabetes: PackageResult) -> None:
    model = load_package(diabetes.path)
    rows = diabetes_rows(5)
    expected = model.pipeline.predict(model.frame(rows)[model.columns])
    with serving(model) as url:
        status, body = post(url, rows)
        csv_status, csv_body = post(url, rows, accept="text/csv")
    assert model.task == "regression"
    assert status == 200
    answer = json.loads(body)
    assert answer["model_version"] == diabetes.package_id
    assert [set(row) for row in answer["predictions"]] == [{"prediction"}] * 5
    assert [row["prediction"] for row in answer["predictions"]] == pytest.approx(list(expected))
    assert len({row["prediction"] for row in answer["predictions"]}) == 5
    assert csv_status == 200
    table = list(csv.reader(io.StringIO(csv_body.decode())))
    assert table[0] == ["prediction"]
    assert [float(row[0]) for row in table[1:]] == pytest.approx(list(expected))


def test_a_multiclass_model_serves_its_label_and_every_class_probability(iris: PackageResult) -> None:
    model = load_package(iris.path)
    expected = model.pipeline.predict_proba(model.frame(IRIS_ROWS))
    with serving(model) as url:
        status, body = post(url, IRIS_ROWS)
        csv_status, csv_body = post(url, IRIS_ROWS, accept="text/csv")
    assert model.task == "multiclass_classification" and model.classes == list(IRIS_CLASSES)
    assert status == 200
    predictions = json.loads(body)["predictions"]
    for row, probabilities in zip(predictions, expected, strict=True):
        best = int(np.argmax(probabilities))
        assert row["label"] == IRIS_CLASSES[best]
        assert row["probability"] == pytest.approx(probabilities[best], abs=1e-6)
        assert list(row["probabilities"]) == list(IRIS_CLASSES)
        assert list(row["probabilities"].values()) == pytest.approx(list(probabilities), abs=1e-6)
    assert {row["label"] for row in predictions} == set(IRIS_CLASSES), "the rows cover every species"
    assert csv_status == 200
    table = list(csv.reader(io.StringIO(csv_body.decode())))
    assert table[0] == ["label", "probability", *IRIS_CLASSES]
    assert [row[0] for row in table[1:]] == [row["label"] for row in predictions]
    assert [[float(cell) for cell in row[1:]] for row in table[1:]] == [
        [row["probability"], *row["probabilities"].values()] for row in predictions
    ]


class Broken:
    """A stand-in estimator that answers what no response can carry."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def predict(self, frame: pd.DataFrame) -> Any:
        return self.answer


def _regressor(pipeline: Any) -> LoadedPackage:
    return LoadedPackage(
        package_id="f" * 64,
        manifest={},
        schema={
            "input": {"columns": [{"name": "x", "type": "number"}]},
            "output": {"task": "regression", "label": "y", "bins": [], "tolerance": 1.0},
        },
        pipeline=pipeline,
    )


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ([1.0, math.nan], "row 1: nan is not a finite number"),
        ([1.0], "returned shape (1,) for 2 row(s); expected (2,), one number per row"),
    ],
)
def test_an_unservable_answer_is_a_500_naming_the_problem(answer: Any, problem: str) -> None:
    with serving(_regressor(Broken(answer))) as url:
        status, body = post(url, [[1], [2]])
    assert status == 500
    assert json.loads(body)["error"] == f"the model failed to predict: Broken.predict: {problem}"


def test_a_schema_without_a_task_is_a_binary_classifiers() -> None:
    model = LoadedPackage("0" * 64, {}, {"output": {"classes": ["a", "b"], "positive_class": "b"}}, None)
    assert model.task == BINARY


def test_a_schema_with_an_unknown_task_is_refused_naming_it() -> None:
    with pytest.raises(BadInputError) as caught:
        check_output({"output": {"task": "ranking"}}, Path("model/schema.json"))
    assert caught.value.message == (
        "model/schema.json: output.task = 'ranking'; allowed: binary_classification, "
        "multiclass_classification, regression"
    )
