"""Hostile packages are refused before extraction writes anything, on every Python we admit.

This module needs nothing but pytest and ``pipelines.packaging.tarball``, so it also runs on
Debian's Python 3.11.2, whose tarfile has no ``filter=``; run it there with ``--noconftest``
(the packaging conftest trains a model, which needs the project's dependencies).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from pipelines.errors import BadInputError, ExitCode
from pipelines.packaging.tarball import MAX_EXTRACTED_BYTES, MAX_MEMBERS, extract_tarball, read_member
from pipelines.serving.verify import TamperedArtifactError

MODEL = b"a fitted model"

Entry = tuple[tarfile.TarInfo, bytes]


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE, **attributes: Any) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in attributes.items():
        setattr(info, key, value)
    return info, data


def write(path: Path, entries: list[Entry], *, compresslevel: int = 9) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.GNU_FORMAT, compresslevel=compresslevel) as archive:
        for info, data in entries:
            archive.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def manifest(sizes: dict[str, int]) -> Entry:
    files = {name: {"sha256": "0" * 64, "size": size} for name, size in sizes.items()}
    return member("manifest.json", json.dumps({"files": files}).encode())


def package(tmp_path: Path, *extra: Entry, sizes: dict[str, int] | None = None) -> Path:
    """A package whose manifest lists model.skops and every extra file at its true size."""
    if sizes is None:
        sizes = {"model.skops": len(MODEL)} | {info.name: info.size for info, _ in extra if info.isfile()}
    return write(tmp_path / "model.tar.gz", [manifest(sizes), member("model.skops", MODEL), *extra])


def refused(path: Path, dest: Path, error: type[Exception] = BadInputError, **options: Any) -> str:
    with pytest.raises(error) as caught:
        extract_tarball(path, dest, **options)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    return message


def test_a_plain_package_extracts_its_files(tmp_path: Path) -> None:
    source = package(tmp_path, member("code", kind=tarfile.DIRTYPE), member("code/serve.py", b"print(1)\n"))
    extract_tarball(source, tmp_path / "out")
    assert (tmp_path / "out" / "model.skops").read_bytes() == MODEL
    assert (tmp_path / "out" / "code" / "serve.py").read_bytes() == b"print(1)\n"


@pytest.mark.parametrize("name", ["../x", "code/../../x"])
def test_a_member_that_climbs_out_with_dotdot_is_refused(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "out"
    message = refused(package(tmp_path, member(name, b"owned")), dest)
    assert repr(name) in message and "'..'" in message
    assert not dest.exists() and not (tmp_path / "x").exists()


def test_an_absolute_member_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "x"
    dest = tmp_path / "out"
    message = refused(package(tmp_path, member(str(target), b"owned")), dest)
    assert repr(str(target)) in message and "absolute path" in message
    assert not dest.exists() and not target.exists()


@pytest.mark.parametrize("name", ["code/./x", "code//x"])
def test_a_second_spelling_of_a_name_is_refused(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "out"
    message = refused(package(tmp_path, member(name, b"x")), dest)
    assert repr(name) in message and "plain relative name" in message
    assert not dest.exists()


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (member("evil", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), "symbolic link (to '/etc/passwd')"),
        (member("evil", kind=tarfile.LNKTYPE, linkname="model.skops"), "hard link (to 'model.skops')"),
        (member("evil", kind=tarfile.CHRTYPE, devmajor=1, devminor=3), "device file"),
        (member("evil", kind=tarfile.BLKTYPE, devmajor=7, devminor=0), "device file"),
        (member("evil", kind=tarfile.FIFOTYPE), "FIFO"),
        (member("evil", kind=tarfile.CONTTYPE), "not a plain file or directory"),
    ],
    ids=["symlink", "hard-link", "char-device", "block-device", "fifo", "contiguous"],
)
def test_anything_but_a_plain_file_or_directory_is_refused(tmp_path: Path, entry: Entry, says: str) -> None:
    dest = tmp_path / "out"
    message = refused(package(tmp_path, entry), dest)
    assert "member 'evil'" in message and says in message
    assert not dest.exists()


def test_a_name_that_appears_twice_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    source = package(tmp_path, member("model.skops", b"b fitted model"))
    message = refused(source, dest)
    assert "member 'model.skops' appears twice" in message
    assert not dest.exists()


@pytest.mark.parametrize(
    ("entries", "says"),
    [
        ([member("model.skops/x", b"x")], "member 'model.skops/x' lies under 'model.skops', which is a file"),
        ([member("code/x", b"x"), member("code", b"")], "member 'code' is a file but other members"),
    ],
    ids=["file-under-a-file", "file-over-a-directory"],
)
def test_a_file_and_a_directory_of_one_name_are_refused(
    tmp_path: Path, entries: list[Entry], says: str
) -> None:
    dest = tmp_path / "out"
    message = refused(package(tmp_path, *entries), dest)
    assert says in message
    assert not dest.exists()


def test_a_negative_size_is_refused(tmp_path: Path) -> None:
    info, _ = member("evil")
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT))
    header[124:136] = (-1024).to_bytes(12, "big", signed=True)  # base-256, as GNU tar spells it
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    good = [manifest({"model.skops": len(MODEL)}), member("model.skops", MODEL)]
    raw = b"".join(i.tobuf(tarfile.GNU_FORMAT) + d + bytes(-len(d) % tarfile.BLOCKSIZE) for i, d in good)
    source = tmp_path / "model.tar.gz"
    source.write_bytes(gzip.compress(raw + bytes(header) + bytes(2 * tarfile.BLOCKSIZE)))
    dest = tmp_path / "out"
    message = refused(source, dest)
    assert "member 'evil' declares a negative size (-1024)" in message
    assert not dest.exists()


def test_more_members_than_a_package_could_hold_are_refused(tmp_path: Path) -> None:
    directories = [member(f"d{i}", kind=tarfile.DIRTYPE) for i in range(MAX_MEMBERS)]
    dest = tmp_path / "out"
    message = refused(package(tmp_path, *directories), dest)
    assert f"member 'd{MAX_MEMBERS - 2}' is past the limit of {MAX_MEMBERS} members" in message
    assert not dest.exists()


def test_a_member_larger_than_the_manifest_records_is_refused_as_tampered(tmp_path: Path) -> None:
    source = package(tmp_path, sizes={"model.skops": 10})
    dest = tmp_path / "out"
    with pytest.raises(TamperedArtifactError) as caught:
        extract_tarball(source, dest)
    assert f"member 'model.skops' is {len(MODEL)} bytes but manifest.json records 10" in caught.value.message
    assert caught.value.details == ["file: model.skops", "expected size: 10", f"actual size: {len(MODEL)}"]
    assert caught.value.exit_code == ExitCode.FAILED
    assert not dest.exists()


def test_a_member_the_manifest_does_not_list_is_refused_as_tampered(tmp_path: Path) -> None:
    source = package(tmp_path, member("sitecustomize.py", b"import os"), sizes={"model.skops": len(MODEL)})
    dest = tmp_path / "out"
    message = refused(source, dest, TamperedArtifactError)
    assert "member 'sitecustomize.py' is not listed in manifest.json" in message
    assert not dest.exists()


def test_a_tarball_without_a_manifest_is_not_a_package(tmp_path: Path) -> None:
    source = write(tmp_path / "model.tar.gz", [member("model.skops", MODEL)])
    dest = tmp_path / "out"
    assert "no manifest.json inside; not a modelrail model package" in refused(source, dest)
    assert not dest.exists()


class Zeros(io.RawIOBase):
    """``size`` zero bytes, produced as read, so a bomb costs no memory to build."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = min(len(buffer), self.left)
        buffer[:count] = bytes(count)
        self.left -= count
        return count


