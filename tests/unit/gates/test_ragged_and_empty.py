"""Ragged rows are bad input naming the line (exit 2); an all-empty column is judged by ``data.missing``.

See the README's Quality gates section. polars pads a short CSV row with nulls and a reader drops a short row for
its missing label, so a file cut mid-row used to pass the gates with exit 0.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.cli import main
from pipelines.contract.load import load_contract
from pipelines.errors import BadInputError
from pipelines.gates import frames
from pipelines.gates.versions import read_evaluation_data
from tests.unit.gates.conftest import ADULT, halves

REPO = Path(__file__).resolve().parents[3]
ADULT_INCOME = load_contract("adult-income", REPO)


@pytest.fixture
def tables(adult: pl.DataFrame, tmp_path: Path) -> tuple[Path, Path]:
    """Two random halves of Adult as CSV files: the gates pass on them as they are."""
    reference, current = halves(adult, 41)
    reference.write_csv(tmp_path / "reference.csv")
    current.write_csv(tmp_path / "current.csv")
    return tmp_path / "reference.csv", tmp_path / "current.csv"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def cut_mid_row(path: Path) -> tuple[int, int]:
    """Cut the file in the middle of its last row, as an interrupted copy does.

    Returns that row's line number and how many fields are left of it.
    """
    text = path.read_text(encoding="utf-8")
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    assert last.count(",") == 14
    kept = text[: len(text.rstrip("\n")) - len(last) // 2]
    path.write_text(kept, encoding="utf-8")
    return kept.count("\n") + 1, kept.rsplit("\n", 1)[1].count(",") + 1


def rewrite_line(path: Path, line: int, change: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[line - 1] = change.format(lines[line - 1])
    path.write_text("\n".join(lines), encoding="utf-8")


@pytest.mark.parametrize("gate", ["data", "drift"])
@pytest.mark.parametrize("side", ["current", "reference"])
def test_a_csv_cut_mid_row_exits_2_naming_the_file_and_line(
    gate: str, side: str, tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = tables
    cut = current if side == "current" else reference
    line, fields = cut_mid_row(cut)
    code, out, err = run(capsys, "gate", gate, "--reference", str(reference), "--current", str(current))
    assert code == 2, out
    assert (
        f"{side} file {cut}: line {line} has {fields} fields, but the header (line 1) names 15 columns" in err
    )
    assert "Traceback" not in out + err


def test_a_cut_reference_is_refused_by_gate_schema_too(
    tables: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference, _ = tables
    line, fields = cut_mid_row(reference)
    code, _, err = run(
        capsys, "gate", "schema", "--reference", str(reference), "--out", str(tmp_path / "s.yaml")
    )
    assert code == 2 and f"line {line} has {fields} fields" in err
    assert not (tmp_path / "s.yaml").exists()


def test_a_row_with_an_extra_field_names_its_line(
    tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = tables
    rewrite_line(current, 100, "{},surplus")
    code, _, err = run(capsys, "gate", "data", "--reference", str(reference), "--current", str(current))
    assert code == 2
    assert f"current file {current}: line 100 has 16 fields" in err


def test_several_ragged_lines_are_listed_and_counted(
    tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = tables
    for line in (10, 20, 30, 40, 50, 60, 70):
        rewrite_line(current, line, "1,2,3")
    code, _, err = run(capsys, "gate", "drift", "--reference", str(reference), "--current", str(current))
    assert code == 2
    assert "line 10 has 3 fields" in err and "6 more ragged line(s): 20, 30, 40, 50, ..." in err


def test_a_blank_line_is_a_ragged_row_not_a_row_of_nulls(
    tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = tables
    rewrite_line(current, 5, "{}\n")
    code, _, err = run(capsys, "gate", "data", "--reference", str(reference), "--current", str(current))
    assert code == 2 and "line 6 is blank, but the header (line 1) names 15 columns" in err


def test_a_ragged_row_under_json_is_a_json_error_naming_the_line(
    tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = tables
    line, fields = cut_mid_row(current)
    code, out, _ = run(
        capsys, "gate", "data", "--reference", str(reference), "--current", str(current), "--json"
    )
    document = json.loads(out)
    assert code == 2 and document["exit_code"] == 2 and document["error"] == "BadInputError"
    assert f"line {line} has {fields} fields" in document["message"]


def test_the_installed_command_exits_2_on_a_cut_file(tables: tuple[Path, Path]) -> None:
    reference, current = tables
    line, fields = cut_mid_row(current)
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "gate", "data", "--reference", str(reference),
         "--current", str(current)],
        check=False, capture_output=True, text=True, cwd=REPO, env=dict(os.environ), timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"line {line} has {fields} fields" in result.stderr and "Traceback" not in result.stderr


def test_quoted_commas_newlines_and_empty_last_fields_are_not_ragged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [f'{i},"city, {i % 7}","two\nlines",{"" if i % 3 == 0 else i * 0.5}' for i in range(60)]
    table = tmp_path / "quoted.csv"
    table.write_text("id,place,note,score\n" + "\n".join(rows) + "\n", encoding="utf-8")
    code, out, err = run(capsys, "gate", "drift", "--reference", str(table), "--current", str(table))
    assert code == 0, out + err
    # A ragged row after them is found on its physical line (each quoted note spans two lines).
    table.write_text(table.read_text(encoding="utf-8") + "61,nowhere\n", encoding="utf-8")
    code, _, err = run(capsys, "gate", "drift", "--reference", str(table), "--current", str(table))
    assert code == 2 and "line 122 has 2 fields, but the header (line 1) names 4 columns" in err


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.lists(st.sampled_from(["", "1", "x", "2.5"]), max_size=5), min_size=1, max_size=25),
    eol=st.sampled_from(["\n", "\r\n"]),
    tail=st.sampled_from(["", "eol", "eol2"]),
    chunk=st.sampled_from([1, 3, 16, 1 << 24]),
    fields=st.sampled_from([None, 3]),
    skip_blank=st.booleans(),
)
def test_the_vectorised_scan_counts_fields_exactly_as_the_csv_module(
    rows: list[list[str]], eol: str, tail: str, chunk: int, fields: int | None, skip_blank: bool,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("scan") / "t.csv"
    text = eol.join(",".join(row) for row in rows) + {"": "", "eol": eol, "eol2": eol * 2}[tail]
    path.write_bytes(text.encode())
    original = frames._SCAN_CHUNK
    frames._SCAN_CHUNK = chunk
    try:
        fast = frames._unquoted_field_counts(path, fields, skip_blank)
    finally:
        frames._SCAN_CHUNK = original
    assert fast == frames._quoted_field_counts(path, fields, skip_blank, False, "input")


def adult_lines(count: int) -> list[str]:
    with ADULT.open(encoding="utf-8") as handle:
        return [next(handle).rstrip("\n") for _ in range(count)]


def test_a_raw_adult_file_cut_mid_row_is_refused_naming_the_line(tmp_path: Path) -> None:
    lines = adult_lines(200)
    raw = tmp_path / "holdout.data"
    raw.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2], encoding="utf-8")
    with pytest.raises(BadInputError) as caught:
        read_evaluation_data(ADULT_INCOME, raw, REPO)
    assert f"data file {raw}: line 200 has" in caught.value.message
    assert "the adult-income format (age, ..., income) has 15 columns" in caught.value.message


def test_a_raw_adult_row_with_an_extra_field_is_refused_naming_the_line(tmp_path: Path) -> None:
    lines = adult_lines(50)
    lines[0] += ", surplus"  # on the first row pandas would silently make the first column the index
    raw = tmp_path / "holdout.data"
    raw.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="line 1 has 16 fields"):
        read_evaluation_data(ADULT_INCOME, raw, REPO)


def test_blank_lines_in_a_raw_adult_file_are_skipped_as_before(tmp_path: Path) -> None:
    lines = adult_lines(50)
    raw = tmp_path / "holdout.data"
    raw.write_text("\n".join(lines[:25]) + "\n\n" + "\n".join(lines[25:]) + "\n\n", encoding="utf-8")
    assert len(read_evaluation_data(ADULT_INCOME, raw, REPO)) == 50


def failures(out: str) -> set[tuple[str, str | None]]:
    return {(c["name"], c["column"]) for c in json.loads(out)["checks"] if c["passed"] is False}


def check(out: str, name: str, column: str) -> dict[str, object]:
    checks: list[dict[str, object]] = json.loads(out)["checks"]
    [found] = [c for c in checks if c["name"] == name and c["column"] == column]
    return found


@pytest.mark.parametrize("column", ["capital-gain", "age", "hours-per-week"])
def test_an_all_empty_numeric_csv_column_fails_data_missing_not_data_dtype(
    column: str, tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = tables
    pl.read_csv(current).with_columns(pl.lit(None, dtype=pl.String).alias(column)).write_csv(current)
    code, out, err = run(capsys, "gate", "data", "--reference", str(reference), "--current", str(current),
                         "--label", "income", "--json")  # fmt: skip
    assert code == 1, err
    assert failures(out) == {("data.missing", column)}
    assert check(out, "data.missing", column)["statistic"] == 1.0
    dtype = check(out, "data.dtype", column)
    assert dtype["passed"] is None
    assert dtype["detail"] == (
        "not compared: the current data has no non-missing values in this column "
        "(read as String, the schema has Int64)"
    )


def test_an_all_empty_last_column_is_judged_by_data_missing_not_as_ragged_rows(
    tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = tables
    pl.read_csv(current).with_columns(pl.lit(None, dtype=pl.String).alias("income")).write_csv(current)
    code, out, err = run(
        capsys, "gate", "data", "--reference", str(reference), "--current", str(current), "--json"
    )
    assert code == 1, err
    assert failures(out) == {("data.missing", "income")}


def test_an_all_empty_column_against_a_pinned_schema_fails_data_missing(
    tables: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = tables
    schema = tmp_path / "schema.yaml"
    assert run(capsys, "gate", "schema", "--reference", str(reference), "--out", str(schema))[0] == 0
    pl.read_csv(current).with_columns(pl.lit(None, dtype=pl.String).alias("education-num")).write_csv(current)
    code, out, _ = run(capsys, "gate", "data", "--schema", str(schema), "--current", str(current), "--json")
    assert code == 1 and failures(out) == {("data.missing", "education-num")}


def test_a_column_empty_in_the_reference_holds_no_dtype_against_the_current_data(
    tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = tables
    pl.read_csv(reference).with_columns(pl.lit(None, dtype=pl.String).alias("capital-loss")).write_csv(
        reference
    )
    code, out, err = run(
        capsys, "gate", "data", "--reference", str(reference), "--current", str(current), "--json"
    )
    assert code == 0, out + err
    assert check(out, "data.dtype", "capital-loss")["detail"] == (
        "not compared: the reference has no non-missing values in this column "
        "(read as Int64, the schema has String)"
    )


def test_a_column_with_text_in_place_of_numbers_still_fails_data_dtype(
    tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = tables
    frame = pl.read_csv(current)
    frame.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("n/k")).otherwise(pl.col("age").cast(pl.String))
                       .alias("age")).write_csv(current)  # fmt: skip
    code, out, _ = run(
        capsys, "gate", "data", "--reference", str(reference), "--current", str(current), "--json"
    )
    assert code == 1 and failures(out) == {("data.dtype", "age")}


def test_an_all_empty_numeric_csv_column_fails_drift_values(
    tables: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    reference, current = tables
    pl.read_csv(current).with_columns(pl.lit(None, dtype=pl.String).alias("age")).write_csv(current)
    code, out, _ = run(
        capsys, "gate", "drift", "--reference", str(reference), "--current", str(current), "--json"
    )
    assert code == 1
    assert ("drift.values", "age") in failures(out) and ("drift.dtype", "age") not in failures(out)
