"""The router per task: binning each response row, judging each delayed label, and the two joined.

The rules are ``ServedOutput``'s; the last tests run them through the sandbox's real router
(``Sandbox.invoke``/``labels``) against a real model server of each task.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from infra.config import DeploymentPolicy
from pipelines.errors import BadInputError
from pipelines.packaging.build import PackageResult
from pipelines.packaging.load import extract_package
from pipelines.sandbox.fleet import DEFAULT_SERVER_COMMAND
from pipelines.sandbox.outputs import ServedOutput, normalise_label
from pipelines.sandbox.runtime import Sandbox
from tests.unit.serving.builders import DIABETES_DATA, REPO

BINARY = ServedOutput()
IRIS = ServedOutput(task="multiclass_classification", classes=("setosa", "versicolor", "virginica"))
EDGES = (10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0)
REGRESSION = ServedOutput(task="regression", bins=EDGES, tolerance=5.0)


def test_binary_rows_bin_by_the_positive_probability_from_json_and_csv() -> None:
    json_body = (
        b'{"predictions": [{"probability": 0.8, "label": ">50K"}, {"probability": 0.05, "label": "<=50K"}]}'
    )
    assert BINARY.read_predictions(json_body, "application/json") == ([8, 0], [">50K", "<=50K"])
    assert BINARY.read_predictions(b"probability,label\n0.1,<=50K\n", "text/csv") == ([1], ["<=50K"])
    assert BINARY.read_predictions(b"not json", "application/json") == ([], [])


def test_multiclass_rows_bin_by_the_predicted_class_position() -> None:
    body = json.dumps(
        {"predictions": [{"label": name, "probability": 0.9, "probabilities": {}} for name in IRIS.classes]}
    ).encode()
    assert IRIS.read_predictions(body, "application/json") == ([0, 1, 2], list(IRIS.classes))
    csv_body = b"label,probability,setosa,versicolor,virginica\nvirginica,0.7,0.1,0.2,0.7\n"
    assert IRIS.read_predictions(csv_body, "text/csv") == ([2], ["virginica"])
    unknown = b'{"predictions": [{"label": "setosa"}, {"label": "rose"}]}'
    assert IRIS.read_predictions(unknown, "application/json") == ([], []), "a label outside the classes"


def test_a_class_past_the_ninth_shares_the_last_bin() -> None:
    many = ServedOutput(task="multiclass_classification", classes=tuple(f"c{index}" for index in range(12)))
    body = json.dumps({"predictions": [{"label": "c3"}, {"label": "c9"}, {"label": "c11"}]}).encode()
    assert many.read_predictions(body, "application/json")[0] == [3, 9, 9]


def test_a_class_named_like_a_field_does_not_hide_the_field_in_csv() -> None:
    output = ServedOutput(task="multiclass_classification", classes=("label", "other", "third"))
    body = b"label,probability,label,other,third\nother,0.6,0.3,0.6,0.1\n"
    assert output.read_predictions(body, "text/csv") == ([1], ["other"])


def test_regression_rows_bin_by_the_edges_at_or_below_them() -> None:
    values = [-5.0, 10.0, 10.5, 55.0, 90.0, 1000.0]
    body = json.dumps({"predictions": [{"prediction": value} for value in values]}).encode()
    assert REGRESSION.read_predictions(body, "application/json") == ([0, 1, 1, 5, 9, 9], values)
    assert REGRESSION.read_predictions(b"prediction\n25.5\n", "text/csv") == ([2], [25.5])
    assert REGRESSION.read_predictions(b'{"predictions": [{"prediction": "NaN"}]}', "application/json") == (
        [],
        [],
    )


def test_a_regression_label_is_correct_within_the_tolerance() -> None:
    assert REGRESSION.correct(50.0, 55) is True
    assert REGRESSION.correct(50.0, "44.5") is False
    assert REGRESSION.correct(50.0, " 45 ") is True
    assert [REGRESSION.correct(50.0, bad) for bad in ("high", None, True, "nan")] == [None] * 4


def test_a_class_label_is_correct_when_it_is_the_prediction() -> None:
    assert BINARY.correct(normalise_label(">50K"), " >50K.") is True
    assert IRIS.correct("setosa", "virginica") is False


def test_the_output_is_read_from_the_schema_and_a_bad_one_is_refused_naming_the_key() -> None:
    schema = {"output": {"task": "regression", "bins": list(EDGES), "tolerance": 5}}
    assert ServedOutput.from_schema(schema, "schema.json") == REGRESSION
    assert ServedOutput.from_schema({"output": {"classes": ["a", "b"]}}, "s") == ServedOutput(
        classes=("a", "b")
    )
    with pytest.raises(BadInputError, match=r"^m/schema.json: output.bins = \[1, 2\]; expected 9 ascending"):
        ServedOutput.from_schema(
            {"output": {"task": "regression", "bins": [1, 2], "tolerance": 5}}, "m/schema.json"
        )
    with pytest.raises(BadInputError, match=r"output.tolerance = 0; expected a number above 0"):
        ServedOutput.from_schema({"output": {"task": "regression", "bins": list(EDGES), "tolerance": 0}}, "s")
    with pytest.raises(BadInputError, match=r"output.task = 'ranking'; allowed: binary_classification"):
        ServedOutput.from_schema({"output": {"task": "ranking"}}, "s")


def test_a_directory_without_a_schema_is_served_as_binary(tmp_path: Path) -> None:
    assert ServedOutput.read(tmp_path) == BINARY


# ---- the real router, with a real model server per task ----

QUICK = DeploymentPolicy(strategy="all_at_once", bake_seconds=0, termination_wait_seconds=0)


@pytest.fixture(scope="module")
def router(
    diabetes: PackageResult, iris: PackageResult, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """One sandbox serving both services, deployed side by side (their servers start in parallel)."""
    work = tmp_path_factory.mktemp("router")
    (work / "logs").mkdir()
    sandbox = Sandbox("http://sandbox", DEFAULT_SERVER_COMMAND, work / "logs", on_processes=lambda: None)
    cwd = Path.cwd()
    os.chdir(REPO)  # as the sandbox daemon runs: from the repository
    try:
        for service, package in (("diabetes", diabetes), ("iris", iris)):
            sandbox.deploy(service, package.package_id, extract_package(package.path, work / service), QUICK)
        deadline = time.monotonic() + 120
        for service in ("diabetes", "iris"):
            while (described := sandbox.describe(service)).status != "InService":
                assert described.status == "Creating", described
                assert time.monotonic() < deadline, "the model server never came up"
                time.sleep(0.05)
        yield sandbox
    finally:
        sandbox.shutdown()
        os.chdir(cwd)


def _invoke(sandbox: Sandbox, service: str, rows: Sequence[object]) -> tuple[str, list[dict[str, Any]]]:
    """The request id the router gave the invocation, and the rows the model server answered."""
    upstream = sandbox.invoke(
        service, json.dumps({"instances": rows}).encode(), {"Content-Type": "application/json"}
    )
    assert upstream.status == 200, upstream.body
    return upstream.headers["X-Modelrail-Request-Id"], json.loads(upstream.body)["predictions"]


def test_the_router_bins_regression_predictions_and_judges_labels_by_the_tolerance(
    diabetes: PackageResult, router: Sandbox
) -> None:
    frame = pd.read_csv(DIABETES_DATA, dtype={"sex": str}).head(30)
    rows = frame.drop(columns="progression").to_dict("records")
    request_id, served = _invoke(router, "diabetes", rows)
    fleet = router.endpoint("diabetes").fleets[diabetes.package_id]
    guesses = [float(row["prediction"]) for row in served]
    truths = [float(value) for value in frame["progression"]]
    joined = router.labels("diabetes", [{"request_id": request_id, "labels": truths}])
    counters = router.book.reading().counters[("diabetes", diabetes.package_id)]
    schema = json.loads((fleet.model_dir / "schema.json").read_text())["output"]
    assert fleet.output == ServedOutput(
        task="regression", bins=tuple(schema["bins"]), tolerance=float(schema["tolerance"])
    )
    expected_bins = [sum(edge <= guess for edge in schema["bins"]) for guess in guesses]
    assert counters.predictions == [expected_bins.count(index) for index in range(10)]
    assert len(set(expected_bins)) > 3, "predictions spread over several bins"
    within = sum(abs(guess - truth) <= 60 for guess, truth in zip(guesses, truths, strict=True))
    assert 0 < within < 30, "some labels within the tolerance and some not"
    assert joined == {"matched": 30, "unknown": 0, "invalid": 0}
    assert (counters.labelled, counters.correct) == (30, within)


def test_the_router_bins_multiclass_predictions_by_class_and_judges_labels_by_name(
    iris: PackageResult, router: Sandbox
) -> None:
    from tests.unit.serving.test_tasks import IRIS_ROWS

    request_id, served = _invoke(router, "iris", IRIS_ROWS)
    guesses = [str(row["label"]) for row in served]
    truths = ["setosa", "virginica", "virginica", "virginica"]
    joined = router.labels("iris", [{"request_id": request_id, "labels": truths}])
    counters = router.book.reading().counters[("iris", iris.package_id)]
    positions = [IRIS.classes.index(guess) for guess in guesses]
    assert counters.predictions == [positions.count(index) for index in range(10)]
    assert set(positions) == {0, 1, 2}
    assert joined == {"matched": 4, "unknown": 0, "invalid": 0}
    assert (counters.labelled, counters.correct) == (
        4,
        sum(g == t for g, t in zip(guesses, truths, strict=True)),
    )