def test_a_bomb_past_the_default_budget_is_refused_before_a_byte_is_written(tmp_path: Path) -> None:
    size = MAX_EXTRACTED_BYTES + 1
    source = tmp_path / "model.tar.gz"
    with tarfile.open(source, "w:gz", compresslevel=1) as archive:
        listing, data = manifest({"model.skops": size})
        archive.addfile(listing, io.BytesIO(data))
        info = tarfile.TarInfo("model.skops")
        info.size = size
        archive.addfile(info, Zeros(size))
    assert source.stat().st_size < size // 100
    dest = tmp_path / "out"
    message = refused(source, dest)
    assert f"member 'model.skops' ({size} bytes) takes the package past its budget" in message
    assert not dest.exists()


def test_the_budget_stops_the_walk_at_the_first_member_over_it(tmp_path: Path) -> None:
    source = package(tmp_path, *(member(name, bytes(600)) for name in ("a", "b", "c")))
    with tarfile.open(source) as archive:
        budget = archive.getmember("manifest.json").size + len(MODEL) + 1000
    dest = tmp_path / "out"
    message = refused(source, dest, budget=budget)
    assert f"member 'b' (600 bytes) takes the package past its budget of {budget} bytes" in message
    assert not dest.exists()


def test_a_member_whose_data_outruns_its_header_stops_at_the_declared_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even if the tar reader yielded more than the header declared, no more is written."""
    real = tarfile.TarFile.extractfile

    def outrunning(self: tarfile.TarFile, info: tarfile.TarInfo) -> Any:
        if info.name == "model.skops":
            return io.BytesIO(MODEL + bytes(10_000_000))
        return real(self, info)

    monkeypatch.setattr(tarfile.TarFile, "extractfile", outrunning)
    dest = tmp_path / "out"
    message = refused(package(tmp_path), dest)
    assert f"member 'model.skops' does not hold the {len(MODEL)} bytes its header declares" in message
    assert (dest / "model.skops").read_bytes() == MODEL


def test_a_symlink_already_in_dest_cannot_lead_a_member_outside(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "code").symlink_to(outside)
    message = refused(package(tmp_path, member("code/x.py", b"x")), dest)
    assert f"member 'code/x.py' would be written outside {dest}" in message
    assert list(outside.iterdir()) == [] and sorted(os.listdir(dest)) == ["code"]


def test_where_tarfile_has_a_data_filter_its_verdict_is_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refusing(info: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        raise tarfile.TarError(f"{info.name!r} looks wrong")

    monkeypatch.setattr(tarfile, "data_filter", refusing, raising=False)
    dest = tmp_path / "out"
    message = refused(package(tmp_path), dest)
    assert "member 'manifest.json' refused by tarfile's data filter: 'manifest.json' looks wrong" in message
    assert not dest.exists()


def test_a_package_tarred_from_dot_extracts(tmp_path: Path) -> None:
    """``tar -C model -czf model.tar.gz .`` writes ``.`` and ``./name``; those are accepted."""
    model = tmp_path / "model"
    (model / "code").mkdir(parents=True)
    (model / "model.skops").write_bytes(MODEL)
    (model / "code" / "x.py").write_bytes(b"x")
    (model / "manifest.json").write_bytes(manifest({"model.skops": len(MODEL), "code/x.py": 1})[1])
    source = tmp_path / "model.tar.gz"
    with tarfile.open(source, "w:gz") as archive:
        archive.add(model, arcname=".")
    with tarfile.open(source) as archive:
        assert {".", "./model.skops", "./code/x.py"} <= set(archive.getnames())
    extract_tarball(source, tmp_path / "out")
    assert (tmp_path / "out" / "model.skops").read_bytes() == MODEL
    assert (tmp_path / "out" / "code" / "x.py").read_bytes() == b"x"


def test_read_member_returns_a_file_or_none(tmp_path: Path) -> None:
    source = package(tmp_path)
    assert read_member(source, "model.skops") == MODEL
    assert read_member(source, "evaluation.json") is None


def test_read_member_refuses_what_extraction_refuses(tmp_path: Path) -> None:
    """tarfile alone would hand back the last of two manifests; extraction refuses both."""
    source = package(tmp_path, manifest({"model.skops": 1}))
    with pytest.raises(BadInputError, match=r"member 'manifest\.json' appears twice"):
        read_member(source, "manifest.json")


def test_read_member_never_reads_more_than_its_limit_into_memory(tmp_path: Path) -> None:
    source = package(tmp_path)
    with pytest.raises(BadInputError, match=rf"member 'model\.skops' is {len(MODEL)} bytes; refusing"):
        read_member(source, "model.skops", limit=len(MODEL) - 1)


def test_a_missing_or_corrupt_package_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="no such package file"):
        extract_tarball(tmp_path / "absent.tar.gz", tmp_path / "out")
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    with pytest.raises(BadInputError, match=r"not a readable model\.tar\.gz"):
        read_member(tmp_path / "junk.tar.gz", "manifest.json")
