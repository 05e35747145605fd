"""The service contract: the shipped services load, and a bad contract lists every problem at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipelines.contract.data import read_data
from pipelines.contract.load import ContractError, entry_point, load_contract, read_contract, service_names
from pipelines.contract.tasks import DEFAULT_RULES, Task
from pipelines.errors import BadInputError

REPO = Path(__file__).resolve().parents[3]


def write_service(
    root: Path, name: str, text: str, module: str | None = "def train(frame, hp):\n    return None\n"
) -> Path:
    folder = root / "services" / name
    folder.mkdir(parents=True)
    (folder / "service.yaml").write_text(text, encoding="utf-8")
    if module is not None:
        (folder / "model.py").write_text(module, encoding="utf-8")
    return folder / "service.yaml"


VALID = """
name: churn
task: binary_classification
label: churned
classes: ["no", "yes"]
positiveClass: "yes"
features:
  - {name: tenure, type: number}
  - {name: plan, type: category}
sensitive: [plan]
data:
  snapshots: [{path: data/churn.csv, sha256: "%s"}]
train: model:train
""" % ("a" * 64)


def test_the_shipped_services_are_the_two_examples() -> None:
    assert service_names(REPO) == ["adult-income", "diabetes"]
    adult, diabetes = load_contract("adult-income", REPO), load_contract("diabetes", REPO)
    assert (adult.task, adult.positive_class, adult.sensitive) == (Task.binary, ">50K", ("race", "sex"))
    assert (diabetes.task, diabetes.label, diabetes.live_tolerance) == (Task.regression, "progression", 60.0)


def test_stage_rules_override_the_task_defaults_field_by_field() -> None:
    adult = load_contract("adult-income", REPO)
    production = adult.metric_rules("production")
    assert production["accuracy"].min == 0.82 and production["accuracy"].max_regression == 0.005
    diabetes = load_contract("diabetes", REPO).metric_rules("candidate")
    assert set(diabetes) == set(DEFAULT_RULES[Task.regression])
    assert diabetes["rmse"].relative is True and diabetes["rmse"].max_regression == 0.05
    assert diabetes["mae"].max == 50


def test_a_valid_contract_loads(tmp_path: Path) -> None:
    contract = read_contract(write_service(tmp_path, "churn", VALID))
    assert contract.feature_names == ("tenure", "plan")


def test_every_problem_is_reported_at_once_with_its_key_path(tmp_path: Path) -> None:
    text = (
        VALID.replace("name: churn", "name: churn-two")
        .replace('positiveClass: "yes"', 'positiveClass: "maybe"')
        .replace("sensitive: [plan]", "sensitive: [region]")
        .replace("path: data/churn.csv", "path: ../../etc/passwd")
        .replace(
            "train: model:train",
            "train: missing:train\nliveTolerance: 3\nmetrics: {candidate: {rmse: {max: 1}}}",
        )
    )
    path = write_service(tmp_path, "churn", text)
    with pytest.raises(ContractError) as caught:
        read_contract(path)
    details = "\n".join(caught.value.details)
    assert str(path) in caught.value.message
    for expected in (
        "name = \"churn-two\": must be the folder's name, 'churn'",
        'positiveClass = "maybe": must be one of the classes',
        'sensitive.0 = "region": a sensitive column must be a feature',
        'data.snapshots.0.path = "../../etc/passwd": a relative path stays inside the project root',
        'train = "missing:train": no module file missing.py',
        "liveTolerance = 3",
        'metrics.candidate.rmse = "rmse": not a metric of binary_classification',
    ):
        assert expected in details, details
    assert len(caught.value.details) == 7


def test_structure_errors_name_the_key_and_the_value(tmp_path: Path) -> None:
    text = VALID.replace("task: binary_classification", "task: ranking").replace("type: number", "type: int")
    text += "colour: blue\n"
    with pytest.raises(ContractError) as caught:
        read_contract(write_service(tmp_path, "churn", text))
    details = "\n".join(caught.value.details)
    assert 'task = "ranking"' in details and "regression" in details
    assert 'features.0.type = "int"' in details
    assert 'colour = "blue": unknown key' in details


def test_an_entry_point_cannot_name_a_path(tmp_path: Path) -> None:
    text = VALID.replace("train: model:train", "train: ../../evil:train")
    with pytest.raises(ContractError, match="1 problem"):
        read_contract(write_service(tmp_path, "churn", text))


def test_an_alias_bomb_is_refused_before_expansion(tmp_path: Path) -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(BadInputError, match="refused"):
        read_contract(write_service(tmp_path, "churn", bomb))


def test_two_services_may_each_have_a_model_module(tmp_path: Path) -> None:
    for name, value in (("one", 1), ("two", 2)):
        write_service(
            tmp_path, name, VALID.replace("name: churn", f"name: {name}"),
            module=f"from .helpers import VALUE\n\ndef train(frame, hp):\n    return VALUE + {value}\n",
        )  # fmt: skip
        (tmp_path / "services" / name / "helpers.py").write_text(f"VALUE = {value * 10}\n")
    results = [
        entry_point(load_contract(n, tmp_path), "model:train", tmp_path)(None, {}) for n in ("one", "two")
    ]
    assert results == [11, 22]


def test_a_missing_function_is_named(tmp_path: Path) -> None:
    write_service(tmp_path, "churn", VALID)
    with pytest.raises(BadInputError, match="has no function 'fit'"):
        entry_point(load_contract("churn", tmp_path), "model:fit", tmp_path)


def rows(tmp_path: Path, text: str) -> Any:
    data = tmp_path / "data" / "churn.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(text, encoding="utf-8")
    return read_data(read_contract(write_service(tmp_path, "churn", VALID)), data)


def test_the_reader_types_columns_and_drops_unlabelled_rows(tmp_path: Path) -> None:
    frame = rows(tmp_path, "plan,tenure,churned,extra\n basic ,3,no,x\npro,,yes,y\npro,5,,z\n")
    assert list(frame.columns) == ["tenure", "plan", "churned", "extra"]
    assert frame["tenure"].tolist()[0] == 3.0 and frame["tenure"].isna().tolist() == [False, True]
    assert frame["plan"].tolist() == ["basic", "pro"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("plan,tenure,churned\npro,three,no\n", "column 'tenure' has non-numeric value 'three' (row 1)"),
        ("plan,tenure,churned\npro,3,perhaps\n", "column 'churned' has values ['perhaps']"),
        ("plan,tenure\npro,3\n", "no column(s) churned"),
        ("plan,tenure,churned\npro,3\n", "line 2 has 2 fields"),
    ],
)
def test_bad_rows_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(BadInputError) as caught:
        rows(tmp_path, text)
    assert message in caught.value.message


def test_the_live_tolerance_is_the_regression_contracts_and_none_otherwise() -> None:
    from pipelines.contract.load import live_tolerance

    assert live_tolerance("diabetes", REPO) == 60.0
    assert live_tolerance("adult-income", REPO) is None
    assert live_tolerance("fraud-score", REPO) is None  # declared in prod for infrastructure only


def test_a_table_read_without_the_csv_options_still_treats_the_missing_marks_as_missing(
    tmp_path: Path,
) -> None:
    """The gates read a headed CSV as a table; the contract's ``naValues`` must still mean missing."""
    import pandas as pd

    from pipelines.contract.data import coerce

    text = VALID.replace("  snapshots:", '  format: {naValues: ["?"]}\n  snapshots:')
    contract = read_contract(write_service(tmp_path, "churn", text))
    frame = coerce(
        contract,
        pd.DataFrame({"tenure": ["3", " ?"], "plan": ["?", "pro"], "churned": ["no", "yes"]}),
        source="t",
    )
    assert frame["tenure"].isna().tolist() == [False, True]
    assert frame["plan"].isna().tolist() == [True, False]
