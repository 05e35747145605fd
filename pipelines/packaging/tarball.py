"""Reproducible tarballs, and extraction that accepts nothing but plain files and directories.

The same files always give the same bytes: entries sorted, directories listed, mtime, owner
and mode fixed, and the gzip header without a timestamp or file name.

A package is untrusted input until ``verify_model_dir`` has checked every sha256, and that
check needs the files on disk. So extraction inspects every header first and writes nothing
that is not a plain file or directory of the size ``manifest.json`` records, within a total
budget; ``read_member`` applies the same inspection to the callers that read one file.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipelines.errors import BadInputError
from pipelines.serving.verify import MANIFEST, TamperedArtifactError

_MTIME = 0
_CHUNK = 1 << 20

MAX_EXTRACTED_BYTES = 128 * 1024 * 1024
"""The most a package may expand to: 128 MiB, about a hundred times a real package.

The adult-income package is 1.2 MB expanded (a 1.2 MB ``model.skops`` and a few KB of code and
metadata); a bigger tabular scikit-learn model still fits in tens of MB. Packages are extracted
into the temporary directory, which is often RAM-backed, so the cap is what a hostile package
can make a laptop or CI runner write, and it is below the 200 MB a 383 KB gzip of zeros gives.
Raise it here when a service's models outgrow it.
"""

MAX_MEMBERS = 1000
"""A package holds 17 members today; more than a thousand is an attempt to exhaust inodes."""

MAX_METADATA_BYTES = 1024 * 1024
"""The most ``read_member`` reads into memory; ``manifest.json``, the largest, is about 3 KB."""


def write_tarball(files: dict[str, bytes], out: Path) -> bytes:
    """Write ``files`` (relative POSIX path → bytes) as a gzip tarball at ``out``; return its bytes."""
    directories = sorted({parent for name in files for parent in _parents(name)})
    raw = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=_MTIME, compresslevel=9) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.USTAR_FORMAT) as archive,
    ):
        for directory in directories:
            archive.addfile(_info(directory, tarfile.DIRTYPE, 0o755, 0))
        for name in sorted(files):
            data = files[name]
            archive.addfile(_info(name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
    content = raw.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(handle, "wb") as target:
            target.write(content)
        os.chmod(staging, 0o644)
        os.replace(staging, out)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return content


def extract_tarball(path: Path, dest: Path, *, budget: int = MAX_EXTRACTED_BYTES) -> None:
    """Extract a package into ``dest`` after every member has passed inspection.

    Nothing is written until the whole archive has been read and every member accepted: plain
    files and directories only, names that stay inside ``dest``, no name twice, each file's size
    equal to the one ``manifest.json`` records, and no more than ``budget`` bytes in all. The
    checks are this module's own because ``extractall(filter="data")`` exists only from Python
    3.11.4 (Debian 12 ships 3.11.2); where tarfile has its data filter, its verdict is applied
    too. Files are then written one by one, each stopped at the size its header declared.

    Refusals are ``BadInputError`` naming the package and the member, except a file the
    manifest does not list or records at another size: that is ``TamperedArtifactError``, as
    ``verify_model_dir`` would have said after extraction.
    """
    with _package(path) as archive:
        members = _inspect(path, archive, budget)
        manifest = _read(path, archive, members, MANIFEST, MAX_METADATA_BYTES)
        if manifest is None:
            raise BadInputError(
                f"{path}: no {MANIFEST} inside; not a modelrail model package, so the size of "
                "its files cannot be checked before extraction"
            )
        _check_against_manifest(path, members, _recorded_sizes(path, manifest))
        _check_destination(path, members, dest)
        dest.mkdir(parents=True, exist_ok=True)
        for name, member in members.items():
            _write(path, archive, name, member, dest / name)


def read_member(path: Path, name: str, *, limit: int = MAX_METADATA_BYTES) -> bytes | None:
    """The bytes of one file of a package, or ``None`` if the package has no such file.

    Every reader of a package goes through here, so a package that extraction would refuse
    (a link, a name twice, over the budget) is refused the same way when only one file is
    read, and no member larger than ``limit`` is read into memory.
    """
    with _package(path) as archive:
        return _read(path, archive, _inspect(path, archive, MAX_EXTRACTED_BYTES), name, limit)


@contextmanager
def _package(path: Path) -> Iterator[tarfile.TarFile]:
    """The package opened for reading; a missing or unreadable file is ``BadInputError``."""
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            yield archive
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such package file") from None
    except (OSError, EOFError, tarfile.TarError, gzip.BadGzipFile) as error:
        raise BadInputError(f"{path}: not a readable model.tar.gz: {error}") from None


def _inspect(path: Path, archive: tarfile.TarFile, budget: int) -> dict[str, tarfile.TarInfo]:
    """Every member by its normalised name, walking headers only and stopping at the first refusal.

    The walk skips over each member's data without writing it, and stops as soon as the declared
    sizes add up to more than ``budget``, so a bomb costs at most ``budget`` bytes of reading.
    """
    members: dict[str, tarfile.TarInfo] = {}
    directories: set[str] = set()
    total = 0
    while (member := archive.next()) is not None:
        _check_kind(path, member)
        name = _normalised(path, member)
        if name is None:
            continue
        if len(members) == MAX_MEMBERS:
            raise BadInputError(
                f"{path}: member {name!r} is past the limit of {MAX_MEMBERS} members; "
                "a model package holds a few dozen"
            )
        if name in members:
            raise BadInputError(f"{path}: member {name!r} appears twice; every name must be unique")
        for parent in _parents(name):
            if parent in members and not members[parent].isdir():
                raise BadInputError(f"{path}: member {name!r} lies under {parent!r}, which is a file")
        if member.isdir():
            directories.add(name)
        elif name in directories:
            raise BadInputError(f"{path}: member {name!r} is a file but other members lie under it")
        else:
            total += member.size
            if total > budget:
                raise BadInputError(
                    f"{path}: member {name!r} ({member.size} bytes) takes the package past its budget "
                    f"of {budget} bytes expanded; refusing it before writing anything"
                )
        directories.update(_parents(name))
        members[name] = member
    return members


def _normalised(path: Path, member: tarfile.TarInfo) -> str | None:
    """The member's name as a relative POSIX name (``None`` for the root ``.``), or a refusal.

    A leading ``./`` is dropped, since ``tar -C model -czf model.tar.gz .`` writes one; any
    other ``.``, ``..`` or empty part is refused, so two spellings never name one file.
    """
    raw = member.name
    name = raw.removeprefix("./")
    if name == "." and member.isdir():
        return None
    if name.startswith("/"):
        raise BadInputError(f"{path}: member {raw!r} is an absolute path; members must be relative")
    parts = name.split("/")
    if ".." in parts:
        raise BadInputError(f"{path}: member {raw!r} climbs out of the package with '..'")
    if "" in parts or "." in parts:
        raise BadInputError(
            f"{path}: member {raw!r} is not a plain relative name; use 'dir/file' without '.' or '//'"
        )
    return name


def _check_kind(path: Path, member: tarfile.TarInfo) -> None:
    name = member.name
    if member.issym():
        raise BadInputError(f"{path}: member {name!r} is a symbolic link (to {member.linkname!r})")
    if member.islnk():
        raise BadInputError(f"{path}: member {name!r} is a hard link (to {member.linkname!r})")
    if member.ischr() or member.isblk():
        raise BadInputError(f"{path}: member {name!r} is a device file")
    if member.isfifo():
        raise BadInputError(f"{path}: member {name!r} is a FIFO")
    plain_file = member.type in (tarfile.REGTYPE, tarfile.AREGTYPE) and member.sparse is None
    if not (plain_file or member.isdir()):
        raise BadInputError(
            f"{path}: member {name!r} is not a plain file or directory (tar type {member.type!r})"
        )
    if member.size < 0:
        raise BadInputError(f"{path}: member {name!r} declares a negative size ({member.size})")


def _read(
    path: Path, archive: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str, limit: int
) -> bytes | None:
    member = members.get(name)
    if member is None or member.isdir():
        return None
    if member.size > limit:
        raise BadInputError(
            f"{path}: member {name!r} is {member.size} bytes; refusing to read more than {limit} into memory"
        )
    source = archive.extractfile(member)
    assert source is not None, "a regular file always has a data stream"
    return source.read(limit)


def _recorded_sizes(path: Path, raw: bytes) -> dict[str, int]:
    try:
        manifest = json.loads(raw)
    except ValueError as error:
        raise BadInputError(f"{path}: member {MANIFEST!r} is not JSON: {error}") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(entry, dict) and type(entry.get("size")) is int and entry["size"] >= 0
        for entry in files.values()
    ):
        raise BadInputError(
            f"{path}: member {MANIFEST!r} must map each file under `files` to an object with a "
            "non-negative integer `size`"
        )
    return {name: entry["size"] for name, entry in files.items()}


def _check_against_manifest(path: Path, members: dict[str, tarfile.TarInfo], sizes: dict[str, int]) -> None:
    for name, member in members.items():
        if member.isdir() or name == MANIFEST:
            continue
        if name not in sizes:
            raise TamperedArtifactError(
                f"{path}: member {name!r} is not listed in {MANIFEST}; refusing to extract it",
                details=[f"unlisted file: {name}"],
            )
        if member.size != sizes[name]:
            raise TamperedArtifactError(
                f"{path}: member {name!r} is {member.size} bytes but {MANIFEST} records {sizes[name]}; "
                "refusing a tampered package before writing it",
                details=[f"file: {name}", f"expected size: {sizes[name]}", f"actual size: {member.size}"],
            )


def _check_destination(path: Path, members: dict[str, tarfile.TarInfo], dest: Path) -> None:
    """Refuse a member that would land outside ``dest``, e.g. through a symlink already in it."""
    root = dest.resolve()
    data_filter = getattr(tarfile, "data_filter", None)
    for name, member in members.items():
        if not (root / name).resolve().is_relative_to(root):
            raise BadInputError(f"{path}: member {name!r} would be written outside {dest}")
        if data_filter is not None:
            try:
                data_filter(member, str(root))
            except tarfile.TarError as error:
                raise BadInputError(
                    f"{path}: member {name!r} refused by tarfile's data filter: {error}"
                ) from None


def _write(path: Path, archive: tarfile.TarFile, name: str, member: tarfile.TarInfo, target: Path) -> None:
    """Write one member, never more bytes than its header declared (and the manifest recorded)."""
    if member.isdir():
        target.mkdir(mode=0o755, parents=True, exist_ok=True)
        return
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    source = archive.extractfile(member)
    assert source is not None, "a regular file always has a data stream"
    remaining = member.size
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(target, flags, 0o644), "wb") as handle:
        while remaining and (chunk := source.read(min(_CHUNK, remaining))):
            handle.write(chunk)
            remaining -= len(chunk)
        if remaining or source.read(1):
            raise BadInputError(
                f"{path}: member {name!r} does not hold the {member.size} bytes its header declares; "
                f"stopped writing after {member.size - remaining}"
            )


def _info(name: str, kind: bytes, mode: int, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.size = size
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _parents(name: str) -> list[str]:
    parts = name.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]
