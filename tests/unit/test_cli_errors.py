"""A bug in a command is reported in one sentence and exit 1; its traceback is kept in a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.cli import TRACEBACK_ENV, main


def _explode(path: Path) -> None:
    raise RuntimeError("a bug in the loader")


@pytest.mark.parametrize("as_json", [False, True])
def test_an_unexpected_exception_is_one_sentence_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], as_json: bool
) -> None:
    monkeypatch.delenv(TRACEBACK_ENV, raising=False)
    monkeypatch.setattr("infra.config.load_stack_file", _explode)
    code = main(["config", "validate", "--stack", "local", *(["--json"] if as_json else [])])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    if as_json:
        report = json.loads(out)
        assert report["error"] == "InternalError" and "RuntimeError: a bug in the loader" in report["message"]
        kept = Path(report["details"][0].removeprefix("the traceback is in "))
    else:
        assert "internal error (a bug in modelrail): RuntimeError: a bug in the loader" in err
        kept = Path(err.split("the traceback is in ")[1].split()[0])
    assert "Traceback" in kept.read_text() and "_explode" in kept.read_text()
    kept.unlink()


def test_the_traceback_can_be_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TRACEBACK_ENV, "1")
    monkeypatch.setattr("infra.config.load_stack_file", _explode)
    with pytest.raises(RuntimeError, match="a bug in the loader"):
        main(["config", "validate", "--stack", "local"])
