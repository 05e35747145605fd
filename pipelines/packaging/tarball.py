"""Reproducible tarballs, and extraction that accepts nothing but plain files and directories.

The same files always give the same bytes: entries sorted, directories listed, mtime, owner
and mode fixed, and the gzip header without a timestamp or file name.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import tempfile
from pathlib import Path

from pipelines.errors import BadInputError

_MTIME = 0


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


def extract_tarball(path: Path, dest: Path) -> None:
    """Extract a package into ``dest``; refuse links, devices and paths that leave ``dest``."""
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            members = archive.getmembers()
            for member in members:
                if not (member.isfile() or member.isdir()):
                    raise BadInputError(f"{path}: entry {member.name!r} is not a plain file or directory")
            archive.extractall(dest, members=members, filter="data")
    except FileNotFoundError:
        raise BadInputError(f"{path}: no such package file") from None
    except (OSError, EOFError, tarfile.TarError, gzip.BadGzipFile) as error:
        raise BadInputError(f"{path}: not a readable model.tar.gz: {error}") from None


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
