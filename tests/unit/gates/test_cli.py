"""``modelrail gate data|drift|schema`` end to end: exit 0 pass, 1 fail, 2 bad input, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from tests.unit.gates.conftest import halves


@pytest.fixture
def split(adult: pl.DataFrame, tmp_path: Path) -> tuple[Path, Path]:
    reference, current = halves(adult, 31)
    reference.write_parquet(tmp_path / "reference.parquet")
    current.write_csv(tmp_path / "current.csv")
    return tmp_path / "reference.parquet", tmp_path / "current.csv"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_healthy_data_passes_both_gates_as_json(
    split: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = split
    code, out, _ = run(capsys, "gate", "data", "--reference", str(reference), "--current", str(current),
                       "--label", "income", "--json")  # fmt: skip
    assert code == 0
    document = json.loads(out)
    assert document["passed"] is True and document["gate"] == "data"
    assert document["digest"].startswith("sha256:") and document["policy_digest"].startswith("sha256:")
    code, out, _ = run(
        capsys, "gate", "drift", "--reference", str(reference), "--current", str(current), "--json"
    )
    assert code == 0 and json.loads(out)["summary"]["failed"] == 0


def test_drift_fails_with_exit_1_and_names_the_column(
    adult: pl.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = halves(adult, 32)
    reference.write_parquet(tmp_path / "r.parquet")
    current.with_columns(pl.col("age") + 10).write_parquet(tmp_path / "c.parquet")
    code, out, _ = run(capsys, "gate", "drift", "--reference", str(tmp_path / "r.parquet"),
                       "--current", str(tmp_path / "c.parquet"), "--columns", "age,sex")  # fmt: skip
    assert code == 1
    assert "failed: drift.wasserstein (age)" in out


def test_a_pinned_schema_replaces_the_reference(split: tuple[Path, Path], tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    reference, current = split
    schema = tmp_path / "schema.yaml"
    code, _, _ = run(capsys, "gate", "schema", "--reference", str(reference), "--out", str(schema))
    assert code == 0 and schema.is_file()
    code, out, _ = run(capsys, "gate", "data", "--schema", str(schema), "--current", str(current), "--json")
    assert code == 0 and json.loads(out)["subject"]["schema"] == str(schema)


def bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    empty = tmp_path / "empty.csv"
    empty.write_text("age,sex\n", encoding="utf-8")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("city,n\nZürich,1\nMünchen,2\n".encode("latin-1"))
    blank = tmp_path / "blank.csv"
    blank.write_text("", encoding="utf-8")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    text = tmp_path / "table.txt"
    text.write_text("a,b\n1,2\n", encoding="utf-8")
    return {
        "missing file": (tmp_path / "absent.csv", "does not exist"),
        "no rows": (empty, "has no rows"),
        "no columns": (blank, "blank.csv"),
        "not UTF-8": (latin1, "not UTF-8"),
        "corrupt parquet": (garbage, "cannot be read as parquet"),
        "unknown extension": (text, "unsupported extension '.txt'"),
    }


@pytest.mark.parametrize("case", ["missing file", "no rows", "no columns", "not UTF-8", "corrupt parquet",
                                  "unknown extension"])  # fmt: skip
@pytest.mark.parametrize("gate", ["data", "drift"])
def test_unreadable_input_exits_2_with_the_file_named(
    case: str, gate: str, split: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference, _ = split
    path, message = bad_inputs(tmp_path)[case]
    code, out, err = run(capsys, "gate", gate, "--reference", str(reference), "--current", str(path))
    assert code == 2
    assert message in err and str(path.name) in err
    assert "Traceback" not in out + err


def test_bad_input_under_json_is_a_json_error(split: tuple[Path, Path], tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    reference, _ = split
    code, out, _ = run(capsys, "gate", "drift", "--reference", str(reference),
                       "--current", str(tmp_path / "absent.parquet"), "--json")  # fmt: skip
    assert code == 2 and json.loads(out)["exit_code"] == 2


def test_a_bad_policy_file_exits_2(
    split: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = split
    policy = tmp_path / "policy.yaml"
    policy.write_text("stage: candidate\ndrift: {maxDriftedShare: -1}\n", encoding="utf-8")
    code, _, err = run(capsys, "gate", "drift", "--reference", str(reference), "--current", str(current),
                       "--policy", str(policy))  # fmt: skip
    assert code == 2 and "drift.maxDriftedShare" in err


def test_mixed_types_in_a_csv_column_are_a_failing_check(split: tuple[Path, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    reference, current = split
    frame = pl.read_csv(current)
    mixed = frame.with_columns(pl.col("age").cast(pl.String))
    mixed = mixed.with_columns(pl.when(pl.int_range(pl.len()) == 15_000).then(pl.lit("unknown"))
                               .otherwise(pl.col("age")).alias("age"))  # fmt: skip
    path = tmp_path / "mixed.csv"
    mixed.write_csv(path)
    code, out, _ = run(
        capsys, "gate", "data", "--reference", str(reference), "--current", str(path), "--json"
    )
    assert code == 1
    failures = [c for c in json.loads(out)["checks"] if c["passed"] is False]
    assert [(c["name"], c["column"]) for c in failures] == [("data.dtype", "age")]
