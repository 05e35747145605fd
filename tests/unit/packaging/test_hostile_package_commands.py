"""Hostile packages reach the user as exit 2 and one line naming the member, never a traceback."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path
from typing import cast

import pytest

from pipelines.cli import main
from pipelines.errors import BadInputError
from pipelines.promotion.ports import VersionStore
from pipelines.promotion.qualify import training_data
from tests.unit.packaging.test_hostile_tarballs import Entry, member, package


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        (member("../x", b"owned"), "member '../x' climbs out of the package"),
        (member("/etc/cron.d/x", b"owned"), "member '/etc/cron.d/x' is an absolute path"),
        (member("evil", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), "member 'evil' is a symbolic link"),
        (member("evil", kind=tarfile.LNKTYPE, linkname="/etc/passwd"), "member 'evil' is a hard link"),
    ],
    ids=["dotdot", "absolute", "symlink", "hard-link"],
)
def test_compare_models_refuses_a_hostile_package_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], entry: Entry, named: str
) -> None:
    hostile = package(tmp_path, entry)
    code = main(["compare-models", str(hostile), str(hostile)])
    _, err = capsys.readouterr()
    assert code == 2
    assert named in err and str(hostile) in err
    assert "Traceback" not in err


class _Registry:
    def __init__(self, tarball: Path) -> None:
        self.tarball = tarball

    def download(self, service: str, sha: str, dest: Path) -> Path:
        shutil.copyfile(self.tarball, dest)
        return dest


def test_the_gates_read_no_manifest_but_the_one_extraction_would_accept(tmp_path: Path) -> None:
    """tarfile hands back the last of two ``manifest.json``; the gates must refuse, not pick one."""
    (tmp_path / "elsewhere.csv").write_text("a\n1\n", encoding="utf-8")
    second = member("manifest.json", json.dumps({"dataset": {"uri": "elsewhere.csv"}}).encode())
    with pytest.raises(BadInputError, match=r"member 'manifest\.json' appears twice"):
        training_data(
            cast(VersionStore, _Registry(package(tmp_path, second))), "adult-income", "a" * 64, tmp_path
        )
